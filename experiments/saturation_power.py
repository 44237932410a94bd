"""Power of a randomized saturation design by simulation: draw clusters of residents whose
baseline chance of taking part varies between clusters (intra-cluster correlation), run
the design's own randomizer (`experiments.saturation`), generate the outcome with a known
direct effect on treated members and a known spillover on untreated members of treated
clusters, analyse each trial exactly as the report does (`analysis.spillover`) and count
how often each estimate is significant at alpha (no multiplicity adjustment: each
saturation's direct and spillover tests are reported on their own).

Cluster baselines are Beta with mean `baseline_rate` and ICC `icc`
(a = p (1 - icc) / icc, b = (1 - p) (1 - icc) / icc); outcomes are Bernoulli with the
baseline plus the effect, clipped to [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from experiments.analysis.spillover import spillover_effects
from experiments.saturation import check_saturations, format_saturation, saturation_ra

DEFAULT_ICC = 0.05


@dataclass(frozen=True)
class SaturationPowerRow:
    saturation: float
    direct_power: float
    spillover_power: float | None  # None: no untreated members at this saturation
    total_power: float


@dataclass(frozen=True)
class SaturationPower:
    clusters: int
    cluster_size: int
    saturations: tuple[float, ...]
    baseline_rate: float
    direct_effect: float
    spillover_effect: float
    icc: float
    alpha: float
    simulations: int
    seed: int
    rows: tuple[SaturationPowerRow, ...]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["design"] = "saturation"
        out["rows"] = [asdict(r) for r in self.rows]
        return out

    def to_text(self) -> str:
        lines = [
            f"Randomized saturation design: {self.clusters} clusters of {self.cluster_size}, "
            f"saturations {', '.join(format_saturation(s) for s in self.saturations)}",
            f"Baseline rate {self.baseline_rate:.3g}, direct effect {self.direct_effect:+.3g}, "
            f"spillover {self.spillover_effect:+.3g}, ICC {self.icc:.3g}; alpha "
            f"{self.alpha:g}; {self.simulations} simulated trials (seed {self.seed})",
            "",
            f"{'saturation':>10}  {'direct':>7}  {'spillover':>9}  {'total':>7}",
        ]
        for r in self.rows:
            spill = "-" if r.spillover_power is None else f"{r.spillover_power:.0%}"
            lines.append(
                f"{format_saturation(r.saturation):>10}  {r.direct_power:>7.0%}  "
                f"{spill:>9}  {r.total_power:>7.0%}"
            )
        lines.append("")
        lines.append(
            "Power: share of simulated trials in which the effect against pure-control "
            "clusters is significant (saturation-indicator OLS, CR2 by cluster, "
            "Bell-McCaffrey df)."
        )
        return "\n".join(lines)


def simulate_saturation_power(
    *,
    clusters: int,
    cluster_size: int,
    saturations: Sequence[float],
    baseline_rate: float,
    direct_effect: float,
    spillover_effect: float,
    icc: float = DEFAULT_ICC,
    alpha: float = 0.05,
    simulations: int = 500,
    seed: int = 0,
) -> SaturationPower:
    """Power for the direct, spillover and total effect at each positive saturation."""
    levels = check_saturations(saturations)
    if 0.0 not in levels:
        raise ValueError("the saturations must include 0 (pure-control clusters)")
    if clusters < 2 * len(levels):
        raise ValueError(
            f"{clusters} clusters are too few for {len(levels)} saturations: "
            "give at least two clusters per saturation"
        )
    if cluster_size < 1:
        raise ValueError("clusters need at least one member")
    if not 0 < baseline_rate < 1:
        raise ValueError("the baseline rate must lie strictly between 0 and 1")
    if not 0 < icc < 1:
        raise ValueError("the ICC must lie strictly between 0 and 1")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    cluster = np.repeat(np.arange(clusters), cluster_size)
    a = baseline_rate * (1 - icc) / icc
    b = (1 - baseline_rate) * (1 - icc) / icc
    positive = [s for s in levels if s > 0]
    hits = {(s, part): 0 for s in positive for part in ("direct", "spillover", "total")}
    untreated_seen = dict.fromkeys(positive, False)
    for _ in range(simulations):
        design = saturation_ra(cluster, levels, int(rng.integers(2**63 - 1)))
        base = rng.beta(a, b, clusters)[cluster]
        offered = design.saturation > 0
        p = base + np.where(design.treated, direct_effect, offered * spillover_effect)
        y = (rng.random(len(cluster)) < np.clip(p, 0.0, 1.0)).astype(float)
        # The report's randomization-inference p-value, with fewer re-draws (199: p is
        # resolved to 1/200, enough for p <= alpha, and 500 trials stay quick).
        found = spillover_effects(
            y, design.treated, design.saturation, cluster, alpha=alpha, draws=199
        )
        for e in found:
            for part in ("direct", "spillover", "total"):
                pv = getattr(e, part).p_value
                hits[(e.saturation, part)] += bool(math.isfinite(pv) and pv <= alpha)
            untreated_seen[e.saturation] |= e.n_untreated > 0
    rows = tuple(
        SaturationPowerRow(
            s,
            hits[(s, "direct")] / simulations,
            hits[(s, "spillover")] / simulations if untreated_seen[s] else None,
            hits[(s, "total")] / simulations,
        )
        for s in positive
    )
    return SaturationPower(
        clusters,
        cluster_size,
        levels,
        baseline_rate,
        direct_effect,
        spillover_effect,
        icc,
        alpha,
        simulations,
        int(seed),
        rows,
    )
