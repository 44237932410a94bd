"""Councils: the tenants."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select

from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import Council
from nudge_app.services import audit
from nudge_app.text_limits import within_column

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
LOCALE_RE = re.compile(r"^[a-z]{2}(?:[-_][A-Za-z]{2})?$")  # as the participant import


class CouncilError(DomainError):
    """A council that cannot be created as asked."""

    code = "invalid_council"


def create_council(
    slug: str, name: str, timezone: str = "Europe/London", locale: str = "en", actor: str = "cli"
) -> Council:
    if not SLUG_RE.match(slug or ""):
        raise CouncilError(f"slug {slug!r}: use lowercase letters, digits and hyphens")
    if not name or not name.strip():
        raise CouncilError("name: must not be empty", field="name")
    within_column(name.strip(), Council.name, "name")
    if not LOCALE_RE.match(locale or ""):
        raise CouncilError(
            f"locale {locale!r}: must be a language code like en or en-GB", field="locale"
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CouncilError(
            f"timezone {timezone!r} is not a known IANA zone, e.g. Europe/London"
        ) from None
    if db.session.scalar(select(Council).where(Council.slug == slug)):
        raise CouncilError(f"a council with slug {slug!r} already exists")
    council = Council(slug=slug, name=name.strip(), timezone=timezone, locale=locale)
    db.session.add(council)
    db.session.flush()
    audit.record(
        council_id=council.id,
        actor=actor,
        action="council.create",
        object_type="council",
        object_id=council.id,
        after={"slug": slug, "name": council.name, "timezone": timezone},
    )
    return council


def council_by_slug(slug: str) -> Council | None:
    return db.session.scalar(select(Council).where(Council.slug == slug))
