"""How a p-value is written wherever people read it: `< 0.001`, `0.023`, `0.41` in a table
cell and `p < 0.001` or `p = 0.023` in a sentence (never `p = < 0.001`, never
`p = 1.2e-05`). The report, the analysis warnings, the console's monitoring and the CLI
all word p-values through these two functions."""

from __future__ import annotations

import math


def fmt_p(p: float | None) -> str:
    """A p-value for a table cell: `< 0.001`, `0.023`, `0.41`."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def p_text(p: float | None, name: str = "p") -> str:
    """A p-value in a sentence: `p < 0.001` or `p = 0.023` (never `p = < 0.001`)."""
    text = fmt_p(p)
    if text.startswith("<"):
        return f"{name} {text}"
    return f"{name} = {text}"
