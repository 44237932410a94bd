"""The audit log: every change to a council's configuration, with who, when, before, after."""

from __future__ import annotations

from typing import Any

from nudge_app.extensions import db
from nudge_app.models import AuditEntry


def record(
    *,
    council_id: int | None,
    actor: str,
    action: str,
    object_type: str,
    object_id: Any = None,
    before: dict | None = None,
    after: dict | None = None,
    actor_id: int | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        council_id=council_id,
        actor=actor,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        before=before,
        after=after,
    )
    db.session.add(entry)
    db.session.flush()
    return entry
