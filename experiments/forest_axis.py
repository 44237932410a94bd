"""The value axis of a forest plot drawn as inline SVG, shared by the report's plot of
effects by subgroup (`experiments.report.html`) and the evidence library's meta-analysis
plot (`experiments.evidence.forest`): the padded range, where a value falls, the opening
tag, the dashed line at zero and the axis with round ticks.

No script and no style attribute: pages style the plots by class (a strict
Content-Security-Policy admits neither inline script nor inline style).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class ForestAxis:
    """Values (times `scale`) from `lo` to `hi` drawn from x = `left` over `width` pixels."""

    lo: float
    hi: float
    left: float
    width: float
    scale: float = 1.0

    @classmethod
    def spanning(
        cls, values: Sequence[float], *, left: float, width: float, scale: float = 1.0
    ) -> ForestAxis:
        """The range of `values` (already scaled) widened by 5% each side (1 when empty)."""
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.05 or 1.0
        return cls(lo - pad, hi + pad, left, width, scale)

    def x(self, v: float) -> float:
        """Where the unscaled value `v` falls."""
        return self.left + (v * self.scale - self.lo) / (self.hi - self.lo) * self.width

    def zero_line(self, top: float, bottom: float) -> str:
        x0 = self.x(0)
        return f'<line class="zero" x1="{x0:.1f}" y1="{top}" x2="{x0:.1f}" y2="{bottom}"/>'

    def axis(self, y: float, label_dy: float) -> list[str]:
        """The axis line at height `y`, then each tick with its value `label_dy` below."""
        right = self.left + self.width
        out = [f'<line class="axis" x1="{self.left}" y1="{y}" x2="{right}" y2="{y}"/>']
        for v in nice_ticks(self.lo, self.hi):
            xx = self.left + (v - self.lo) / (self.hi - self.lo) * self.width
            out.append(
                f'<line class="axis" x1="{xx:.1f}" y1="{y}" x2="{xx:.1f}" y2="{y + 4}"/>'
                f'<text x="{xx:.1f}" y="{y + label_dy}" text-anchor="middle">{v:g}</text>'
            )
        return out


def svg_open(css_class: str, label: str, width: float, height: float) -> str:
    """The opening <svg> tag of an image named `label` for assistive technology."""
    return (
        f'<svg class="{css_class}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
    )


def nice_ticks(lo: float, hi: float, target: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) inside [lo, hi]."""
    span = hi - lo
    if span <= 0 or not math.isfinite(span):
        return [lo]
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    v = math.ceil(lo / step) * step
    ticks = []
    while v <= hi + 1e-12:
        ticks.append(round(v, 10) + 0.0)
        v += step
    return ticks
