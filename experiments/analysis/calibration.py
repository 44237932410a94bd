"""Calibration by simulation: run many trials with known effects through `analyze` and
count how often the intervals cover the truth (they should about 1 - alpha of the time).

The trial: residents aged 18-85 (uniform), self-efficacy the mean of three 1-5 items, a
0/1 outcome whose control rate depends on age band, arms whose true effect differs by age
band. The truth per band is the effect written into the simulation; the overall truth
is its average over the population's known band shares (a superpopulation estimand, the
one the Neyman / HC2 standard error targets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.analysis.engine import analyze
from experiments.bands import BandSpec

AGE = BandSpec("age", (35.0, 55.0), ("18-34", "35-54", "55+"))
BASE = np.array([0.20, 0.15, 0.10])  # control rate by age band
EFFECTS = {  # true effect by age band, per message arm
    "peer": np.array([0.06, 0.03, 0.00]),
    "efficacy": np.array([0.02, 0.02, 0.05]),
    "info": np.array([0.00, 0.00, 0.00]),
}
AGES = np.arange(18, 86)
BAND_SHARE = np.bincount(np.searchsorted([35, 55], AGES, side="right"), minlength=3) / len(AGES)


@dataclass(frozen=True)
class Coverage:
    target: str
    intervals: int
    covered: int

    @property
    def rate(self) -> float:
        return self.covered / self.intervals if self.intervals else math.nan

    @property
    def mc_error(self) -> float:
        return math.sqrt(0.95 * 0.05 / self.intervals) if self.intervals else math.nan


def simulate_trial(rng: np.random.Generator, n: int, arms: list[str]) -> pd.DataFrame:
    age = rng.choice(AGES, n)
    band = np.searchsorted([35, 55], age, side="right")
    arm = rng.integers(0, len(arms) + 1, n)  # 0 = control
    p = BASE[band].copy()
    for i, a in enumerate(arms, start=1):
        p[arm == i] += EFFECTS[a][band[arm == i]]
    y = (rng.random(n) < p).astype(float)
    se = np.clip(np.rint(rng.normal(3, 1, (n, 3))), 1, 5).mean(axis=1)
    names = np.array(["control", *arms])
    return pd.DataFrame({"arm": names[arm], "joined": y, "age": age, "self_efficacy": se})


def coverage(
    simulations: int = 2000,
    n: int = 3000,
    arms: tuple[str, ...] = ("peer", "efficacy", "info"),
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Coverage]:
    """Coverage of the main effects, the age-band subgroup effects and the Lin-adjusted
    effects over `simulations` trials of `n` participants."""
    rng = np.random.default_rng(seed)
    counts = {"main": [0, 0], "subgroup": [0, 0], "lin": [0, 0]}
    truth_main = {a: float(BAND_SHARE @ EFFECTS[a]) for a in arms}
    for _ in range(simulations):
        frame = simulate_trial(rng, n, list(arms))
        r = analyze(
            frame,
            arm="arm",
            control="control",
            outcome="joined",
            moderators=[AGE],
            covariates=["self_efficacy"],
            alpha=alpha,
            preregistered=["age"],
        )
        for key, effects in (("main", r.effects), ("lin", r.adjusted_effects)):
            for e in effects:
                counts[key][0] += 1
                counts[key][1] += int(e.ci_low <= truth_main[e.arm] <= e.ci_high)
        for s in r.subgroups:
            t = EFFECTS[s.arm][AGE.levels.index(s.level)]
            counts["subgroup"][0] += 1
            counts["subgroup"][1] += int(s.ci_low <= t <= s.ci_high)
    return {k: Coverage(k, v[0], v[1]) for k, v in counts.items()}
