"""Calibration by simulation: run many trials with known effects through `analyze` and
count how often the intervals cover the truth (they should about 1 - alpha of the time)
and how often a test of a true null rejects (about alpha).

`coverage`: residents aged 18-85 (uniform), self-efficacy the mean of three 1-5 items, a
0/1 outcome whose control rate depends on age band, arms whose true effect differs by age
band. The truth per band is the effect written into the simulation; the overall truth
is its average over the population's known band shares (a superpopulation estimand, the
one the Neyman / HC2 standard error targets).

`stratified_coverage`: three areas randomized with treatment probabilities 0.2, 0.5 and
0.8, whose joining rates differ (5%, 15%, 35%) and whose residents differ in age, so any
estimate that ignores the strata is biased; the true effect is the same for everyone, so
it is the truth of every subgroup and the age interaction is null.

`cluster_coverage`: a few clusters of unequal size (5 to 60 members) randomized whole,
outcome with intra-cluster correlation 0.1, a constant true effect and no interaction.
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


def stratified_trial(rng: np.random.Generator, n: int, effect: float) -> pd.DataFrame:
    area = rng.choice(3, n, p=[0.3, 0.4, 0.3])
    p_treat = np.array([0.2, 0.5, 0.8])[area]
    treated = rng.random(n) < p_treat
    # the older the area, the higher its joining rate: age bands and strata go together
    age = np.clip(rng.normal(np.array([30.0, 45.0, 60.0])[area], 12.0), 18, 90).round()
    x = rng.normal(0, 1, n)
    base = np.array([0.05, 0.15, 0.35])[area] + 0.04 * x.clip(-2, 2)
    y = (rng.random(n) < base + effect * treated).astype(float)
    return pd.DataFrame(
        {
            "arm": np.where(treated, "message", "control"),
            "joined": y,
            "area": area,
            "probability": np.where(treated, p_treat, 1 - p_treat),
            "age": age,
            "x": x,
        }
    )


def stratified_coverage(
    simulations: int = 2000, n: int = 2000, effect: float = 0.04, seed: int = 0
) -> dict[str, Coverage]:
    """Coverage of the headline, Lin and age-subgroup intervals and the size of the age
    interaction test (`interaction_rejections`) in the 0.2 / 0.5 / 0.8 stratified design."""
    rng = np.random.default_rng(seed)
    counts = {k: [0, 0] for k in ("main", "lin", "subgroup", "interaction_rejections")}
    for _ in range(simulations):
        r = analyze(
            stratified_trial(rng, n, effect),
            arm="arm",
            control="control",
            outcome="joined",
            block="area",
            probability="probability",
            covariates=["x"],
            moderators=[AGE],
            preregistered=["age"],
            flow_columns=False,
        )
        for key, rows in (
            ("main", r.effects),
            ("lin", r.adjusted_effects),
            ("subgroup", r.subgroups),
        ):
            for e in rows:
                counts[key][0] += 1
                counts[key][1] += int(e.ci_low <= effect <= e.ci_high)
        for t in r.interactions:
            counts["interaction_rejections"][0] += 1
            counts["interaction_rejections"][1] += int(t.p_value < 0.05)
    return {k: Coverage(k, *v) for k, v in counts.items()}


def cluster_trial(
    rng: np.random.Generator, clusters: int, effect: float, icc: float
) -> pd.DataFrame:
    sizes = rng.integers(5, 61, clusters)
    cl = np.repeat(np.arange(clusters), sizes)
    arm_of = rng.permutation(np.arange(clusters) % 2)  # half the clusters get the message
    treated = arm_of[cl] == 1
    y = (
        effect * treated
        + rng.normal(0, np.sqrt(icc), clusters)[cl]
        + rng.normal(0, np.sqrt(1 - icc), len(cl))
    )
    return pd.DataFrame(
        {
            "arm": np.where(treated, "message", "control"),
            "y": y,
            "cluster": cl,
            "age": rng.integers(18, 86, len(cl)).astype(float),
        }
    )


def cluster_coverage(
    clusters: int, simulations: int = 1000, effect: float = 0.2, icc: float = 0.1, seed: int = 0
) -> dict[str, Coverage]:
    """Coverage of the CR2 headline and age-subgroup intervals and the size of the HTZ age
    interaction test with `clusters` clusters of unequal size."""
    rng = np.random.default_rng(seed)
    counts = {k: [0, 0] for k in ("main", "subgroup", "interaction_rejections")}
    for _ in range(simulations):
        r = analyze(
            cluster_trial(rng, clusters, effect, icc),
            arm="arm",
            control="control",
            outcome="y",
            cluster="cluster",
            moderators=[AGE],
            flow_columns=False,
        )
        for key, rows in (("main", r.effects), ("subgroup", r.subgroups)):
            for e in rows:
                if e.error is None:
                    counts[key][0] += 1
                    counts[key][1] += int(e.ci_low <= effect <= e.ci_high)
        for t in r.interactions:
            counts["interaction_rejections"][0] += 1
            counts["interaction_rejections"][1] += int(t.p_value < 0.05)
    return {k: Coverage(k, *v) for k, v in counts.items()}
