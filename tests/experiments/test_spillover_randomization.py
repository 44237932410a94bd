"""The randomization-inference intervals of the spillover estimates, against a test-side,
loop-based reference: for each re-drawn assignment (the module's `saturation_draws`, whose
rules are checked here against the platform's randomizer), the outcomes are imputed under
the constant-effect null written out below, the saturation-indicator OLS is refitted with
statsmodels and its CR2 taken from test_analysis_cr2.py. The reference p-function must
equal the module's at every point, and switch from accepting to rejecting within 1e-8 of
each of the module's bounds (accepting everywhere between the estimate and the bound)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from test_analysis_cr2 import CR2Reference
from test_spillover import simulate

from experiments.analysis.saturation_ri import saturation_draws
from experiments.analysis.spillover import spillover_effects
from experiments.saturation import saturation_ra


class LoopRI:
    """p(tau0) of one contrast at saturation `s`, one draw at a time.

    part: "direct" (treated at s against pure control), "spillover" (untreated at s) or
    "total" (all members at s). Null: the tested part's effect is tau0; for direct and
    spillover the other part at s has effect tau0 minus the within-cluster difference of
    the tested part and the other (OLS with cluster dummies on the s-clusters)."""

    def __init__(self, df, s, part, draws, seed):
        levels = sorted(df["S"].unique())
        keep = df["S"].isin([0.0, s]).to_numpy()
        d = df[keep]
        self.y = d["y"].to_numpy()
        self.T = d["T"].to_numpy(bool)
        self.at = (d["S"] == s).to_numpy()
        ids, self.code = np.unique(d["cluster"].to_numpy(), return_inverse=True)
        level_of_cluster = np.zeros(len(ids), dtype=np.int64)
        level_of_cluster[self.code] = self.at
        # the module sorts rows by cluster; draws refer to that order
        self.order = np.argsort(self.code, kind="stable")
        self.drawn = saturation_draws(
            self.code[self.order], level_of_cluster, np.array([0.0, s]), draws,
            seed + levels.index(s),
        )  # fmt: skip
        self.part = part
        self.estimate, self.se = self._fit(self.at, self.T, self.y)
        self.delta = 0.0
        if part != "total":
            rows = self.at
            tested = self.T if part == "direct" else ~self.T
            X = np.column_stack([tested[rows].astype(float), _dummies(self.code[rows])])
            self.delta = sm.OLS(self.y[rows], X).fit().params[0]

    def _cells(self, at, T):
        if self.part == "direct":
            return at & T, at & ~T
        if self.part == "spillover":
            return at & ~T, at & T
        return at, np.zeros_like(at)

    def _fit(self, at, T, y):
        tested, other = self._cells(at, T)
        cols = [np.ones(len(y)), tested.astype(float)]
        if other.any():
            cols.append(other.astype(float))
        X = np.column_stack(cols)
        beta = sm.OLS(y, X).fit().params[1]
        return beta, math.sqrt(CR2Reference(X, y, self.code).V[1, 1])

    def p_value(self, tau0):
        tested, other = self._cells(self.at, self.T)
        y0 = self.y - tau0 * tested - (tau0 - self.delta) * other
        t = abs(self.estimate - tau0) / self.se
        hits = valid = 0
        for b in range(len(self.drawn.level)):
            at = np.empty(len(self.y), dtype=bool)
            T = np.empty(len(self.y), dtype=bool)
            at[self.order] = self.drawn.level[b][self.code[self.order]] == 1
            T[self.order] = self.drawn.treated[b]
            new_tested, new_other = self._cells(at, T)
            y_star = y0 + tau0 * new_tested + (tau0 - self.delta) * new_other
            est, se = self._fit(at, T, y_star)
            valid += 1
            hits += abs(est - tau0) / se >= t * (1 - 1e-12)
        return (1 + hits) / (1 + valid)


def _dummies(code):
    ids = np.unique(code)
    return (code[:, None] == ids[None, :]).astype(float)


def test_draws_follow_the_platform_randomizer_rules():
    clusters = np.repeat(np.arange(12), [5, 80, 10, 60, 15, 40, 5, 50, 20, 30, 10, 25])
    design = saturation_ra(clusters, (0, 0.4, 0.8), 3)
    levels = np.array([0.0, 0.4, 0.8])
    level_of_cluster = np.zeros(12, dtype=np.int64)
    level_of_cluster[clusters] = np.searchsorted(levels, design.saturation)
    drawn = saturation_draws(clusters, level_of_cluster, levels, 4000, seed=9)
    sizes = np.bincount(clusters)
    for b in range(0, 4000, 97):
        assert np.array_equal(np.sort(drawn.level[b]), np.sort(level_of_cluster))
        n_treated = np.bincount(clusters, weights=drawn.treated[b], minlength=12)
        s = levels[drawn.level[b]]
        assert np.all(np.abs(n_treated - s * sizes) < 1)  # within one of s x size
        assert not np.any(n_treated[drawn.level[b] == 0])
    # every cluster equally likely at every saturation (4 of 12 each: 1/3)
    share = np.array([(drawn.level == k).mean(axis=0) for k in range(3)])
    assert np.all(np.abs(share - 1 / 3) < 0.03)
    # members within a cluster equally likely to be treated (cluster 1: 80 members)
    rows = np.flatnonzero(clusters == 1)
    at = drawn.level[:, 1] == 2
    rate = drawn.treated[at][:, rows].mean(axis=0)
    assert np.all(np.abs(rate - 0.8) < 0.06)
    again = saturation_draws(clusters, level_of_cluster, levels, 4000, seed=9)
    assert np.array_equal(again.level, drawn.level) and np.array_equal(again.treated, drawn.treated)


@pytest.mark.parametrize(("s", "part"), [(0.8, "direct"), (0.4, "spillover"), (0.8, "total")])
def test_intervals_equal_a_loop_based_randomization_inference(s, part):
    df = simulate(np.random.default_rng(7), n_clusters=12, seed=4)
    draws, seed = 99, 31
    got = spillover_effects(df["y"], df["T"], df["S"], df["cluster"], draws=draws, seed=seed)
    inf = getattr(next(g for g in got if g.saturation == s), part)
    ref = LoopRI(df, s, part, draws, seed)
    assert inf.estimate == pytest.approx(ref.estimate, rel=1e-10)
    assert inf.std_error == pytest.approx(ref.se, rel=1e-8)
    assert inf.p_value == pytest.approx(ref.p_value(0.0), abs=1e-12)
    lo, hi = inf.ci_low, inf.ci_high
    assert lo < inf.estimate < hi
    for bound, side in ((lo, -1.0), (hi, 1.0)):
        assert ref.p_value(bound - side * 1e-8) > 0.05  # inside
        assert ref.p_value(bound + side * 1e-8) <= 0.05  # outside
    for tau0 in np.linspace(lo, hi, 9)[1:-1]:
        assert ref.p_value(tau0) > 0.05


def test_same_seed_same_intervals_and_the_method_is_named():
    df = simulate(np.random.default_rng(9), n_clusters=12, seed=2)
    a = spillover_effects(df["y"], df["T"], df["S"], df["cluster"], draws=199, seed=5)
    b = spillover_effects(df["y"], df["T"], df["S"], df["cluster"], draws=199, seed=5)
    assert [x.to_dict() for x in a] == [x.to_dict() for x in b]
    row = a[0].to_dict()
    assert row["interval_method"] == "randomization_inference"
    assert row["randomization_draws"] == 199 and row["randomization_seed"] == 5
    c = spillover_effects(df["y"], df["T"], df["S"], df["cluster"], draws=199, seed=6)
    assert c[0].direct.ci_low != a[0].direct.ci_low
    assert c[0].direct.estimate == a[0].direct.estimate
