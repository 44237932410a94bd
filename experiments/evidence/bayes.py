"""The Bayesian reading of a campaign's effect beside the pooled evidence, and assurance.

The evidence prior for a new campaign's true effect is the random-effects prediction
distribution of the earlier campaigns: normal with the pooled mean mu and standard
deviation sqrt(tau^2 + SE(mu)^2) (Higgins, Thompson and Spiegelhalter 2009).

- Probability the arm beats control, P(theta > 0 | data), with the estimate taken as
  normal, theta_hat ~ N(theta, se^2): under a flat prior Phi(theta_hat / se); under the
  evidence prior N(m, s^2) the posterior is normal with precision 1/s^2 + 1/se^2 and mean
  (m/s^2 + theta_hat/se^2) / precision. An extra reading; the frequentist result stands.
- Assurance (O'Hagan, Stevens and Campbell 2005): the power of the planned two-sided test
  averaged over the prior, E[ Phi((theta - z se)/se) + Phi((-theta - z se)/se) ]. With a
  fixed se this is Phi((m - z se)/sqrt(s^2 + se^2)) + Phi((-m - z se)/sqrt(s^2 + se^2));
  for two proportions se depends on theta and the average is taken by Gauss-Hermite
  quadrature.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import special

from experiments.analysis.dist import norm_isf, norm_sf
from experiments.evidence.meta import MetaAnalysis

HERMITE_NODES = 80


class EvidenceError(ValueError):
    """Evidence that cannot give a prior, or a planned design without a standard error."""


@dataclass(frozen=True)
class EvidencePrior:
    """A normal prior for a new campaign's effect and what it rests on."""

    mean: float
    sd: float
    campaigns: int

    def to_dict(self) -> dict:
        return asdict(self)


def prior_from_evidence(pooled: MetaAnalysis) -> EvidencePrior:
    """The prediction distribution of the pooled campaigns as a prior (two or more)."""
    if pooled.k < 2 or not math.isfinite(pooled.prediction_sd):
        raise EvidenceError(
            f"the evidence rests on {pooled.k} campaign(s): a prior needs at least two, "
            "so that the variation between campaigns can be estimated"
        )
    return EvidencePrior(pooled.estimate, pooled.prediction_sd, pooled.k)


@dataclass(frozen=True)
class BayesianReading:
    estimate: float
    std_error: float
    probability_flat: float
    posterior_mean: float
    posterior_sd: float
    probability_evidence: float
    prior: EvidencePrior | None

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "prior"}
        out = {k: v if math.isfinite(v) else None for k, v in out.items()}
        out["prior"] = self.prior.to_dict() if self.prior else None
        return out


def _positive(mean: float, sd: float) -> float:
    return norm_sf(-mean / sd)


def bayesian_reading(
    estimate: float, std_error: float, prior: EvidencePrior | None = None
) -> BayesianReading:
    """P(the arm beats control) under a flat prior and, given one, the evidence prior."""
    if not (math.isfinite(estimate) and math.isfinite(std_error) and std_error > 0):
        raise EvidenceError("the estimate needs a finite value and a positive standard error")
    flat = _positive(estimate, std_error)
    nan = math.nan
    if prior is None:
        return BayesianReading(estimate, std_error, flat, nan, nan, nan, None)
    precision = 1 / prior.sd**2 + 1 / std_error**2
    mean = (prior.mean / prior.sd**2 + estimate / std_error**2) / precision
    sd = math.sqrt(1 / precision)
    return BayesianReading(estimate, std_error, flat, mean, sd, _positive(mean, sd), prior)


def assurance(prior: EvidencePrior, std_error: float, alpha: float = 0.05) -> float:
    """Power of a two-sided level-alpha test with standard error `std_error`, averaged over
    the prior (closed form)."""
    if not std_error > 0:
        raise EvidenceError("the planned standard error must be positive")
    z = norm_isf(alpha / 2)
    spread = math.sqrt(prior.sd**2 + std_error**2)
    return norm_sf((z * std_error - prior.mean) / spread) + norm_sf(
        (z * std_error + prior.mean) / spread
    )


def assurance_two_proportions(
    prior: EvidencePrior,
    baseline_rate: float,
    n_treatment: int,
    n_control: int,
    alpha: float = 0.05,
) -> float:
    """Assurance of a planned two-arm comparison of proportions: control rate
    `baseline_rate`, treated rate baseline + theta (kept inside (0, 1)), standard error
    sqrt(p_T q_T / n_T + p_C q_C / n_C) at each theta, averaged over the prior."""
    if not 0 < baseline_rate < 1:
        raise EvidenceError(f"the baseline rate must be between 0 and 1, got {baseline_rate}")
    if n_treatment < 2 or n_control < 2:
        raise EvidenceError("each arm needs at least two participants")
    x, w = np.polynomial.hermite_e.hermegauss(HERMITE_NODES)  # weight exp(-x^2 / 2)
    theta = prior.mean + prior.sd * x
    p_t = np.clip(baseline_rate + theta, 1e-9, 1 - 1e-9)
    se = np.sqrt(p_t * (1 - p_t) / n_treatment + baseline_rate * (1 - baseline_rate) / n_control)
    z = norm_isf(alpha / 2)
    power = special.ndtr(theta / se - z) + special.ndtr(-theta / se - z)
    return float(w @ power / math.sqrt(2 * math.pi))
