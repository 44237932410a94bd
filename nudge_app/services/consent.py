"""Consent versions: which wording of a campaign's consent notice a person agreed to.

The notice (`participant/_consent_notice.html`) is generated from the campaign's live
settings. Its English text, tags stripped, is hashed; each new hash becomes the campaign's
next version (1, 2, ...), made when a consent is recorded with a text not seen before, or
at once when a live campaign's retention or lawful basis is edited. Every consent stores
its version, and reports and exports count participants per version. Functions flush,
never commit.
"""

from __future__ import annotations

import hashlib
import re
from html import unescape

from flask import render_template
from flask_babel import force_locale
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from nudge_app.extensions import db
from nudge_app.models import Campaign, ConsentVersion, Participant

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_texts: dict[tuple, str] = {}


def notice_text(campaign: Campaign) -> str:
    """The notice a listed person reads, in English, as plain text."""
    # A launched campaign's follow-up steps never change (its design is frozen): counting
    # them would load them on every consent, so only a draft's are counted.
    key = (
        campaign.id,
        campaign.salt,
        str(campaign.updated_at),
        campaign.council.name,
        None if campaign.is_frozen else len(campaign.follow_up_steps),
    )
    text = _texts.get(key)
    if text is None:
        with force_locale("en"):
            html = render_template(
                "participant/_consent_notice.html", campaign=campaign, listed=True
            )
        text = _SPACE.sub(" ", unescape(_TAG.sub(" ", html))).strip()
        if len(_texts) > 500:
            _texts.clear()
        _texts[key] = text
    return text


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def current_version(campaign: Campaign) -> ConsentVersion:
    """The version of the notice as it reads now, made if this text is new."""
    text = notice_text(campaign)
    digest = text_hash(text)
    found = _by_hash(campaign.id, digest)
    if found is not None:
        return found
    number = (
        db.session.scalar(
            select(func.max(ConsentVersion.number)).where(ConsentVersion.campaign_id == campaign.id)
        )
        or 0
    ) + 1
    try:
        with db.session.begin_nested():
            version = ConsentVersion(
                campaign_id=campaign.id, number=number, text_hash=digest, text=text
            )
            db.session.add(version)
            db.session.flush()
    except IntegrityError:  # another request made it first
        found = _by_hash(campaign.id, digest)
        if found is None:
            raise
        return found
    return version


def _by_hash(campaign_id: int, digest: str) -> ConsentVersion | None:
    return db.session.scalar(
        select(ConsentVersion).where(
            ConsentVersion.campaign_id == campaign_id, ConsentVersion.text_hash == digest
        )
    )


def counts_by_version(campaign: Campaign) -> list[dict]:
    """[{"number", "hash", "participants"}] for every version, oldest first; consents
    recorded without a version (imported as given, or before versions existed) are
    counted under number None."""
    rows = db.session.execute(
        select(ConsentVersion.number, ConsentVersion.text_hash, func.count(Participant.id))
        .select_from(ConsentVersion)
        .outerjoin(Participant, Participant.consent_version_id == ConsentVersion.id)
        .where(ConsentVersion.campaign_id == campaign.id)
        .group_by(ConsentVersion.id, ConsentVersion.number, ConsentVersion.text_hash)
        .order_by(ConsentVersion.number)
    ).all()
    out = [{"number": n, "hash": h, "participants": int(c)} for n, h, c in rows]
    unversioned = db.session.scalar(
        select(func.count(Participant.id)).where(
            Participant.campaign_id == campaign.id,
            Participant.consent_status == "given",
            Participant.consent_version_id.is_(None),
        )
    )
    if unversioned:
        out.append({"number": None, "hash": None, "participants": int(unversioned)})
    return out
