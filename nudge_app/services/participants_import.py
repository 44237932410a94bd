"""Participant import from CSV: every row checked first, then all written at once or none.

The header names the columns (`external_ref,first_name,email` at least; see COLUMNS).
One pass reads and checks every row and collects each problem with its row number (the
spreadsheet's: the header is row 1) and column; if there is any problem nothing is
written and `ImportRejected` carries the full list (also as a downloadable CSV report).
Otherwise the rows go to the database in one bulk insert. Cells that a spreadsheet would
run as a formula (`=`, `+`, `-`, `@`, tab, carriage return at the start) are refused,
except a phone number (`+44 7700 900123`), which is data. Phone numbers come in national
or international form (`07700 900123`, `+44 7700 900123`) and are stored in E.164
(`nudge_app.phones`), so an export re-imports as it is. A UK postcode, where the list has
one, is checked and stored as `SW1A 1AA` (`nudge_app.postcodes`), however it was typed.

Each participant gets a fresh `access_nonce`; only the SHA-256 of its personal-link token
is stored. In a running `list` campaign the new people are randomized in batch and their
first messages written to the outbox in the same transaction.
"""

from __future__ import annotations

import base64
import codecs
import csv
import hashlib
import hmac
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import func, select

from experiments import baseline, csv_cells
from nudge_app.errors import DomainError
from nudge_app.extensions import db
from nudge_app.models import Campaign, Participant
from nudge_app.phones import PhoneProblem, normalise_phone
from nudge_app.postcodes import PostcodeProblem, normalise_postcode
from nudge_app.security import new_nonce
from nudge_app.services import answers, assignment, audit, outbox, screening

REQUIRED_COLUMNS = ("external_ref", "first_name", "email")
# The baseline columns are those of the registered baseline variables (experiments.baseline).
OPTIONAL_COLUMNS = baseline.Names(
    lambda: (
        "phone",
        "postcode",
        *baseline.imported_fields(),
        "cluster",
        "neighbourhood",
        "consent_basis",
        "locale",
    )
)
COLUMNS = baseline.Names(lambda: REQUIRED_COLUMNS + tuple(OPTIONAL_COLUMNS))
# Columns the console's participant export adds (results of this campaign, not details of
# the person): read past, so an export imports as it is into another campaign.
EXPORT_ONLY_COLUMNS = (
    "participant_id",
    "self_efficacy",
    "consent_status",
    "arm",
    "stratum",
    "assigned_at",
    "joined",
    "consent_version",
)
CONTACT_COLUMNS = ("first_name", "email", "phone", "postcode")

DEFAULT_MAX_ROWS = 200_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
MAX_PROBLEMS_KEPT = 5_000
SQLITE_CACHE_KIB = 256 * 1024

EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
LOCALE_RE = re.compile(r"^[a-z]{2}(?:[-_][A-Za-z]{2})?$")
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
# Line breaks and other control characters (C0, DEL, C1, Unicode line separators) in a
# cell: a CR/LF in an email address would end up in an SMTP header.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
FORMULA_CHARS = "=+-@\t\r"
# A + then digits, spaces, brackets, dots or dashes only: a phone number, never a formula.
PHONE_SHAPE_RE = re.compile(r"^ *\+[0-9][0-9 ().-]*$")
LENGTHS = {
    "first_name": 100,
    "email": 254,
    "cluster": 100,
    "neighbourhood": 100,
    "consent_basis": 64,
    "locale": 16,
}


@dataclass(frozen=True)
class ImportProblem:
    """One problem: the spreadsheet row (header = 1; 0 for the whole file) and column."""

    row: int
    column: str
    message: str
    external_ref: str = ""

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "file"
        return (
            f"{where}, {self.column}: {self.message}" if self.column else f"{where}: {self.message}"
        )


class ImportRejected(DomainError):
    """The file was not imported; `problems` names each row and column at fault."""

    code = "invalid_csv"

    def __init__(self, problems: list[ImportProblem], total: int | None = None, rows: int = 0):
        self.problems = problems
        self.total = total if total is not None else len(problems)
        self.rows = rows
        bad_rows = len({p.row for p in problems})
        head = f"nothing was imported: {self.total} problem(s)" + (
            f" in {bad_rows} row(s)" if rows else ""
        )
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {self.total - 5} more)" if self.total > 5 else ""
        super().__init__(f"{head}: {shown}{more}")

    @property
    def details(self) -> dict:
        """The problems for a machine: the first thousand, and how many there are."""
        return {
            "total": self.total,
            "problems": [
                {"row": p.row, "column": p.column, "message": p.message}
                for p in self.problems[:1000]
            ],
        }

    def report_csv(self) -> str:
        """The error report: one line per problem, safe to open in a spreadsheet."""
        out = io.StringIO()
        writer = csv_cells.writer(out)
        writer.writerow(["row", "column", "external_ref", "problem"])
        for p in self.problems:
            writer.writerow([p.row, p.column, p.external_ref, p.message])
        if self.total > len(self.problems):
            writer.writerow(["", "", "", f"... {self.total - len(self.problems)} more problems"])
        return out.getvalue()


class ImportNotAllowed(DomainError):
    """The campaign does not accept participants now (e.g. it is closed)."""

    http_status = 409
    code = "campaign_closed"


@dataclass
class ImportResult:
    imported: int
    randomized: int = 0
    messages: int = 0
    # Rows skipped because the contact is on the council's suppression list.
    suppressed: int = 0
    # Rows whose imported baseline the campaign's eligibility rules screened out (no arm,
    # no message).
    screened_out: int = 0
    participant_ids: list[int] = field(default_factory=list, repr=False)
    # Columns of a participant export that were read past (EXPORT_ONLY_COLUMNS).
    read_past: tuple[str, ...] = ()
    # Rows of an export whose people were erased since (withdrawn): passed over.
    erased: int = 0


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportRejected(
            [
                ImportProblem(
                    0,
                    "",
                    f"the file is not UTF-8 text (byte {exc.start}); save it as "
                    "'CSV UTF-8' from your spreadsheet",
                )
            ]
        ) from None


def _limits() -> tuple[int, int]:
    config = current_app.config
    return (
        int(config.get("IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS)),
        int(config.get("IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)),
    )


class _Checker:
    """Checks rows one by one and collects problems (keeping the first few thousand)."""

    def __init__(self, existing_refs: set[str], this_year: int, needs: dict | None = None):
        self.problems: list[ImportProblem] = []
        # Variable -> the first eligibility rule that reads it: answers a row must carry.
        self.needs: dict[str, str] = needs or {}
        self.total = 0
        self.existing = existing_refs
        self.seen: dict[str, int] = {}
        self.this_year = this_year
        self.check_controls = True
        self.variables = [v for v in baseline.variables() if v.imported]

    def add(self, row: int, column: str, message: str, ref: str = "") -> None:
        self.total += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(ImportProblem(row, column, message, ref))

    def row(self, n: int, cells: dict[str, str]) -> dict | None:
        bad_before = self.total
        ref = cells.get("external_ref", "").strip()
        for column, text in cells.items():
            if not text:
                continue
            first = text[0]
            if first not in FORMULA_CHARS:
                if not first.isspace():
                    continue
                stripped = text.lstrip()
                if not stripped or stripped[0] not in FORMULA_CHARS:
                    continue
            if column == "phone" and PHONE_SHAPE_RE.match(text):
                continue  # +44 7700 900123 is a number (checked below), not a formula
            self.add(
                n,
                column,
                "starts with = + - or @, which a spreadsheet would run as a formula: "
                "remove the leading character",
                ref,
            )
        if self.check_controls:
            for column, text in cells.items():
                if CONTROL_RE.search(text):
                    self.add(
                        n,
                        column,
                        "contains a line break or a control character (tab, NUL, ...): "
                        "a name or contact detail must be one line of text",
                        ref,
                    )
        if not ref:
            self.add(n, "external_ref", "is required (your own reference for this person)")
        elif not REF_RE.match(ref):
            self.add(
                n,
                "external_ref",
                "must be 1-100 letters, digits or . _ : / - (starting with a letter or digit)",
                ref,
            )
        elif ref in self.seen:
            self.add(n, "external_ref", f"duplicate: also on row {self.seen[ref]}", ref)
        elif ref in self.existing:
            self.add(n, "external_ref", "already imported into this campaign", ref)
        else:
            self.seen[ref] = n
        values: dict = {"external_ref": ref}
        for column, limit in LENGTHS.items():
            text = cells.get(column, "").strip()
            if len(text) > limit:
                self.add(n, column, f"is too long: at most {limit} characters", ref)
            values[column] = text or None
        email = values["email"]
        if email is not None:
            if not EMAIL_RE.match(email):
                self.add(n, "email", "is not a valid email address", ref)
            else:
                local, _, domain = email.rpartition("@")
                values["email"] = f"{local}@{domain.lower()}"
        for column, normalise, problem in (
            ("phone", normalise_phone, PhoneProblem),
            ("postcode", normalise_postcode, PostcodeProblem),
        ):
            value = cells.get(column, "").strip()
            if value:
                try:
                    value = normalise(value)
                except problem as exc:
                    self.add(n, column, str(exc), ref)
            values[column] = value or None
        if values["email"] is None and values["phone"] is None:
            self.add(n, "email", "give an email address (or a phone number)", ref)
        for variable in self.variables:
            reading = variable.read(cells, self.this_year)
            for column, message in reading.problems.items():
                self.add(n, column, message, ref)
            values.update(reading.fields)
            rule = self.needs.get(variable.name)
            if rule is not None and not reading.problems and variable.value(values) is None:
                self.add(
                    n,
                    variable.fields[0],
                    f'is required: the eligibility rule "{rule}" needs it to screen this person',
                    ref,
                )
        if values["locale"] and not LOCALE_RE.match(values["locale"]):
            self.add(n, "locale", "must be a language code like en or en-GB", ref)
        return answers.row_values(values) if self.total == bad_before else None


def validate_csv(data: bytes | str, campaign: Campaign) -> tuple[list[dict], int]:
    """Every row checked; the rows as column values, or ImportRejected with every problem.

    Also how many rows of a participant export were people since erased (withdrawn:
    nothing of them is left to import), which are passed over."""
    max_rows, max_bytes = _limits()
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_bytes:
        raise ImportRejected(
            [
                ImportProblem(
                    0,
                    "",
                    f"the file is {size / 1e6:.1f} MB: the limit is {max_bytes / 1e6:.0f} MB; "
                    "split it into smaller files",
                )
            ]
        )
    text = _decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRejected(
            [ImportProblem(0, "", "the file is empty: the first line must be the header")]
        ) from None
    except csv.Error as exc:
        raise ImportRejected([ImportProblem(1, "", f"not a valid CSV file: {exc}")]) from None
    header = [h.strip().lower() for h in header]
    problems = []
    allowed = tuple(COLUMNS) + EXPORT_ONLY_COLUMNS
    for column in REQUIRED_COLUMNS:
        if column not in header:
            problems.append(ImportProblem(1, column, "required column is missing from the header"))
    for column in header:
        if column not in allowed:
            problems.append(
                ImportProblem(
                    1, column or "(empty)", "unknown column: allowed are " + ", ".join(allowed)
                )
            )
        elif header.count(column) > 1:
            problems.append(ImportProblem(1, column, "the column appears twice"))
    needs = needed_answers(campaign) if campaign.enrolment_mode == "list" else {}
    for name, rule in needs.items():
        fields = baseline.get(name).fields
        if not any(f in header for f in fields):
            problems.append(
                ImportProblem(
                    1,
                    fields[0],
                    f'required column is missing: the eligibility rule "{rule}" needs it',
                )
            )
    if problems:
        raise ImportRejected(sorted(set(problems), key=lambda p: p.column))

    read_past = [c for c in header if c in EXPORT_ONLY_COLUMNS]
    from_export = "participant_id" in read_past
    erased = 0

    def erased_in_export(cells: dict[str, str]) -> bool:
        """A withdrawn person's row in an export: no reference, no details left."""
        return from_export and not any(
            cells.get(c, "").strip() for c in ("external_ref", *CONTACT_COLUMNS)
        )

    existing = set(
        db.session.scalars(
            select(Participant.external_ref).where(
                Participant.campaign_id == campaign.id, Participant.external_ref.is_not(None)
            )
        )
    )
    checker = _Checker(existing, datetime.now(UTC).year, needs)
    # One scan of the file (its row breaks aside) instead of one per cell.
    checker.check_controls = bool(CONTROL_RE.search(text.replace("\r\n", "").replace("\n", "")))
    rows: list[dict] = []
    width = len(header)
    n = 1
    try:
        for n, record in enumerate(reader, start=2):
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if n - 1 > max_rows:
                raise ImportRejected(
                    [
                        ImportProblem(
                            0,
                            "",
                            f"the file has more than {max_rows:,} rows: split it into "
                            "smaller files",
                        )
                    ]
                )
            if len(record) != width:
                checker.add(n, "", f"has {len(record)} cells but the header has {width} columns")
                continue
            cells = dict(zip(header, record, strict=True))
            for column in read_past:
                del cells[column]
            if erased_in_export(cells):
                erased += 1
                continue
            values = checker.row(n, cells)
            if values is not None:
                rows.append(values)
    except csv.Error as exc:
        checker.add(n + 1, "", f"not valid CSV here: {exc}")
    if checker.total:
        raise ImportRejected(checker.problems, checker.total, rows=n)
    if not rows:
        raise ImportRejected([ImportProblem(0, "", "the file has a header but no rows")])
    return rows, erased


def needed_answers(campaign: Campaign) -> dict[str, str]:
    """The baseline variables the campaign's eligibility rules read, each with the first
    rule that reads it: a list campaign is randomized at import, so its rows must carry
    them (a survey-first campaign asks them on the baseline page)."""
    needs: dict[str, str] = {}
    for rule in screening.rules_of(campaign):
        needs.setdefault(rule.variable, rule.text)
    return needs


def check_one(cells: dict[str, str], campaign: Campaign) -> tuple[dict, list[ImportProblem]]:
    """One person's fields (as text) checked with the import's rules (for API enrolment)."""
    existing = set()
    ref = (cells.get("external_ref") or "").strip()
    if ref and db.session.scalar(
        select(Participant.id).where(
            Participant.campaign_id == campaign.id, Participant.external_ref == ref
        )
    ):
        existing.add(ref)
    checker = _Checker(existing, datetime.now(UTC).year, needed_answers(campaign))
    allowed = tuple(COLUMNS)
    values = checker.row(0, {k: v for k, v in cells.items() if k in allowed})
    return (values or {}), checker.problems


def import_csv(
    campaign: Campaign,
    data: bytes | str,
    actor: str = "cli",
    actor_id: int | None = None,
) -> ImportResult:
    """Validate the whole file, then insert every row (or nothing); flushes, never commits."""
    if campaign.status == "closed":
        raise ImportNotAllowed(f"campaign {campaign.slug!r} is closed: it takes no participants")
    rows, erased = validate_csv(data, campaign)
    rows, suppressed = _without_suppressed(campaign, rows)
    ids = _bulk_insert(campaign, rows) if rows else []
    result = ImportResult(
        imported=len(ids),
        suppressed=suppressed,
        participant_ids=ids,
        read_past=_export_columns_of(data),
        erased=erased,
    )
    if campaign.status in ("running", "paused") and ids:
        result.randomized, result.messages = _after_import(campaign, ids)
        result.screened_out = screening.screened_out_among(ids)
    audit.record(
        council_id=campaign.council_id,
        actor=actor,
        actor_id=actor_id,
        action="participants.import",
        object_type="campaign",
        object_id=campaign.id,
        after={
            "imported": result.imported,
            "randomized": result.randomized,
            "messages": result.messages,
            "suppressed": result.suppressed,
            "screened_out": result.screened_out,
        },
    )
    return result


def _export_columns_of(data: bytes | str) -> tuple[str, ...]:
    """The participant export's own columns in the (already validated) file's header."""
    first = _decode(data).split("\n", 1)[0]
    header = next(csv.reader([first]), [])
    return tuple(c for c in (h.strip().lower() for h in header) if c in EXPORT_ONLY_COLUMNS)


def _without_suppressed(campaign: Campaign, rows: list[dict]) -> tuple[list[dict], int]:
    """The rows whose email and phone are not on the council's suppression list, and how
    many were left out (people who opted out, withdrew or were erased before)."""
    from nudge_app.services import suppression

    council = campaign.council
    listed = suppression.suppressed_hashes(council)
    if not listed:
        return rows, 0
    kept = [
        row
        for row in rows
        if listed.isdisjoint(suppression.hashes_of(council, row["email"], row["phone"]))
    ]
    return kept, len(rows) - len(kept)


def _token_hasher(secret_key: str):
    """nonce -> sha256_hex(participant_token(secret_key, nonce)), with the HMAC key set up
    once instead of once per row (the result is the same; a test checks it)."""
    keyed = hmac.new(secret_key.encode(), digestmod=hashlib.sha256)

    def token_hash(nonce: str) -> str:
        mac = keyed.copy()
        mac.update(f"participant:{nonce}".encode())
        token = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")
        return hashlib.sha256(token).hexdigest()

    return token_hash


def _bulk_insert(campaign: Campaign, rows: list[dict]) -> list[int]:
    token_hash = _token_hasher(current_app.config["SECRET_KEY"])
    now = datetime.now(UTC)
    for values in rows:
        nonce = new_nonce()
        values["campaign_id"] = campaign.id
        values["access_nonce"] = nonce
        values["access_token_hash"] = token_hash(nonce)
        values["consent_status"] = "pending"
        values["created_at"] = now
        # The driver gets JSON columns (a list of activities, other answers) as text.
        for name in answers.JSON_COLUMNS.intersection(values):
            if values[name] is not None:
                values[name] = json.dumps(values[name])
    if db.session.get_bind().dialect.name == "postgresql":
        return _copy_postgresql(campaign, rows)
    return _executemany_sqlite(campaign, rows)


def _executemany_sqlite(campaign: Campaign, rows: list[dict]) -> list[int]:
    """One executemany on the DB-API cursor: SQLite's fastest bulk insert.

    The transaction began with BEGIN IMMEDIATE, so this session is the only writer: the
    new rows take the row ids after the largest one seen before the insert.
    """
    columns = list(rows[0])
    before = db.session.scalar(select(func.max(Participant.id))) or 0
    created = columns.index("created_at")
    statement = "INSERT INTO participant ({}) VALUES ({})".format(
        ", ".join(columns), ", ".join("?" for _ in columns)
    )
    # The column type stores UTC datetimes without their zone on SQLite; do the same.
    naive = rows[0]["created_at"].astimezone(UTC).replace(tzinfo=None)
    params = []
    for values in rows:
        row = [values[c] for c in columns]
        row[created] = naive
        params.append(row)
    raw = db.session.connection().connection.driver_connection
    cursor = raw.cursor()
    try:
        # A bigger page cache while inserting keeps the random-keyed unique indexes
        # (token hash, reference) in memory instead of spilling pages mid-transaction.
        old_cache = cursor.execute("PRAGMA cache_size").fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        try:
            cursor.executemany(statement, params)
        finally:
            cursor.execute(f"PRAGMA cache_size = {int(old_cache)}")
    finally:
        cursor.close()
    return list(
        db.session.scalars(
            select(Participant.id)
            .where(Participant.campaign_id == campaign.id, Participant.id > before)
            .order_by(Participant.id)
        )
    )


def _copy_postgresql(campaign: Campaign, rows: list[dict]) -> list[int]:
    """PostgreSQL's COPY: the fastest bulk load, in the session's own transaction."""
    columns = list(rows[0])
    connection = db.session.connection()
    before = set(
        db.session.scalars(select(Participant.id).where(Participant.campaign_id == campaign.id))
    )
    raw = connection.connection.driver_connection
    statement = "COPY participant ({}) FROM STDIN".format(", ".join(columns))
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for values in rows:
            copy.write_row([values[c] for c in columns])
    ids = db.session.scalars(
        select(Participant.id)
        .where(Participant.campaign_id == campaign.id)
        .order_by(Participant.id)
    )
    return [i for i in ids if i not in before]


def _after_import(campaign: Campaign, ids: list[int]) -> tuple[int, int]:
    """In a running campaign: randomize a list campaign, then write the first messages."""
    db.session.flush()
    randomized = 0
    if campaign.enrolment_mode == "list" and campaign.status == "running":
        randomized = assignment.randomize_list(campaign)
    else:
        # Imported answers are screened as the baseline page's would be: people they
        # screen out get no invitation.
        screening.screen_out_imported(campaign, ids)
    return randomized, outbox.on_imported(_participants(ids))


def _participants(ids: list[int]) -> Iterable[Participant]:
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        yield from db.session.scalars(select(Participant).where(Participant.id.in_(chunk)))


def participant_count(campaign_id: int) -> int:
    return db.session.scalar(
        select(func.count(Participant.id)).where(Participant.campaign_id == campaign_id)
    )


def template_csv() -> str:
    """A header with every column and one example row that imports cleanly."""
    example = {
        "external_ref": "R0001",
        "first_name": "Sam",
        "email": "sam@example.org",
        "phone": "+447700900123",
        "postcode": "SW1A 1AA",
        "neighbourhood": "Riverside",
        "consent_basis": "public-task",
        "locale": "en",
    }
    for variable in baseline.variables():
        if variable.imported:
            example.update(variable.example())
    columns = tuple(COLUMNS)
    return ",".join(columns) + "\n" + ",".join(example.get(c, "") for c in columns) + "\n"


def baseline_column_help() -> list[str]:
    """What each baseline column accepts, one sentence per variable (for officers)."""
    return [v.describe() for v in baseline.variables() if v.imported]
