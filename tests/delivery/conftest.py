"""Fixtures for delivery tests: participants with assignments, launched campaigns."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _close_channels(request):
    """Close the provider connections a test's app opened (SMTP sockets, HTTP pools)."""
    app = request.getfixturevalue("app") if "app" in request.fixturenames else None
    yield
    if app is not None:
        from nudge_app.delivery.channels import close_channels

        close_channels(app)


@pytest.fixture
def make_participants(app):
    """make_participants(campaign, n, arms=None, email=True, phone=False, **fields) -> list.

    Participants get an assignment to the campaign's arms in turn (or none if arms=[]).
    """
    from nudge_app.extensions import db
    from nudge_app.models import Assignment, Participant
    from nudge_app.security import new_nonce, participant_token, sha256_hex

    counter = {"n": 0}

    def make(campaign, n=1, arms=None, email=True, phone=False, **fields):
        arms = campaign.arms if arms is None else arms
        made = []
        for i in range(n):
            counter["n"] += 1
            k = counter["n"]
            nonce = new_nonce()
            p = Participant(
                campaign_id=campaign.id,
                external_ref=f"r{k}",
                access_nonce=nonce,
                access_token_hash=sha256_hex(participant_token(app.config["SECRET_KEY"], nonce)),
                first_name=f"Person{k}",
                email=f"person{k}@example.org" if email else None,
                phone=f"0770090{k:04d}" if phone else None,
                consent_status="given",
                **fields,
            )
            db.session.add(p)
            db.session.flush()
            if arms:
                arm = arms[i % len(arms)]
                db.session.add(
                    Assignment(
                        participant_id=p.id,
                        campaign_id=campaign.id,
                        arm_id=arm.id,
                        method="complete",
                        probability=0.5,
                    )
                )
            made.append(p)
        db.session.flush()
        return made

    return make


@pytest.fixture
def running_list_campaign(app, council, make_campaign):
    """A running `list` campaign (council-consultation) with no participants yet."""
    from nudge_app.extensions import db

    campaign = make_campaign(council, "council-consultation")
    campaign.status = "running"
    from nudge_app.db import utcnow

    campaign.launched_at = utcnow()
    db.session.commit()
    return campaign


class ScriptedChannel:
    """A fake provider: answers from a script (default: accepted) and remembers every send."""

    def __init__(self, name="scripted", outcomes=()):
        from nudge_app.delivery.channels import ProviderReceipt

        self.name = name
        self.script = list(outcomes)
        self.sent = []  # every RenderedMessage handed over, accepted or not
        self.accepted = {}
        self._result = ProviderReceipt

    def send(self, message):
        self.sent.append(message)
        outcome = self.script.pop(0) if self.script else "accepted"
        if outcome == "accepted":
            self.accepted[message.reference] = f"p-{message.reference}"
            return self._result("accepted", provider_id=f"p-{message.reference}")
        if outcome == "ambiguous-accepted":  # taken, but the answer was lost
            self.accepted[message.reference] = f"p-{message.reference}"
            return self._result("ambiguous", error="read timeout")
        return self._result(outcome, error=f"scripted {outcome}")

    def lookup(self, reference):
        from nudge_app.delivery.channels import LookupResult

        if reference in self.accepted:
            return LookupResult(True, provider_id=self.accepted[reference])
        return LookupResult(False)


@pytest.fixture
def scripted():
    return ScriptedChannel


@pytest.fixture
def daytime():
    """A weekday noon in London (UTC = GMT in winter) after every message's due time."""
    from datetime import timedelta

    from nudge_app.db import utcnow

    base = utcnow() + timedelta(days=1)
    return base.replace(hour=12, minute=0, second=0, microsecond=0)
