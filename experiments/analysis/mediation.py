"""Causal mediation: how much of an arm's effect on an outcome runs through a mediator
(here follow-up self-efficacy), after Imai, Keele and Tingley (2010).

For each arm against control, on the participants with the outcome and the mediator, with
the covariates X centred at their (weighted) mean:
- mediator model  M = a0 + a T + g'X (+ k'T X) + e2;
- outcome model   Y = c0 + c T + b M + d T M + h'X (+ l'T X) + e3 (d = 0 without the
  mediator interaction).
The T X terms (`covariates_by_arm`, the default) are Lin's adjustment: each arm gets its own
covariate slopes, so the models hold within each arm even when the covariates act
differently under the message (a mediator near the top of its scale, an arm that works
best for some). With centred covariates the average causal mediation effect for treatment
status t is ACME(t) = a (b + d t), the average direct effect ADE(t) = c + d E[M(t)] with
E[M(t)] = a0 + a t, the total effect ACME(1) + ADE(0); `acme`, `ade` are the averages over
t = 0, 1 (statsmodels' `ACME (average)`), the proportion mediated is acme / total. Point
estimates are the plug-in values; intervals are quasi-Bayesian (King, Tomz and Wittenberg
2000, as the `mediate` R package and statsmodels' `Mediation(...).fit(method=
"parametric")`): draws of both models' coefficients from normals with their robust
covariances (HC2, or CR2 with clusters), percentiles of the simulated effects; seeded, so
a report is reproducible.

It rests on sequential ignorability: given the covariates, nothing unmeasured affects both
the mediator and the outcome. The sensitivity analysis (Imai, Keele and Yamamoto 2010)
gives the correlation rho between the errors of the mediator and outcome models at which
the ACME would be zero: rho_at_zero = corr(e1, e2), e1 the residual of the outcome on
T and X alone (models without interactions). A small |rho| means a weak unmeasured
confounder would explain the mediated effect away. Mediation is never part of the
confirmatory family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.analysis.adjustment import (
    OutcomeInputError,
    TrialColumns,
    arm_data,
    numeric,
)
from experiments.analysis.sandwich import DegenerateDesign, LinearFit, least_squares

ASSUMPTION = (
    "sequential ignorability: given the covariates, no unmeasured cause of both the "
    "mediator and the outcome (the arm itself is randomized); exploratory, outside the "
    "confirmatory family"
)


@dataclass(frozen=True)
class MediationEffect:
    arm: str
    control: str
    outcome: str
    mediator: str
    acme: float
    acme_ci_low: float
    acme_ci_high: float
    acme_p_value: float
    acme_control: float
    acme_treated: float
    ade: float
    ade_ci_low: float
    ade_ci_high: float
    total: float
    total_ci_low: float
    total_ci_high: float
    proportion_mediated: float
    effect_on_mediator: float
    rho_at_zero: float
    n: int
    simulations: int
    seed: int
    interaction: bool
    covariates_by_arm: bool

    def to_dict(self) -> dict:
        out = {}
        for key, value in self.__dict__.items():
            if isinstance(value, float):
                value = value if math.isfinite(value) else None
            out[key] = value
        out["assumption"] = ASSUMPTION
        return out


def _draws(
    fits: tuple[LinearFit, ...], rng: np.random.Generator, simulations: int
) -> list[np.ndarray]:
    """Coefficient draws for each fit from N(beta, cov), one row per simulation.

    The standard normals are drawn simulation by simulation, fit after fit, and scaled by
    the SVD factor of each covariance: the same numbers as calling
    `rng.multivariate_normal(beta, cov)` for each fit in turn in every simulation (what
    statsmodels' `Mediation` does, outcome model first), only vectorised.
    """
    z = rng.standard_normal((simulations, sum(f.k for f in fits)))
    out, start = [], 0
    for f in fits:
        _, s, vh = np.linalg.svd(f.cov)
        out.append(f.beta + z[:, start : start + f.k] @ (np.sqrt(s)[:, None] * vh))
        start += f.k
    return out


def _p_value(values: np.ndarray) -> float:
    """Share of draws on the far side of zero, doubled (as `mediate` and statsmodels)."""
    return float(2 * min((values > 0).sum(), (values < 0).sum()) / len(values))


def _effects(med: np.ndarray, out: np.ndarray, interaction: bool):
    """ACME(0), ACME(1), ADE(0), ADE(1) for coefficient rows (or a single row), covariates
    centred. Mediator coefficients: [a0, a, ...]; outcome: [c0, c, b, (d,) ...]."""
    a0, a = med[..., 0], med[..., 1]
    c, b = out[..., 1], out[..., 2]
    d = out[..., 3] if interaction else np.zeros_like(c)
    return a * b, a * (b + d), c + d * a0, c + d * (a0 + a)


@dataclass(frozen=True)
class Sensitivity:
    """Imai, Keele and Yamamoto (2010) for models without the interaction: the effect of T
    on M (`a`), the residual SDs of Y ~ T + X (`s1`) and M ~ T + X (`s2`), and their
    residual correlation `rho_tilde`, the rho at which the ACME vanishes."""

    a: float
    s1: float
    s2: float
    rho_tilde: float

    @classmethod
    def of(
        cls, y: np.ndarray, m: np.ndarray, t: np.ndarray, x: np.ndarray, w: np.ndarray | None
    ) -> Sensitivity:
        Z = np.column_stack([np.ones(len(t)), t, x])
        sw = np.ones(len(t)) if w is None else np.sqrt(w / np.mean(w))
        Zw = Z * sw[:, None]
        coef = np.linalg.lstsq(Zw, np.column_stack([y, m]) * sw[:, None], rcond=None)[0]
        r = (np.column_stack([y, m]) - Z @ coef) * sw[:, None]
        s1, s2 = np.sqrt((r * r).mean(axis=0))
        rt = float((r[:, 0] * r[:, 1]).mean() / (s1 * s2)) if s1 > 0 and s2 > 0 else math.nan
        return cls(float(coef[1, 1]), float(s1), float(s2), rt)

    def acme(self, rho: float) -> float:
        """The ACME if the two models' errors correlated by `rho`:
        (a s1 / s2) (rt - rho sqrt((1 - rt^2) / (1 - rho^2)))."""
        rt = self.rho_tilde
        return self.a * self.s1 / self.s2 * (rt - rho * math.sqrt((1 - rt * rt) / (1 - rho * rho)))


def mediation(
    frame: pd.DataFrame,
    columns: TrialColumns,
    outcome: str,
    mediator: str,
    interaction: bool = True,
    covariates_by_arm: bool = True,
    simulations: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    weights: str | None = None,
) -> list[MediationEffect]:
    """Each arm's ACME, ADE, total effect and proportion mediated through `mediator`.

    `columns.covariates` (and stratum indicators) enter both models, centred, and with
    `covariates_by_arm` multiplied by the arm too; `interaction` adds the arm x mediator
    term to the outcome model. `weights` names an
    extra column of weights (e.g. inverse probabilities of answering the follow-up, so
    that the analysed respondents stand for everyone randomized); it multiplies the design
    weights, if any. The mediator must be measured after assignment and before (or with)
    the outcome.
    """
    if simulations < 100:
        raise OutcomeInputError("mediation needs at least 100 simulations for its intervals")
    required = [outcome, mediator] + ([weights] if weights else [])
    y_all = numeric(frame, outcome, "outcome")
    m_all = numeric(frame, mediator, "mediator")
    data = arm_data(frame, columns, required=required)
    y_all, m_all = y_all[data.rows], m_all[data.rows]
    w_all = data.weights
    if weights:
        extra = numeric(frame, weights, "weights column")[data.rows]
        if np.any(extra <= 0):
            raise OutcomeInputError(f"weights column {weights!r} must be positive")
        w_all = extra if w_all is None else w_all * extra
    rng = np.random.default_rng(seed)
    out = []
    for j in range(1, len(data.arms)):
        keep = (data.arm == 0) | (data.arm == j)
        t = (data.arm[keep] == j).astype(float)
        x = data.covariates[keep]
        y, m = y_all[keep], m_all[keep]
        w = None if w_all is None else w_all[keep]
        clusters = None if data.clusters is None else data.clusters[keep]
        units = data.units[keep]
        ones = np.ones(len(t))
        xc = x - np.average(x, axis=0, weights=w) if x.shape[1] else x
        covs = [xc, t[:, None] * xc] if covariates_by_arm else [xc]
        med_X = np.column_stack([ones, t, *covs])
        out_X = np.column_stack([ones, t, m, *([t * m] if interaction else []), *covs])
        try:
            med_fit = least_squares(med_X, m, w, clusters, units)
            out_fit = least_squares(out_X, y, w, clusters, units)
        except DegenerateDesign as exc:
            raise OutcomeInputError(
                f"mediation of {outcome} through {mediator} for arm {data.arms[j]!r}: {exc}"
            ) from None
        point = _effects(med_fit.beta, out_fit.beta, interaction)
        out_draws, med_draws = _draws((out_fit, med_fit), rng, simulations)
        draws = _effects(med_draws, out_draws, interaction)

        def summary(a0_, a1_, d0_, d1_):
            return (a0_ + a1_) / 2, (d0_ + d1_) / 2, a1_ + d0_

        acme, ade, total = summary(*point)
        acme_s, ade_s, total_s = summary(*draws)
        q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
        acme_ci, ade_ci, total_ci = (np.percentile(v, q) for v in (acme_s, ade_s, total_s))
        out.append(
            MediationEffect(
                arm=data.arms[j],
                control=data.arms[0],
                outcome=outcome,
                mediator=mediator,
                acme=float(acme),
                acme_ci_low=float(acme_ci[0]),
                acme_ci_high=float(acme_ci[1]),
                acme_p_value=_p_value(acme_s),
                acme_control=float(point[0]),
                acme_treated=float(point[1]),
                ade=float(ade),
                ade_ci_low=float(ade_ci[0]),
                ade_ci_high=float(ade_ci[1]),
                total=float(total),
                total_ci_low=float(total_ci[0]),
                total_ci_high=float(total_ci[1]),
                proportion_mediated=float(acme / total) if total != 0 else math.nan,
                effect_on_mediator=float(med_fit.beta[1]),
                rho_at_zero=Sensitivity.of(y, m, t, x, w).rho_tilde,
                n=int(len(t)),
                simulations=simulations,
                seed=seed,
                interaction=interaction,
                covariates_by_arm=covariates_by_arm,
            )
        )
    return out
