"""The Bayesian reading and assurance against conjugate formulas written here, numerical
integration (scipy) and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from experiments.evidence.bayes import (
    EvidenceError,
    EvidencePrior,
    assurance,
    assurance_two_proportions,
    bayesian_reading,
    prior_from_evidence,
)
from experiments.evidence.meta import random_effects

PRIOR = EvidencePrior(mean=0.025, sd=0.015, campaigns=4)


def test_prior_is_the_prediction_distribution():
    y, s = [0.02, 0.035, 0.01, 0.03], [0.01, 0.012, 0.009, 0.011]
    pooled = random_effects(y, s)
    prior = prior_from_evidence(pooled)
    assert prior.campaigns == 4 and prior.mean == pooled.estimate
    # Higgins et al. (2009): tau^2 plus the squared (Wald) standard error of the mean
    w = 1 / (np.square(s) + pooled.tau2)
    assert prior.sd == pytest.approx(math.sqrt(pooled.tau2 + 1 / w.sum()))
    with pytest.raises(EvidenceError, match="rests on 1 campaign"):
        prior_from_evidence(random_effects([0.02], [0.01]))


def test_reading_under_flat_and_evidence_priors():
    r = bayesian_reading(0.04, 0.02, PRIOR)
    assert r.probability_flat == pytest.approx(stats.norm.cdf(0.04 / 0.02))
    # conjugate normal: posterior precision adds, mean is precision-weighted
    prec = 1 / PRIOR.sd**2 + 1 / 0.02**2
    mean = (PRIOR.mean / PRIOR.sd**2 + 0.04 / 0.02**2) / prec
    assert (r.posterior_mean, r.posterior_sd) == pytest.approx((mean, prec**-0.5))
    assert r.probability_evidence == pytest.approx(stats.norm.sf(0, mean, prec**-0.5))
    # by simulation: draw theta from the prior, the estimate given theta, keep those near 0.04
    rng = np.random.default_rng(0)
    theta = rng.normal(PRIOR.mean, PRIOR.sd, 4_000_000)
    est = rng.normal(theta, 0.02)
    near = np.abs(est - 0.04) < 0.0005
    assert np.mean(theta[near] > 0) == pytest.approx(r.probability_evidence, abs=0.005)
    flat = bayesian_reading(0.04, 0.02)
    assert flat.prior is None and flat.to_dict()["probability_evidence"] is None
    with pytest.raises(EvidenceError):
        bayesian_reading(0.04, 0.0)


def power(theta, se, alpha=0.05):
    z = stats.norm.ppf(1 - alpha / 2)
    return stats.norm.cdf(theta / se - z) + stats.norm.cdf(-theta / se - z)


def test_assurance_is_power_averaged_over_the_prior():
    se = 0.012
    expected = integrate.quad(
        lambda t: power(t, se) * stats.norm.pdf(t, PRIOR.mean, PRIOR.sd), -1, 1, points=[0.025]
    )[0]
    assert assurance(PRIOR, se) == pytest.approx(expected, rel=1e-9)
    # a certain prior gives the ordinary power
    sure = EvidencePrior(0.03, 1e-12, 5)
    assert assurance(sure, se) == pytest.approx(power(0.03, se), rel=1e-9)


def test_assurance_for_two_proportions():
    p0, nt, nc = 0.1, 1500, 1500

    def se(t):
        p1 = p0 + t
        return math.sqrt(p1 * (1 - p1) / nt + p0 * (1 - p0) / nc)

    expected = integrate.quad(
        lambda t: power(t, se(t)) * stats.norm.pdf(t, PRIOR.mean, PRIOR.sd), -0.09, 0.5
    )[0]
    got = assurance_two_proportions(PRIOR, p0, nt, nc)
    assert got == pytest.approx(expected, rel=1e-6)
    # a sure prior at 0.02 against the classic power of 10% vs 12% at n = 1500 per arm
    sure = EvidencePrior(0.02, 1e-9, 3)
    assert assurance_two_proportions(sure, p0, nt, nc) == pytest.approx(power(0.02, se(0.02)))
    with pytest.raises(EvidenceError, match="baseline"):
        assurance_two_proportions(PRIOR, 1.2, nt, nc)
