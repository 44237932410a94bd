"""Synthetic residents and their responses, shaped like the five-nation survey, with known true effects.

The population follows the survey's findings (DOMAIN.md): individual co-production rises
with age and is higher among women; collective co-production falls (more weakly) with
age and does not depend on gender; self-efficacy is the strongest correlate of
collective co-production; well-regarded council information raises both. Each arm of a
campaign shifts a resident's log-odds of joining the collective activity by an amount
that may depend on age and self-efficacy (`ArmEffect`), so the true average effect of
every arm, overall and in each age and self-efficacy band, is known exactly
(`true_effects`): it is the estimand a report's intervals should cover.

After the message (`simulate_responses`): verified attendance over several sessions, a
follow-up survey answered more often by those who joined, self-reports that over-report
(more in some arms), individual co-production kept or dropped for the collective activity
(substitution), and follow-up self-efficacy, which an arm may raise and which carries part
of its effect on collective co-production. Every outcome's truth, and the part mediated by
self-efficacy, comes from the residents' expected values (`true_effects_by_outcome`,
`true_mediated`).

Columns whose names start with `true_` are latent truths a council never observes;
only the other columns may be fed to the platform.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import special

from experiments import baseline
from experiments.bands import DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS, BandSpec

COUNTRIES = ("Czech Republic", "Denmark", "France", "Germany", "United Kingdom")
GENDERS = ("woman", "man")
SELF_EFFICACY_ITEMS = ("self_efficacy_safety", "self_efficacy_environment", "self_efficacy_health")
FOLLOWUP_ITEMS = tuple(f"{item}_followup" for item in SELF_EFFICACY_ITEMS)
# As many as the baseline survey lists.
INDIVIDUAL_ACTIVITIES = len(baseline.get("individual_coproduction").options)
AGE_CENTRE = 50.0
SELF_EFFICACY_CENTRE = 3.0

Outcome = Literal[
    "joined",
    "participated",
    "attended",
    "sessions_attended",
    "attended_repeat",
    "self_efficacy_followup",
    "individual_coproduction",
    "collective_coproduction",
]
OUTCOMES: tuple[str, ...] = get_args(Outcome)
SURVEY_OUTCOMES = (
    "participated",
    "self_efficacy_followup",
    "individual_coproduction",
    "collective_coproduction",
)

# Syllables for neighbourhood names shown in messages ({neighbourhood}).
_PLACE_HEADS = (
    "North",
    "South",
    "East",
    "West",
    "Mill",
    "Church",
    "Park",
    "Station",
    "Castle",
    "River",
    "Oak",
    "Ash",
    "Green",
    "Bridge",
    "Market",
    "Orchard",
)
_PLACE_TAILS = ("field", "gate", "side", "hill", "brook", "wood", "end", "moor")
# Common first names by country and gender, for the messages' {first_name}.
_FIRST_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "Czech Republic": {
        "woman": ("Jana", "Eva", "Hana", "Lucie", "Petra", "Tereza"),
        "man": ("Jan", "Petr", "Jiri", "Tomas", "Martin", "Pavel"),
    },
    "Denmark": {
        "woman": ("Anne", "Mette", "Kirsten", "Hanne", "Ida", "Freja"),
        "man": ("Peter", "Jens", "Lars", "Michael", "Rasmus", "Mads"),
    },
    "France": {
        "woman": ("Marie", "Nathalie", "Isabelle", "Camille", "Chloe", "Sophie"),
        "man": ("Jean", "Pierre", "Michel", "Nicolas", "Thomas", "Lucas"),
    },
    "Germany": {
        "woman": ("Anna", "Sabine", "Julia", "Katrin", "Lena", "Ursula"),
        "man": ("Thomas", "Michael", "Stefan", "Andreas", "Jonas", "Klaus"),
    },
    "United Kingdom": {
        "woman": ("Sarah", "Emma", "Margaret", "Olivia", "Susan", "Amelia"),
        "man": ("David", "John", "James", "Oliver", "Paul", "George"),
    },
}


@dataclass(frozen=True)
class SimulationParams:
    """The population model. Log-odds coefficients unless stated; `z` terms are standard normal.

    Latent self-efficacy and latent regard for council information are standard normal
    (correlated); the observed 1-5 items are rounded noisy readings of them. Age enters
    in decades from 50. The defaults give about 10% joining under the control arm.
    """

    country_shares: tuple[float, ...] = (0.2, 0.2, 0.2, 0.2, 0.2)
    """Share of residents from each of COUNTRIES, in that order."""
    share_women: float = 0.52
    """Share of residents who are women (the rest are men)."""
    age_beta: tuple[float, float] = (1.6, 2.2)
    """Age is 18 + 72 x Beta(a, b): mean about 48, range 18-90."""
    regard_efficacy_correlation: float = 0.25
    """Correlation of latent self-efficacy with latent regard for council information."""
    country_efficacy: tuple[float, ...] = (-0.25, 0.3, -0.05, 0.0, 0.05)
    """Shift of latent self-efficacy by country (standard deviations), in COUNTRIES order."""
    item_loading: float = 0.85
    """Points on a 1-5 self-efficacy item per standard deviation of latent self-efficacy."""
    item_noise: float = 0.55
    """Standard deviation of each item's reading noise, in points, before rounding."""
    regard_loading: float = 0.9
    """Points of the 1-5 council-regard answer per standard deviation of latent regard."""

    individual_intercept: float = -0.55
    """Log-odds that a 50-year-old man with average efficacy and regard does one individual activity."""
    individual_age: float = 0.40
    """Individual co-production, per decade of age: strongly positive."""
    individual_woman: float = 0.30
    """Individual co-production: being a woman, positive."""
    individual_efficacy: float = 0.25
    """Individual co-production, per SD of latent self-efficacy: positive."""
    individual_regard: float = 0.25
    """Individual co-production, per SD of latent regard for council information: positive."""

    collective_intercept: float = -1.45
    """Log-odds of past collective co-production for a 50-year-old with average efficacy and regard."""
    collective_age: float = -0.12
    """Collective co-production, per decade of age: negative and weaker than for individual."""
    collective_woman: float = 0.0
    """Collective co-production: being a woman (unrelated in the survey, so zero)."""
    collective_efficacy: float = 0.75
    """Collective co-production, per SD of latent self-efficacy: the strongest correlate."""
    collective_regard: float = 0.30
    """Collective co-production, per SD of latent regard for council information: positive."""
    country_collective: tuple[float, ...] = (-0.2, 0.25, -0.05, 0.05, 0.0)
    """Shift of collective co-production by country, in COUNTRIES order."""
    neighbourhood_sd: float = 0.25
    """SD of a neighbourhood's shared shift in collective propensity (neighbours influence each other)."""
    household_sd: float = 0.2
    """SD of a household's shared shift in collective propensity."""
    household_sizes: tuple[float, ...] = (0.35, 0.35, 0.15, 0.15)
    """Share of households with 1, 2, 3 and 4 residents in the sample."""
    neighbourhood_size: int = 200
    """Average number of sampled residents per neighbourhood."""

    # -- joining and verified attendance ------------------------------------------------
    join_shift: float = -1.1
    """Log-odds of joining the campaign's activity under control, relative to collective propensity."""
    attend_if_joined: float = 0.7
    """Probability that a resident who said they would join comes at least once (verified attendance)."""
    attend_shift: float = -1.6
    """Log-odds of coming anyway without joining, relative to collective propensity."""
    sessions: int = 4
    """Sessions of the recurring activity within the follow-up window (monthly: weeks 0, 4, 8, 12)."""
    return_probability: float = 0.6
    """Probability that an attendee comes back to each later session (first visit: any session, equally likely)."""
    repeat_from_session: int = 3
    """First session that counts as repeat attendance, still coming after 8 weeks (session 3 of monthly sessions)."""

    # -- the follow-up survey and its self-reports ---------------------------------------
    survey_response: float = 0.55
    """Probability of answering the follow-up survey for someone who did not join."""
    survey_response_joined: float = 0.75
    """Probability of answering the follow-up survey for someone who joined."""
    overreport: float = 0.04
    """Probability that a resident who did not take part says they did (control arm; ArmEffect.overreport adds to it)."""

    # -- follow-up self-efficacy, the mediator --------------------------------------------
    followup_drift_sd: float = 0.35
    """SD of the change in latent self-efficacy between baseline and follow-up (no arm)."""
    efficacy_pull: float = 0.3
    """Weight of follow-up self-efficacy in other collective co-production.

    Collective co-production besides the campaign's activity has probability
    (1 - efficacy_pull) x p + efficacy_pull x (M - 1) / 4, p from collective propensity
    and M the follow-up self-efficacy score (1-5): linear in M with the same slope for
    everyone, so each arm's effect on M (ArmEffect.efficacy_followup) carries through to
    collective co-production (the mediated effect).
    """
    other_collective_shift: float = -0.8
    """Log-odds of other collective co-production by follow-up, relative to collective propensity."""

    # -- individual co-production at follow-up --------------------------------------------
    individual_keep: float = 0.85
    """Probability that each individual activity done at baseline is still done at follow-up."""
    individual_take_up: float = 0.05
    """Probability of taking up each individual activity not done at baseline."""
    substitution: float = 0.15
    """Share of their individual activities that attendees of the collective activity drop for it.

    Attendees keep each activity with probability individual_keep - substitution: 0 means
    no substitution; a negative value (down to individual_keep - 1) means attending adds
    individual co-production (crowding in).
    """


@dataclass(frozen=True)
class ArmEffect:
    """The true effect of one arm on the log-odds of joining, varying with the moderators.

    The shift for a resident is `log_odds + per_decade * (age - 50) / 10 +
    per_self_efficacy_point * (self_efficacy - 3)`: a negative `per_decade` helps the young
    most; a negative `per_self_efficacy_point` helps most where self-efficacy is low. The
    control arm has no entry (or a zero ArmEffect).
    """

    log_odds: float = 0.0
    """Shift in log-odds of joining for a 50-year-old with self-efficacy 3."""
    per_decade: float = 0.0
    """Change of that shift per decade of age above 50."""
    per_self_efficacy_point: float = 0.0
    """Change of that shift per point of baseline self-efficacy above 3."""
    efficacy_followup: float = 0.0
    """Rise of follow-up self-efficacy (SDs of latent self-efficacy) for those who saw the
    message: the mediator of the arm's effect on collective co-production."""
    overreport: float = 0.0
    """Extra probability, in this arm, that a resident who did not take part says they did."""

    def shift(self, age: np.ndarray, self_efficacy: np.ndarray) -> np.ndarray:
        return (
            self.log_odds
            + self.per_decade * (np.asarray(age, float) - AGE_CENTRE) / 10.0
            + self.per_self_efficacy_point
            * (np.asarray(self_efficacy, float) - SELF_EFFICACY_CENTRE)
        )


Effects = Mapping[str, ArmEffect]

# True effects for the catalog campaigns (experiments/catalog), keyed by slug, then arm key.
CATALOG_EFFECTS: dict[str, dict[str, ArmEffect]] = {
    "self-efficacy-cleanup": {
        "control": ArmEffect(),
        # Helps most those who doubt that ordinary people make a difference.
        # It also raises self-efficacy, and makes taking part feel expected (over-reporting).
        "efficacy": ArmEffect(
            log_odds=0.45, per_self_efficacy_point=-0.4, efficacy_followup=0.2, overreport=0.03
        ),
    },
    "peer-invitation-young": {
        "control": ArmEffect(),
        # A young neighbour's invitation helps the young most, the old hardly at all.
        "peer": ArmEffect(log_odds=0.3, per_decade=-0.15),
        "peer-practical": ArmEffect(
            log_odds=0.4, per_decade=-0.15, per_self_efficacy_point=-0.15, efficacy_followup=0.1
        ),
    },
    "council-consultation": {
        "control": ArmEffect(),
        "information": ArmEffect(log_odds=0.15),
        # Being asked for one's views helps everyone, a little more where efficacy is low.
        "consultation": ArmEffect(
            log_odds=0.4, per_self_efficacy_point=-0.15, efficacy_followup=0.1
        ),
    },
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _streams(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _items(
    rng: np.random.Generator, latent: np.ndarray, loading: float, noise: float, k: int
) -> np.ndarray:
    raw = 3.0 + loading * latent[:, None] + rng.normal(0.0, noise, (latent.size, k))
    return np.clip(np.rint(raw), 1, 5).astype(int)


def simulate_population(
    n: int, seed: int = 0, params: SimulationParams | None = None
) -> pd.DataFrame:
    """`n` synthetic residents, reproducible from `seed`.

    Columns: `resident` (1..n), `first_name`, `country`, `age` (18-90), `gender` (woman,
    man), the three self-efficacy items (1-5) and their mean `self_efficacy`,
    `council_regard` (1-5: how well the resident rates council information and
    consultation), `individual_coproduction` (number of individual activities, 0-6),
    `collective_coproduction` (1 if they took part in a collective activity last year),
    `household` and `neighbourhood` (cluster ids; the neighbourhood id is a place name),
    and the latent truths `true_efficacy`, `true_collective_logit` and `true_join_logit`
    (log-odds of joining under the control arm).
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n must be a positive whole number of residents, got {n!r}")
    p = params or SimulationParams()
    _check_params(p)
    r_pop, r_items, r_acts, r_clusters, r_names = _streams(seed, 5)

    country_idx = r_pop.choice(
        len(COUNTRIES), size=n, p=np.asarray(p.country_shares) / sum(p.country_shares)
    )
    woman = r_pop.random(n) < p.share_women
    age = np.rint(18 + 72 * r_pop.beta(*p.age_beta, size=n)).astype(int)
    regard_z = r_pop.standard_normal(n)
    rho = p.regard_efficacy_correlation
    efficacy_z = (
        rho * regard_z
        + np.sqrt(1 - rho**2) * r_pop.standard_normal(n)
        + np.asarray(p.country_efficacy)[country_idx]
    )

    items = _items(r_items, efficacy_z, p.item_loading, p.item_noise, len(SELF_EFFICACY_ITEMS))
    regard = _items(r_items, regard_z, p.regard_loading, 0.5, 1)[:, 0]

    decades = (age - AGE_CENTRE) / 10.0
    individual_logit = (
        p.individual_intercept
        + p.individual_age * decades
        + p.individual_woman * woman
        + p.individual_efficacy * efficacy_z
        + p.individual_regard * regard_z
    )
    individual = r_acts.binomial(INDIVIDUAL_ACTIVITIES, _sigmoid(individual_logit))

    household, neighbourhood_idx = _clusters(r_clusters, n, p)
    n_hoods = int(neighbourhood_idx.max()) + 1
    hood_shift = r_clusters.normal(0.0, p.neighbourhood_sd, n_hoods)[neighbourhood_idx]
    n_households = int(household.max()) + 1
    household_shift = r_clusters.normal(0.0, p.household_sd, n_households)[household]

    collective_logit = (
        p.collective_intercept
        + p.collective_age * decades
        + p.collective_woman * woman
        + p.collective_efficacy * efficacy_z
        + p.collective_regard * regard_z
        + np.asarray(p.country_collective)[country_idx]
        + hood_shift
        + household_shift
    )
    collective = (r_acts.random(n) < _sigmoid(collective_logit)).astype(int)

    countries = np.asarray(COUNTRIES, dtype=object)[country_idx]
    genders = np.where(woman, "woman", "man").astype(object)
    name_table = np.asarray(
        [[_FIRST_NAMES[c][g] for g in GENDERS] for c in COUNTRIES], dtype=object
    )
    first_names = name_table[country_idx, np.where(woman, 0, 1), r_names.integers(0, 6, n)]

    frame = pd.DataFrame(
        {
            "resident": np.arange(1, n + 1),
            "first_name": first_names,
            "country": countries,
            "age": age,
            "gender": genders,
            **{name: items[:, k] for k, name in enumerate(SELF_EFFICACY_ITEMS)},
            "self_efficacy": items.mean(axis=1).round(4),
            "council_regard": regard,
            "individual_coproduction": individual,
            "collective_coproduction": collective,
            "household": np.char.add("H", np.char.zfill(household.astype(str), 6)).astype(object),
            "neighbourhood": _place_names(n_hoods)[neighbourhood_idx],
            "true_efficacy": efficacy_z,
            "true_collective_logit": collective_logit,
            "true_join_logit": collective_logit + p.join_shift,
        }
    )
    return frame


def _check_params(p: SimulationParams) -> None:
    for name in ("country_shares", "country_efficacy", "country_collective"):
        if len(getattr(p, name)) != len(COUNTRIES):
            raise ValueError(f"{name} needs {len(COUNTRIES)} values, one per country")
    if min(p.country_shares) < 0 or sum(p.country_shares) <= 0:
        raise ValueError("country_shares must be non-negative with a positive sum")
    if not 0 <= p.share_women <= 1:
        raise ValueError("share_women must be between 0 and 1")
    if not -1 < p.regard_efficacy_correlation < 1:
        raise ValueError("regard_efficacy_correlation must be between -1 and 1")
    if p.neighbourhood_size < 1 or not p.household_sizes or min(p.household_sizes) < 0:
        raise ValueError("neighbourhood_size and household_sizes must be positive")
    _check_followup(p)


def _check_followup(p: SimulationParams) -> None:
    for name in (
        "attend_if_joined",
        "return_probability",
        "survey_response",
        "survey_response_joined",
        "overreport",
        "efficacy_pull",
        "individual_keep",
        "individual_take_up",
    ):
        if not 0 <= getattr(p, name) <= 1:
            raise ValueError(f"{name} must be between 0 and 1")
    if p.sessions < 1 or not 1 <= p.repeat_from_session <= p.sessions:
        raise ValueError("sessions must be at least 1 and repeat_from_session one of them")
    if not 0 <= p.individual_keep - p.substitution <= 1:
        raise ValueError("individual_keep - substitution must be between 0 and 1")


def _clusters(rng: np.random.Generator, n: int, p: SimulationParams) -> tuple[np.ndarray, ...]:
    sizes_p = np.asarray(p.household_sizes, float) / sum(p.household_sizes)
    # Draw more households than needed, then cut the last one to fit exactly n residents.
    sizes = rng.choice(np.arange(1, len(sizes_p) + 1), size=n, p=sizes_p)
    household = np.repeat(np.arange(n), sizes)[:n]
    n_households = int(household[-1]) + 1
    n_hoods = max(1, int(round(n / p.neighbourhood_size)))
    hood_of_household = rng.integers(0, n_hoods, n_households)
    return household, hood_of_household[household]


def _place_names(k: int) -> np.ndarray:
    names = [h + t for h in _PLACE_HEADS for t in _PLACE_TAILS]
    out = [
        names[i % len(names)] + ("" if i < len(names) else f" {i // len(names) + 1}")
        for i in range(k)
    ]
    return np.asarray(out, dtype=object)


def _effect(effects: Effects | None, arm_key: str) -> ArmEffect:
    if effects is None:
        return ArmEffect()
    return effects.get(arm_key, ArmEffect())


def join_probability(
    frame: pd.DataFrame, arm_key: str, effects: Effects | None = None, exposure: float = 1.0
) -> np.ndarray:
    """Each resident's probability of joining the collective activity if assigned `arm_key`.

    `effects` maps arm keys to ArmEffect (an arm without an entry, such as the control,
    has no effect). `exposure` is the chance of seeing the message at all (1 when
    residents enrol through the page, lower when a list is sent invitations); a resident
    who never sees it does not join.
    """
    if not 0 <= exposure <= 1:
        raise ValueError("exposure must be between 0 and 1")
    shift = _effect(effects, arm_key).shift(
        frame["age"].to_numpy(), frame["self_efficacy"].to_numpy()
    )
    return exposure * _sigmoid(frame["true_join_logit"].to_numpy() + shift)


def attendance_probability(
    frame: pd.DataFrame,
    arm_key: str,
    effects: Effects | None = None,
    params: SimulationParams | None = None,
    exposure: float = 1.0,
) -> np.ndarray:
    """Each resident's probability of coming to the activity at least once (verified
    attendance) if assigned `arm_key`: most who said they would join, a few who did not."""
    p = params or SimulationParams()
    joined = join_probability(frame, arm_key, effects, exposure)
    anyway = _sigmoid(frame["true_collective_logit"].to_numpy() + p.attend_shift)
    return joined * p.attend_if_joined + (1 - joined) * anyway


def _overreport(p: SimulationParams, effects: Effects | None, arm_key: str) -> float:
    return p.overreport + _effect(effects, arm_key).overreport


def participation_probability(
    frame: pd.DataFrame,
    arm_key: str,
    effects: Effects | None = None,
    params: SimulationParams | None = None,
    exposure: float = 1.0,
) -> np.ndarray:
    """Each resident's probability of saying at follow-up that they took part, if assigned
    `arm_key`: those who came, and some who did not (over-reporting, more in some arms)."""
    p = params or SimulationParams()
    attended = attendance_probability(frame, arm_key, effects, p, exposure)
    return attended + (1 - attended) * _overreport(p, effects, arm_key)


def _per_attendee(p: SimulationParams) -> tuple[float, float]:
    """Expected sessions attended and probability of repeat attendance, for an attendee
    whose first visit is any session with equal chance and who returns to each later one
    with `return_probability`."""
    first = np.arange(1, p.sessions + 1)
    sessions = float(np.mean(1 + p.return_probability * (p.sessions - first)))
    later = p.sessions - p.repeat_from_session + 1
    back = 1 - (1 - p.return_probability) ** later
    repeat = float(np.mean(np.where(first >= p.repeat_from_session, 1.0, back)))
    return sessions, repeat


def _item_change_law(p: SimulationParams, mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Changes j = -4..4 of one follow-up self-efficacy item and their probabilities:
    the change is the rounded N(mean, sd^2) reading of the change in latent
    self-efficacy (a change of 4 or more reaches the end of the 1-5 scale from anywhere)."""
    sd = math.hypot(p.item_loading * p.followup_drift_sd, p.item_noise)
    j = np.arange(-4, 5)
    upper = special.ndtr((j + 0.5 - mean) / sd)
    lower = special.ndtr((j - 0.5 - mean) / sd)
    upper[-1], lower[0] = 1.0, 0.0
    return j, upper - lower


def expected_followup_efficacy(
    frame: pd.DataFrame,
    arm_key: str,
    effects: Effects | None = None,
    params: SimulationParams | None = None,
    exposure: float = 1.0,
) -> np.ndarray:
    """Each resident's expected follow-up self-efficacy score (mean of the three 1-5 items)
    if assigned `arm_key`: each baseline item moves by the rounded reading of the change in
    latent self-efficacy, raised by the arm's `efficacy_followup` if the message was seen."""
    p = params or SimulationParams()
    items = frame[list(SELF_EFFICACY_ITEMS)].to_numpy(dtype=float)

    def expected(mean: float) -> np.ndarray:
        j, prob = _item_change_law(p, mean)
        moved = np.clip(items[:, :, None] + j[None, None, :], 1, 5)
        return (moved @ prob).mean(axis=1)

    seen = expected(p.item_loading * _effect(effects, arm_key).efficacy_followup)
    if exposure == 1.0:
        return seen
    return exposure * seen + (1 - exposure) * expected(0.0)


def _other_collective(frame: pd.DataFrame, p: SimulationParams, efficacy: np.ndarray):
    """Probability of collective co-production besides the campaign's activity, linear in
    the follow-up self-efficacy score."""
    base = _sigmoid(frame["true_collective_logit"].to_numpy() + p.other_collective_shift)
    return (1 - p.efficacy_pull) * base + p.efficacy_pull * (efficacy - 1) / 4


def collective_probability(
    frame: pd.DataFrame,
    arm_key: str,
    effects: Effects | None = None,
    params: SimulationParams | None = None,
    exposure: float = 1.0,
    mediator_arm: str | None = None,
) -> np.ndarray:
    """Each resident's probability of reporting collective co-production at follow-up
    (came to the activity, or took part in another group, or says so anyway) if assigned
    `arm_key`, with follow-up self-efficacy as under `mediator_arm` (default: the same
    arm). Setting the mediator's arm apart is what defines the mediated effect."""
    p = params or SimulationParams()
    attended = attendance_probability(frame, arm_key, effects, p, exposure)
    efficacy = expected_followup_efficacy(frame, mediator_arm or arm_key, effects, p, exposure)
    other = _other_collective(frame, p, efficacy)
    return 1 - (1 - attended) * (1 - other) * (1 - _overreport(p, effects, arm_key))


def expected_individual(
    frame: pd.DataFrame,
    arm_key: str,
    effects: Effects | None = None,
    params: SimulationParams | None = None,
    exposure: float = 1.0,
) -> np.ndarray:
    """Each resident's expected number of individual activities at follow-up if assigned
    `arm_key`: baseline activities kept (fewer for attendees, by `substitution`), plus new."""
    p = params or SimulationParams()
    attended = attendance_probability(frame, arm_key, effects, p, exposure)
    baseline = frame["individual_coproduction"].to_numpy(dtype=float)
    keep = p.individual_keep - p.substitution * attended
    return baseline * keep + (INDIVIDUAL_ACTIVITIES - baseline) * p.individual_take_up


def expected_outcome(
    frame: pd.DataFrame,
    outcome: Outcome,
    arm_key: str,
    effects: Effects | None = None,
    params: SimulationParams | None = None,
    exposure: float = 1.0,
) -> np.ndarray:
    """Each resident's expected value of `outcome` (a probability for a 0/1 outcome) if
    assigned `arm_key`, whether or not they would answer the survey."""
    p = params or SimulationParams()
    if outcome == "joined":
        return join_probability(frame, arm_key, effects, exposure)
    if outcome == "participated":
        return participation_probability(frame, arm_key, effects, p, exposure)
    if outcome in ("attended", "sessions_attended", "attended_repeat"):
        attended = attendance_probability(frame, arm_key, effects, p, exposure)
        sessions, repeat = _per_attendee(p)
        per = {"attended": 1.0, "sessions_attended": sessions, "attended_repeat": repeat}
        return attended * per[outcome]
    if outcome == "self_efficacy_followup":
        return expected_followup_efficacy(frame, arm_key, effects, p, exposure)
    if outcome == "individual_coproduction":
        return expected_individual(frame, arm_key, effects, p, exposure)
    if outcome == "collective_coproduction":
        return collective_probability(frame, arm_key, effects, p, exposure)
    raise ValueError(f"unknown outcome {outcome!r}: one of {', '.join(OUTCOMES)}")


@dataclass
class TrueEffects:
    """True average effects (differences in probability) of each arm against the control.

    `overall[arm]` is the average over the frame; `by_band[moderator][arm][level]` is the
    average inside each band; `control_rate` and `band_sizes` give the context.
    """

    outcome: str
    control: str
    overall: dict[str, float]
    by_band: dict[str, dict[str, dict[str, float]]]
    control_rate: float
    band_sizes: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per arm and subgroup: moderator ('' overall), level, arm, effect, n."""
        rows = [
            {
                "moderator": "",
                "level": "",
                "arm": arm,
                "effect": eff,
                "n": sum(next(iter(self.band_sizes.values()), {}).values()) or None,
            }
            for arm, eff in self.overall.items()
        ]
        for moderator, arms in self.by_band.items():
            for arm, levels in arms.items():
                for level, eff in levels.items():
                    rows.append(
                        {
                            "moderator": moderator,
                            "level": level,
                            "arm": arm,
                            "effect": eff,
                            "n": self.band_sizes[moderator][level],
                        }
                    )
        return pd.DataFrame(rows)


def true_effects(
    frame: pd.DataFrame,
    effects: Effects,
    arms: list[str] | None = None,
    control: str = "control",
    outcome: Outcome = "joined",
    bands: tuple[BandSpec, ...] = (DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS),
    params: SimulationParams | None = None,
    exposure: float = 1.0,
) -> TrueEffects:
    """The true intention-to-treat effect of every arm on `outcome`, overall and within
    each band.

    Averaged over the residents in `frame`: for the frame a campaign enrolled, this is
    the sample average effect that a difference in means estimates without bias; for a
    very large frame it is the population effect. Survey outcomes count everyone, as if
    all answered (an estimate from respondents alone must correct for who answered).
    `arms` defaults to the keys of `effects` besides `control`.
    """
    if arms is None:
        arms = [key for key in effects if key != control]
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}: one of {', '.join(OUTCOMES)}")

    def prob(key: str) -> np.ndarray:
        return expected_outcome(frame, outcome, key, effects, params, exposure)

    base = prob(control)
    diffs = {arm: prob(arm) - base for arm in arms}
    overall = {arm: float(d.mean()) for arm, d in diffs.items()}
    by_band: dict[str, dict[str, dict[str, float]]] = {}
    sizes: dict[str, dict[str, int]] = {}
    for spec in bands:
        level = spec.assign(frame[spec.column]).to_numpy()
        levels = spec.levels or sorted({lv for lv in level if lv is not None})
        sizes[spec.column] = {lv: int((level == lv).sum()) for lv in levels}
        by_band[spec.column] = {
            arm: {
                lv: float(d[level == lv].mean()) if (level == lv).any() else float("nan")
                for lv in levels
            }
            for arm, d in diffs.items()
        }
    return TrueEffects(
        outcome=outcome,
        control=control,
        overall=overall,
        by_band=by_band,
        control_rate=float(base.mean()),
        band_sizes=sizes,
    )


def true_effects_by_outcome(
    frame: pd.DataFrame,
    effects: Effects,
    arms: list[str] | None = None,
    control: str = "control",
    params: SimulationParams | None = None,
    exposure: float = 1.0,
    outcomes: tuple[str, ...] = OUTCOMES,
) -> dict[str, dict[str, float]]:
    """`{outcome: {arm: true effect}}` over the residents in `frame` (as `true_effects`)."""
    return {
        outcome: true_effects(
            frame,
            effects,
            arms,
            control,
            outcome,
            (),
            params,
            exposure,  # type: ignore[arg-type]
        ).overall
        for outcome in outcomes
    }


def true_mediated(
    frame: pd.DataFrame,
    effects: Effects,
    arms: list[str] | None = None,
    control: str = "control",
    params: SimulationParams | None = None,
    exposure: float = 1.0,
) -> dict[str, float]:
    """Each arm's true average causal mediation effect on collective co-production through
    follow-up self-efficacy: the change in collective co-production if only self-efficacy
    moved as under the arm rather than the control, averaged over being in the arm and in
    the control (Imai, Keele and Tingley's average ACME)."""
    if arms is None:
        arms = [key for key in effects if key != control]
    out = {}
    for arm in arms:
        acme = 0.0
        for status in (arm, control):

            def under(mediator: str, status: str = status) -> np.ndarray:
                return collective_probability(frame, status, effects, params, exposure, mediator)

            acme += float((under(arm) - under(control)).mean()) / 2
        out[arm] = acme
    return out


def simulate_responses(
    frame: pd.DataFrame,
    arms: pd.Series | np.ndarray | list,
    effects: Effects | None = None,
    seed: int = 0,
    params: SimulationParams | None = None,
    exposure: float = 1.0,
) -> pd.DataFrame:
    """What each resident does after being assigned: sees, joins, comes, answers the follow-up.

    `arms` gives each resident's assigned arm key (aligned with `frame`). Returns, in
    frame order: `arm`, `exposed` (saw the message), `joined`, verified attendance
    (`attended` at least once, `sessions_attended`, `attended_repeat`: still coming from
    session `repeat_from_session`), `surveyed` (answered the follow-up survey) and the
    survey's answers, missing when not surveyed: `participated` ("have you taken part?",
    over-reported), the three follow-up self-efficacy items with their mean
    `self_efficacy_followup`, `individual_coproduction` (individual activities done now,
    0-6) and `collective_coproduction` (took part in the activity or another group, as
    reported). The frame's own `individual_coproduction` and `collective_coproduction`
    are the baseline values. Reproducible from `seed`.
    """
    p = params or SimulationParams()
    _check_followup(p)
    arms = np.asarray(arms, dtype=object)
    if arms.shape != (len(frame),):
        raise ValueError(f"arms has {arms.size} entries for {len(frame)} residents")
    streams = _streams(seed, 9)
    r_expose, r_join, r_attend, r_survey, r_items = streams[:5]
    r_sessions, r_report, r_individual, r_collective = streams[5:]
    n = len(frame)
    u_expose, u_join = r_expose.random(n), r_join.random(n)
    u_attend, u_survey = r_attend.random(n), r_survey.random(n)

    exposed = u_expose < exposure
    join_p = np.zeros(n)
    efficacy_shift = np.zeros(n)
    overreport = np.zeros(n)
    for key in pd.unique(arms):
        mask = arms == key
        join_p[mask] = join_probability(frame[mask], key, effects, exposure=1.0)
        efficacy_shift[mask] = _effect(effects, key).efficacy_followup
        overreport[mask] = _overreport(p, effects, key)
    joined = exposed & (u_join < join_p)
    anyway = _sigmoid(frame["true_collective_logit"].to_numpy() + p.attend_shift)
    attended = np.where(joined, u_attend < p.attend_if_joined, u_attend < anyway)
    sessions, repeat = _sessions(r_sessions, attended, p)
    surveyed = u_survey < np.where(joined, p.survey_response_joined, p.survey_response)
    participated = attended | (r_report.random(n) < overreport)

    items = _followup_items(r_items, frame, efficacy_shift * exposed, p)
    score = items.mean(axis=1).round(4)
    individual = _individual_followup(r_individual, frame, attended, p)
    other = r_collective.random(n) < _other_collective(frame, p, score)
    collective = attended | other | (r_report.random(n) < overreport)

    out = pd.DataFrame(
        {
            "arm": arms,
            "exposed": exposed.astype(int),
            "joined": joined.astype(int),
            "attended": attended.astype(int),
            "sessions_attended": sessions,
            "attended_repeat": repeat.astype(int),
            "surveyed": surveyed.astype(int),
        },
        index=frame.index,
    )
    answers = {
        "participated": participated.astype(int),
        **{name: items[:, k] for k, name in enumerate(FOLLOWUP_ITEMS)},
    }
    for name, values in answers.items():
        out[name] = pd.array(values, dtype="Int64")
        out.loc[~surveyed, name] = pd.NA
    out["self_efficacy_followup"] = np.where(surveyed, score, np.nan)
    out["individual_coproduction"] = np.where(surveyed, individual, np.nan)
    out["collective_coproduction"] = np.where(surveyed, collective.astype(float), np.nan)
    return out


def _sessions(
    rng: np.random.Generator, attended: np.ndarray, p: SimulationParams
) -> tuple[np.ndarray, np.ndarray]:
    """Sessions attended and repeat attendance: an attendee's first visit is any session
    with equal chance, then each later session with `return_probability`."""
    n = len(attended)
    first = rng.integers(1, p.sessions + 1, n)
    session = np.arange(1, p.sessions + 1)[None, :]
    back = (rng.random((n, p.sessions)) < p.return_probability) & (session > first[:, None])
    present = (back | (session == first[:, None])) & attended[:, None]
    repeat = present[:, p.repeat_from_session - 1 :].any(axis=1)
    return present.sum(axis=1), repeat


def _followup_items(
    rng: np.random.Generator, frame: pd.DataFrame, shift: np.ndarray, p: SimulationParams
) -> np.ndarray:
    """The follow-up self-efficacy items: each baseline item moved by the rounded reading of
    the change in latent self-efficacy (a shared drift, the arm's shift for those who saw
    it, and each item's own reading noise). The change depends on nothing else about the
    resident, so given the baseline answers the mediator shares no hidden cause with the
    outcomes (sequential ignorability holds by construction)."""
    n = len(frame)
    latent_change = rng.normal(0.0, p.followup_drift_sd, n) + shift
    noise = rng.normal(0.0, p.item_noise, (n, len(FOLLOWUP_ITEMS)))
    change = np.rint(p.item_loading * latent_change[:, None] + noise)
    baseline = frame[list(SELF_EFFICACY_ITEMS)].to_numpy(dtype=float)
    return np.clip(baseline + change, 1, 5).astype(int)


def _individual_followup(
    rng: np.random.Generator, frame: pd.DataFrame, attended: np.ndarray, p: SimulationParams
) -> np.ndarray:
    """Individual activities at follow-up: baseline ones kept (attendees keep fewer, by
    `substitution`), others taken up."""
    baseline = frame["individual_coproduction"].to_numpy(dtype=int)
    keep = p.individual_keep - p.substitution * attended
    kept = rng.binomial(baseline, keep)
    return kept + rng.binomial(INDIVIDUAL_ACTIVITIES - baseline, p.individual_take_up)


def with_params(params: SimulationParams | None = None, **changes: float) -> SimulationParams:
    """A copy of `params` (or the defaults) with some fields changed."""
    return replace(params or SimulationParams(), **changes)


def baseline_answers(frame: pd.DataFrame) -> pd.DataFrame:
    """The simulated residents' answers to the baseline page, as the registry's variables'
    values (`experiments.baseline`): age, gender, self-efficacy, the number of individual
    activities, and collective co-production on the page's scale (0 never; a resident who
    took part in a group last year answers 1, "once or a few times a year")."""
    return pd.DataFrame(
        {
            "age": frame["age"].to_numpy(),
            "gender": frame["gender"].to_numpy(),
            "self_efficacy": frame["self_efficacy"].to_numpy(),
            "individual_coproduction": frame["individual_coproduction"].to_numpy(),
            "collective_coproduction": frame["collective_coproduction"].to_numpy(),
            "country": frame["country"].to_numpy(),
        },
        index=frame.index,
    )


def eligible(frame: pd.DataFrame, rules) -> np.ndarray:
    """Which simulated residents a campaign's eligibility rules (`experiments.eligibility`
    Rules, or their texts) admit, from their baseline answers: the population a report's
    estimates, and the truth they are checked against, refer to."""
    from experiments.eligibility import parse_rule, screen_frame

    checked = [rule if hasattr(rule, "admits") else parse_rule(rule) for rule in rules]
    if not checked:
        return np.ones(len(frame), dtype=bool)
    failed = screen_frame(checked, baseline_answers(frame))
    return np.array([f is None for f in failed], dtype=bool)
