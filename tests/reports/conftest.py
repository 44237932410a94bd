"""A running campaign with randomized participants and known outcomes, for report tests."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.bands import DEFAULT_AGE_BANDS, DEFAULT_SELF_EFFICACY_BANDS, stratum_label


@pytest.fixture
def populate(app):
    """populate(campaign, n, seed): n randomized participants with events and surveys.

    Returns the list of plain dicts written (arm key, age, ..., joined, participated) so a
    test can compute the expected figures independently of the report code.
    """
    from nudge_app.extensions import db
    from nudge_app.models import Assignment, Event, OutboundMessage, SurveyResponse

    def make(campaign, n: int = 400, seed: int = 0, effect: float = 0.15):
        from flask import current_app

        from nudge_app.models import Participant
        from nudge_app.security import new_nonce, participant_token, sha256_hex

        rng = np.random.default_rng(seed)
        arms = list(campaign.arms)
        secret = current_app.config["SECRET_KEY"]
        people = []
        for i in range(n):
            nonce = new_nonce()
            people.append(
                Participant(
                    campaign_id=campaign.id,
                    access_nonce=nonce,
                    access_token_hash=sha256_hex(participant_token(secret, nonce)),
                    age=int(rng.integers(18, 85)),
                    self_efficacy=float(np.round(rng.uniform(1, 5), 2)),
                    gender=str(rng.choice(["woman", "man"])),
                    cluster=f"h{i // 2}",
                )
            )
        db.session.add_all(people)
        db.session.flush()  # one round trip for all the ids
        # Each person's bands, cut for all of them at once (one call per moderator: a
        # call per person cost most of this fixture's time).
        age_bands = DEFAULT_AGE_BANDS.assign([p.age for p in people]).tolist()
        se_bands = DEFAULT_SELF_EFFICACY_BANDS.assign([p.self_efficacy for p in people]).tolist()
        written = []
        for i, p in enumerate(people):
            arm = arms[i % len(arms)]
            label = stratum_label({"age": age_bands[i], "self_efficacy": se_bands[i]})
            db.session.add(
                Assignment(
                    participant_id=p.id,
                    campaign_id=campaign.id,
                    arm_id=arm.id,
                    stratum=label,
                    method="blocked",
                    probability=1 / len(arms),
                )
            )
            joined = bool(rng.random() < 0.2 + effect * (not arm.is_control))
            exposed = bool(rng.random() < 0.8)
            delivered = bool(rng.random() < 0.9)
            answered = bool(rng.random() < 0.6)
            participated = bool(rng.random() < 0.3) if answered else None
            if exposed:
                db.session.add(
                    Event(
                        campaign_id=campaign.id,
                        participant_id=p.id,
                        kind="exposure",
                        idempotency_key=f"exposure:{p.id}",
                    )
                )
            if joined:
                db.session.add(
                    Event(
                        campaign_id=campaign.id,
                        participant_id=p.id,
                        kind="join",
                        idempotency_key=f"join:{p.id}",
                    )
                )
            if delivered:
                db.session.add(
                    OutboundMessage(
                        campaign_id=campaign.id,
                        participant_id=p.id,
                        arm_id=arm.id,
                        kind="nudge",
                        channel="email",
                        due_at=p.created_at,
                        status="delivered",
                        idempotency_key=f"test-nudge:{p.id}",
                    )
                )
            if answered:
                db.session.add(
                    SurveyResponse(
                        campaign_id=campaign.id,
                        participant_id=p.id,
                        kind="follow_up",
                        answers={},
                        participated=participated,
                        self_efficacy=3.0,
                    )
                )
            written.append(
                dict(
                    participant_id=p.id,
                    arm=arm.key,
                    age=p.age,
                    self_efficacy=p.self_efficacy,
                    gender=p.gender,
                    joined=float(joined),
                    exposed=float(exposed),
                    delivered=float(delivered),
                    participated=np.nan if participated is None else float(participated),
                    stratum=label,
                )
            )
        db.session.commit()
        return written

    return make


@pytest.fixture
def staff_client(app, client):
    """staff_client(council): the test client logged in as an evaluator of that council."""
    from nudge_app.extensions import db
    from nudge_app.services.staff import create_user

    def login(council, email="evaluator@example.org"):
        from nudge_app.auth import SESSION_ID
        from nudge_app.services import staff_sessions

        user = create_user(council, email, "evaluator", "a long enough password 123")
        token = staff_sessions.start(user)
        db.session.commit()
        with client.session_transaction() as session:
            session[SESSION_ID] = token
        return client

    return login
