"""Verified attendance: the organiser of the campaign's collective activity records who came
to each session (its date), at the door (search by name or check-in code, or the QR code
of that code) or afterwards from an attendance register (CSV).

Each participant has a short check-in code, an HMAC of their id under the app's secret
key (no personal data, not guessable, the same whenever it is written again): it is what
their invitation and page show as text and as a QR code. A register row is matched on a
reference (the check-in code, or the list's own external reference) or on a contact
(email or phone); a reference that matches nobody, a row twice, a missing or unknown
column or a bad date rejects the whole file, naming the row; a contact that matches
nobody (someone not in the trial came) is listed as unmatched and the rest is recorded.
Services flush, never commit.
"""

from __future__ import annotations

import codecs
import csv
import hmac
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app
from markupsafe import Markup
from sqlalchemy import func, or_, select

from nudge_app.db import utcnow
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import Assignment, Campaign, CheckIn, Participant
from nudge_app.services import audit

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at a door
CODE_LENGTH = 8
# Byte b -> CODE_ALPHABET[b % 32], for bytes.translate (a message's code in one C call).
_LETTERS = bytes(ord(CODE_ALPHABET[b % len(CODE_ALPHABET)]) for b in range(256))
SESSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REGISTER_COLUMNS = ("reference", "email", "phone", "session", "name")
MAX_REGISTER_BYTES = 2 * 1024 * 1024
MAX_REGISTER_ROWS = 20_000
REPEAT_AFTER = timedelta(weeks=8)


class AttendanceError(DomainError):
    """A check-in the platform cannot record (unknown code, a session date not valid)."""

    code = "attendance"


class RegisterRejected(DomainError):
    """An attendance register that cannot be recorded; nothing was changed."""

    code = "register_rejected"

    def __init__(self, problems: list[tuple[int, str, str]]):
        self.problems = problems
        first = problems[0]
        where = f"row {first[0]}, {first[1]}" if first[0] else first[1] or "the file"
        super().__init__(
            f"{len(problems)} problem(s) in the register, nothing was recorded; first: "
            f"{where}: {first[2]}"
        )


def check_in_code(participant_id: int, secret_key: str | None = None) -> str:
    """The participant's check-in code, `XXXX-XXXX`."""
    key = (secret_key or current_app.config["SECRET_KEY"]).encode()
    return code_text(hmac.digest(key, f"check-in:{participant_id}".encode(), "sha256"))


def code_text(digest: bytes) -> str:
    """A check-in code's text, `XXXX-XXXX`, from its HMAC."""
    letters = digest[:CODE_LENGTH].translate(_LETTERS).decode()
    return f"{letters[:4]}-{letters[4:]}"


def check_in_note(code: str, page: str | None = None) -> str:
    """The e-mail's words about the check-in code. An e-mail sent as text only (GOV.UK
    Notify renders its own plain template and takes no attachment) cannot carry the QR
    image itself, so it names `page`, the participant's own page, where the QR shows."""
    text = f"Your check-in code for the activity: {code}. Show it at the door."
    if page:
        text += f" Your page shows it as a QR code the organiser can scan: {page}"
    return text


def qr_svg(code: str, label: str) -> Markup:
    """The code as an inline SVG QR code (no style attribute: the pages' CSP holds)."""
    import segno

    svg = segno.make(code, error="m").svg_inline(
        scale=5, title=label, svgclass="qr", lineclass="qr-line", omitsize=False
    )
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))


def qr_png(code: str) -> bytes:
    """The code as a PNG QR code, for e-mail (mail programs seldom show SVG)."""
    import segno

    out = io.BytesIO()
    segno.make(code, error="m").save(out, kind="png", scale=6, border=4)
    return out.getvalue()


def normalise_code(text: str) -> str:
    """A typed or scanned code as `XXXX-XXXX` (case, spaces and dashes do not matter)."""
    compact = re.sub(r"[^A-Za-z0-9]", "", text or "").upper()
    return f"{compact[:4]}-{compact[4:]}" if len(compact) == CODE_LENGTH else compact


def parse_session(text: str) -> str:
    """A session date as YYYY-MM-DD, or AttendanceError naming the problem."""
    text = (text or "").strip()
    if not SESSION_RE.match(text):
        raise AttendanceError(
            f"the session date {text!r} is not a date like 2026-12-05", field="session"
        )
    try:
        date.fromisoformat(text)
    except ValueError:
        raise AttendanceError(f"{text!r} is not a calendar date", field="session") from None
    return text


def _participants(campaign: Campaign):
    """The campaign's randomized participants (only they can attend as participants)."""
    return (
        select(Participant)
        .join(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.campaign_id == campaign.id, Participant.erased_at.is_(None))
    )


def codes_of(campaign: Campaign) -> dict[str, int]:
    """Check-in code -> participant id for the campaign's randomized participants."""
    key = current_app.config["SECRET_KEY"]
    ids = db.session.scalars(
        select(Participant.id)
        .join(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.campaign_id == campaign.id, Participant.erased_at.is_(None))
    )
    return {check_in_code(pid, key): pid for pid in ids}


@dataclass(frozen=True)
class Found:
    """A participant as the door page lists them: enough to tell two Sams apart."""

    participant_id: int
    first_name: str
    contact_hint: str
    code: str
    sessions: tuple[str, ...]


def _hint(p: Participant) -> str:
    if p.email:
        local, _, domain = p.email.partition("@")
        return f"{local[:1]}…@{domain}"
    if p.phone:
        return f"…{p.phone[-3:]}"
    return ""


def sessions_of(campaign: Campaign, participant_ids: Iterable[int]) -> dict[int, list[str]]:
    ids = list(participant_ids)
    out: dict[int, list[str]] = {pid: [] for pid in ids}
    if not ids:
        return out
    for pid, session in db.session.execute(
        select(CheckIn.participant_id, CheckIn.session)
        .where(CheckIn.campaign_id == campaign.id, CheckIn.participant_id.in_(ids))
        .order_by(CheckIn.session)
    ):
        out[pid].append(session)
    return out


def search(campaign: Campaign, query: str, limit: int = 20) -> list[Found]:
    """Participants whose first name, email, external reference or check-in code matches."""
    text = (query or "").strip()
    if len(text) < 2:
        return []
    code = normalise_code(text)
    by_code = codes_of(campaign).get(code)
    like = f"%{text.lower()}%"
    stmt = _participants(campaign).where(
        or_(
            func.lower(Participant.first_name).like(like),
            func.lower(Participant.email).like(like),
            func.lower(Participant.external_ref) == text.lower(),
            Participant.id == (by_code or -1),
        )
    )
    people = db.session.scalars(stmt.order_by(Participant.first_name, Participant.id).limit(limit))
    people = list(people)
    key = current_app.config["SECRET_KEY"]
    visits = sessions_of(campaign, [p.id for p in people])
    return [
        Found(
            p.id,
            p.first_name or "(no name)",
            _hint(p),
            check_in_code(p.id, key),
            tuple(visits[p.id]),
        )  # fmt: skip
        for p in people
    ]


def _participant(campaign: Campaign, participant_id: int) -> Participant:
    p = db.session.scalar(_participants(campaign).where(Participant.id == participant_id))
    if p is None:
        raise AttendanceError("no such participant in this campaign", field="participant")
    return p


def by_code(campaign: Campaign, text: str) -> Participant:
    code = normalise_code(text)
    pid = codes_of(campaign).get(code)
    if pid is None:
        raise AttendanceError(
            f"no participant of this campaign has the check-in code {code!r}: check it "
            "letter by letter, or search by name",
            field="code",
        )
    return _participant(campaign, pid)


@dataclass(frozen=True)
class CheckInResult:
    participant_id: int
    first_name: str
    session: str
    already: bool


def check_in(
    campaign: Campaign,
    participant_id: int,
    session: str,
    method: str,
    by: int | None,
    actor: str,
) -> CheckInResult:
    """Record that the participant came to the session (a second tap changes nothing)."""
    session = parse_session(session)
    p = _participant(campaign, participant_id)
    existing = db.session.scalar(
        select(CheckIn).where(CheckIn.participant_id == p.id, CheckIn.session == session)
    )
    if existing is None:
        db.session.add(
            CheckIn(
                campaign_id=campaign.id,
                participant_id=p.id,
                session=session,
                method=method,
                recorded_by_id=by,
            )
        )
        audit.record(
            council_id=campaign.council_id,
            actor=actor,
            actor_id=by,
            action="attendance.check_in",
            object_type="participant",
            object_id=p.id,
            after={"session": session, "method": method},
        )
        db.session.flush()
    return CheckInResult(p.id, p.first_name or "", session, existing is not None)


def undo_check_in(
    campaign: Campaign, participant_id: int, session: str, by: int | None, actor: str
) -> bool:
    """Remove a check-in recorded by mistake; False when there was none."""
    session = parse_session(session)
    row = db.session.scalar(
        select(CheckIn).where(
            CheckIn.campaign_id == campaign.id,
            CheckIn.participant_id == participant_id,
            CheckIn.session == session,
        )
    )
    if row is None:
        return False
    db.session.delete(row)
    audit.record(
        council_id=campaign.council_id,
        actor=actor,
        actor_id=by,
        action="attendance.undo",
        object_type="participant",
        object_id=participant_id,
        before={"session": session},
    )
    db.session.flush()
    return True


def session_counts(campaign: Campaign) -> list[tuple[str, int]]:
    """(session, participants checked in), the latest session first."""
    return [
        (s, int(n))
        for s, n in db.session.execute(
            select(CheckIn.session, func.count())
            .where(CheckIn.campaign_id == campaign.id)
            .group_by(CheckIn.session)
            .order_by(CheckIn.session.desc())
        )
    ]


def summary(campaign: Campaign) -> dict:
    """What the report says about verified attendance: participants checked in, check-ins
    and participants per session."""
    people = db.session.scalar(
        select(func.count(func.distinct(CheckIn.participant_id))).where(
            CheckIn.campaign_id == campaign.id
        )
    )
    sessions = sorted(session_counts(campaign))
    return {
        "participants": int(people or 0),
        "check_ins": sum(n for _, n in sessions),
        "sessions": [{"session": s, "participants": n} for s, n in sessions],
    }


# -- the attendance register ----------------------------------------------------------


@dataclass
class RegisterResult:
    checked_in: int = 0
    already: int = 0
    unmatched: list[tuple[int, str]] = field(default_factory=list)  # (row, what it named)


def _decode(data: bytes) -> str:
    if len(data) > MAX_REGISTER_BYTES:
        raise RegisterRejected([(0, "file", "the file is larger than 2 MB")])
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RegisterRejected(
            [(0, "file", f"not UTF-8 text (byte {exc.start}): save it as 'CSV UTF-8'")]
        ) from None


def _compact_phone(text: str) -> str:
    return re.sub(r"[\s()\-]", "", text or "")


def import_register(
    campaign: Campaign,
    data: bytes,
    default_session: str | None,
    by: int | None,
    actor: str,
) -> RegisterResult:
    """Check the whole register, then record every matched row (or nothing).

    Columns (header row, any order): `reference` (check-in code or the list's external
    reference) and/or `email` / `phone`; `session` (YYYY-MM-DD) unless `default_session`
    is given; `name` is allowed and ignored (the organiser's own note).
    """
    text = _decode(data)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    problems: list[tuple[int, str, str]] = []
    if not any(header):
        raise RegisterRejected([(0, "file", "the file is empty (expected a header row)")])
    unknown = [h for h in header if h not in REGISTER_COLUMNS]
    if unknown:
        problems.append(
            (1, "header", f"unknown column(s) {', '.join(map(repr, unknown))}: the columns "
             f"are {', '.join(REGISTER_COLUMNS)}")
        )  # fmt: skip
    if len(set(header)) < len(header):
        problems.append((1, "header", "a column is named twice"))
    if not {"reference", "email", "phone"} & set(header):
        problems.append((1, "header", "give a reference, email or phone column to match on"))
    if "session" not in header and not default_session:
        problems.append((1, "header", "give a session column, or choose the session date"))
    if default_session:
        try:
            default_session = parse_session(default_session)
        except AttendanceError as exc:
            problems.append((0, "session", str(exc)))
    if problems:
        raise RegisterRejected(problems)

    codes = codes_of(campaign)
    rows = db.session.execute(
        select(Participant.id, Participant.external_ref, Participant.email, Participant.phone)
        .join(Assignment, Assignment.participant_id == Participant.id)
        .where(Participant.campaign_id == campaign.id, Participant.erased_at.is_(None))
    ).all()
    by_ref = {r.external_ref.lower(): r.id for r in rows if r.external_ref}
    by_email = {r.email.lower(): r.id for r in rows if r.email}
    by_phone = {_compact_phone(r.phone): r.id for r in rows if r.phone}

    seen: dict[tuple[int, str], int] = {}
    matched: list[tuple[int, str]] = []
    result = RegisterResult()
    for n, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        if n > MAX_REGISTER_ROWS + 1:
            problems.append((n, "file", f"more than {MAX_REGISTER_ROWS:,} rows"))
            break
        if len(cells) != len(header):
            problems.append((n, "row", f"has {len(cells)} cells for {len(header)} columns"))
            continue
        row = {h: c.strip() for h, c in zip(header, cells, strict=True)}
        session = row.get("session") or default_session or ""
        try:
            session = parse_session(session)
        except AttendanceError as exc:
            problems.append((n, "session", str(exc)))
            continue
        ref, email, phone = row.get("reference", ""), row.get("email", ""), row.get("phone", "")
        pid = None
        if ref:
            pid = codes.get(normalise_code(ref)) or by_ref.get(ref.lower())
            if pid is None:
                problems.append(
                    (n, "reference", f"{ref!r} is no participant's check-in code or reference")
                )
                continue
        elif email or phone:
            pid = by_email.get(email.lower()) if email else None
            pid = pid or (by_phone.get(_compact_phone(phone)) if phone else None)
            if pid is None:
                result.unmatched.append((n, "email" if email else "phone"))
                continue
        else:
            problems.append((n, "reference", "the row names nobody (no reference, email or phone)"))
            continue
        if (pid, session) in seen:
            problems.append(
                (n, "row", f"the same person at the same session as row {seen[(pid, session)]}")
            )
            continue
        seen[(pid, session)] = n
        matched.append((pid, session))
    if problems:
        raise RegisterRejected(problems)
    existing = set(
        db.session.execute(
            select(CheckIn.participant_id, CheckIn.session).where(
                CheckIn.campaign_id == campaign.id
            )
        ).all()
    )
    now = utcnow()
    for pid, session in matched:
        if (pid, session) in existing:
            result.already += 1
            continue
        db.session.add(
            CheckIn(
                campaign_id=campaign.id,
                participant_id=pid,
                session=session,
                method="register",
                recorded_by_id=by,
                checked_in_at=now,
            )
        )
        result.checked_in += 1
    audit.record(
        council_id=campaign.council_id,
        actor=actor,
        actor_id=by,
        action="attendance.register",
        object_type="campaign",
        object_id=campaign.id,
        after={
            "checked_in": result.checked_in,
            "already": result.already,
            "unmatched": len(result.unmatched),
        },
    )
    db.session.flush()
    return result


# -- the outcomes ---------------------------------------------------------------------


def follow_up_window(campaign: Campaign) -> tuple[str | None, str | None]:
    """The sessions that count for `attended`: from the launch date to the campaign's end
    date (or its closing date; open while it runs)."""
    start = campaign.launched_at.date().isoformat() if campaign.launched_at else None
    end = campaign.end_date or (
        campaign.closed_at.date().isoformat() if campaign.closed_at else None
    )
    return start, end


def attendance_outcomes(campaign: Campaign) -> dict[int, tuple[int, int, int]]:
    """participant id -> (attended, sessions_attended, attended_repeat) for everyone who
    came at least once; everyone else is (0, 0, 0). `attended` and `sessions_attended`
    count sessions inside the follow-up window; `attended_repeat` is a session at least 8
    weeks after the launch ("still coming after 8 weeks")."""
    start, end = follow_up_window(campaign)
    repeat_from = (
        (campaign.launched_at + REPEAT_AFTER).date().isoformat() if campaign.launched_at else None
    )
    out: dict[int, list[int]] = {}
    for pid, session in db.session.execute(
        select(CheckIn.participant_id, CheckIn.session).where(CheckIn.campaign_id == campaign.id)
    ):
        row = out.setdefault(pid, [0, 0, 0])
        inside = (start is None or session >= start) and (end is None or session <= end)
        if inside:
            row[0] = 1
            row[1] += 1
        if repeat_from is not None and session >= repeat_from:
            row[2] = 1
    return {pid: (a, s, r) for pid, (a, s, r) in out.items()}


def today() -> str:
    """Today's date (UTC), the session the door page opens on."""
    return utcnow().date().isoformat()
