"""`nudge evidence`: evidence across campaigns.

`nudge evidence pool IN.csv --estimate COL --std-error COL [--by COL]` pools one effect per
row (a campaign's arm) with a random-effects meta-analysis (experiments.evidence.meta),
per group of `--by` when given, without a database. Any unusable cell ends the command
with one message naming its row and column, and nothing is written.

With the database, a council's evidence library: `export` writes its results pack,
`import` reads another council's (all or nothing, every problem listed), `library` pools
it by mechanism. They import the app only when run.
"""

from __future__ import annotations

import csv
import json
import math

import click


@click.group("evidence")
def command() -> None:
    """Evidence across campaigns: pool effects with a random-effects meta-analysis."""


def _read_rows(path: str) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [c.strip() for c in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = list(reader)
    except FileNotFoundError:
        raise click.ClickException(f"{path}: no such file") from None
    except IsADirectoryError:
        raise click.ClickException(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    except (OSError, csv.Error) as exc:
        raise click.ClickException(f"{path}: cannot read as CSV: {exc}") from None
    if not any(header):
        raise click.ClickException(f"{path}: the file is empty (expected a header row)")
    if not rows:
        raise click.ClickException(f"{path}: no data rows under the header")
    return header, rows


def _number(path: str, row: int, column: str, text: str | None) -> float:
    value = (text or "").strip()
    where = f"{path}: row {row}, column {column!r}"
    if not value:
        raise click.ClickException(f"{where}: the value is missing")
    try:
        number = float(value)
    except ValueError:
        raise click.ClickException(f"{where}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise click.ClickException(f"{where}: {value!r} is not a finite number")
    return number


def _json_number(x: float | int) -> float | int | None:
    if isinstance(x, int):
        return x
    return float(x) if math.isfinite(x) else None


@command.command("pool")
@click.argument("path", metavar="IN.csv", type=click.Path(dir_okay=False))
@click.option("--estimate", "estimate_col", required=True, help="Column of effect estimates.")
@click.option("--std-error", "se_col", required=True, help="Column of their standard errors (> 0).")
@click.option("--by", "by_col", default=None, help="Pool separately within each value of COL.")
@click.option(
    "--method",
    type=click.Choice(["reml", "dl"]),
    default="reml",
    show_default=True,
    help="Between-campaign variance: REML (Hartung-Knapp-Sidik-Jonkman interval) or "
    "DerSimonian-Laird (Wald interval).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def pool(path, estimate_col, se_col, by_col, method, fmt):
    """Pool the effects in IN.csv (one row per campaign arm) with a random-effects
    meta-analysis: estimate, interval, tau^2, I^2 and prediction interval per group."""
    from experiments.evidence.meta import POOLED_FIELDS, MetaAnalysisInputError, pool_by

    header, rows = _read_rows(path)
    for col in (estimate_col, se_col, by_col):
        if col and col not in header:
            shown = ", ".join(header[:20])
            raise click.ClickException(f"{path}: no column {col!r} (columns: {shown})")
    estimates, std_errors, groups = [], [], []
    for i, row in enumerate(rows):
        n = i + 1
        estimates.append(_number(path, n, estimate_col, row.get(estimate_col)))
        std_errors.append(_number(path, n, se_col, row.get(se_col)))
        key = None
        if by_col:
            key = (row.get(by_col) or "").strip()
            if not key:
                raise click.ClickException(f"{path}: row {n}, column {by_col!r}: no group")
        groups.append(key)
    try:
        results = pool_by(groups, estimates, std_errors, method=method)
    except MetaAnalysisInputError as exc:
        # The reader refused missing and non-finite cells: only a standard error <= 0
        # reaches here, at row exc.index.
        row = exc.index or 0
        raise click.ClickException(
            f"{path}: row {row + 1}, column {se_col!r}: the standard error "
            f"{rows[row][se_col].strip()} must be greater than 0"
        ) from None
    if fmt == "json":
        # The JSON keys, in order: other tools read them.
        out = [
            {"group": key, **{f: _json_number(getattr(r, f)) for f in POOLED_FIELDS}}
            for key, r in results
        ]
        click.echo(json.dumps(out, indent=2, allow_nan=False))
    else:
        click.echo(_text(results, method, by_col))


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else "-"


def _text(results, method: str, by_col: str | None) -> str:
    r0 = results[0][1]
    level = f"{100 * (1 - r0.alpha):g}%"
    if method == "reml":
        how = f"REML tau^2; {level} Hartung-Knapp-Sidik-Jonkman interval (t, k - 1 df)"
    else:
        how = f"DerSimonian-Laird tau^2; {level} Wald interval (normal)"
    lines = [
        "Random-effects meta-analysis",
        f"{how}; {level} prediction interval for a new campaign (t, k - 2 df).",
        "",
    ]
    head = (by_col or "group", "k", "estimate", "std error", f"{level} CI", "tau^2", "I^2")
    table = [head + (f"{level} prediction",)]
    notes = []
    for key, r in results:
        name = key if key is not None else "all rows"
        i2 = f"{100 * r.i2:.0f}%" if math.isfinite(r.i2) else "-"
        pred = (
            f"{_fmt(r.prediction_low)} to {_fmt(r.prediction_high)}"
            if math.isfinite(r.prediction_low)
            else "-"
        )
        table.append(
            (
                name,
                str(r.k),
                _fmt(r.estimate),
                _fmt(r.std_error),
                f"{_fmt(r.ci_low)} to {_fmt(r.ci_high)}",
                _fmt(r.tau2),
                i2,
                pred,
            )
        )
        if r.message:
            notes.append(f"{name}: {r.message}")
    widths = [max(len(row[j]) for row in table) for j in range(len(head) + 1)]
    for row in table:
        cells = [
            cell.ljust(w) if j == 0 else cell.rjust(w)
            for j, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


# --- the council's evidence library (needs the database) ---------------------------------


@command.command("export")
@click.option("--council", "council_slug", required=True, help="Council whose pack to write.")
@click.option("--out", default=None, metavar="FILE", help="Write here instead of stdout.")
def export(council_slug, out):
    """Write the council's results pack: its closed campaigns' effects, de-identified
    (JSON, schema experiments/evidence/results-pack.schema.json). Audit-logged."""
    from nudge_app.cli.common import app_context, council_or_fail

    with app_context():
        from nudge_app.services import evidence_library, evidence_record

        council = council_or_fail(council_slug)
        evidence_record.record_closed(council.id)
        pack = evidence_library.export_pack(council, actor="cli")
        text = json.dumps(pack, indent=2) + "\n"
        if out:
            try:
                with open(out, "w", encoding="utf-8") as fh:
                    fh.write(text)
            except OSError as exc:
                raise click.ClickException(f"--out {out}: cannot write: {exc.strerror}") from None
    if out:
        click.echo(
            f"Wrote a results pack of {len(pack['campaigns'])} campaign(s) to {out}.", err=False
        )
    else:
        click.echo(text, nl=False)


@command.command("import")
@click.argument("path", metavar="PACK.json", type=click.Path(dir_okay=False))
@click.option("--council", "council_slug", required=True, help="Council importing the pack.")
def import_(path, council_slug):
    """Import another council's results pack into this council's library: all of it, or
    nothing (every problem is listed by its path). Audit-logged."""
    import os

    from nudge_app.cli.common import app_context, council_or_fail

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise click.ClickException(f"{path}: no such file") from None
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot read: {exc.strerror}") from None
    with app_context():
        from nudge_app.services import evidence_library

        council = council_or_fail(council_slug)
        try:
            record = evidence_library.import_pack(
                council, data, label=os.path.basename(path), actor="cli"
            )
        except evidence_library.EvidencePackRefused as exc:
            problems = exc.details or [str(exc)]
            raise click.ClickException(
                f"{path}: nothing imported; the pack was refused:\n  " + "\n  ".join(problems)
            ) from None
        n = len(record_campaigns(record.id))
    click.echo(f"Imported {n} campaign(s) from {path} into council {council_slug!r}'s library.")


def record_campaigns(import_id: int) -> list:
    from sqlalchemy import select

    from nudge_app.extensions import db
    from nudge_app.models import EvidenceCampaign

    return list(
        db.session.scalars(
            select(EvidenceCampaign.id).where(EvidenceCampaign.evidence_import_id == import_id)
        )
    )


@command.command("library")
@click.option("--council", "council_slug", required=True, help="Council whose library to read.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def library_(council_slug, fmt):
    """What has worked: the council's library (its closed campaigns and imported packs)
    pooled by mechanism, per outcome (REML, Hartung-Knapp-Sidik-Jonkman intervals,
    prediction interval, I^2)."""
    from nudge_app.cli.common import app_context, council_or_fail

    with app_context():
        from nudge_app.services import evidence_library, evidence_record

        council = council_or_fail(council_slug)
        evidence_record.record_closed(council.id)
        entries = evidence_library.library(council.id)
        pools = evidence_library.pooled(council.id)
        own = sum(1 for e in entries if e.source == "own")
        rows = [p.to_dict() for p in pools]
    if fmt == "json":
        out = {
            "campaigns": {"own": own, "imported": len(entries) - own},
            "pools": [{k: _json_value(v) for k, v in r.items()} for r in rows],
        }
        click.echo(json.dumps(out, indent=2, allow_nan=False))
        return
    click.echo(
        f"Evidence library of {council_slug}: {own} own closed campaign(s), "
        f"{len(entries) - own} imported."
    )
    if not rows:
        click.echo("No effects to pool yet.")
        return
    for r in rows:
        i2 = "-" if r["i2"] is None else f"{100 * r['i2']:.0f}%"
        pred = (
            f"{_fmt_opt(r['prediction_low'])} to {_fmt_opt(r['prediction_high'])}"
            if r["prediction_low"] is not None
            else "- (needs 3 effects)"
        )
        click.echo(
            f"{r['outcome']} / {r['mechanism']}: {r['k']} effect(s) from {r['campaigns']} "
            f"campaign(s); pooled {_fmt_opt(r['estimate'])} (95% CI {_fmt_opt(r['ci_low'])} to "
            f"{_fmt_opt(r['ci_high'])}), tau^2 {_fmt_opt(r['tau2'])}, I^2 {i2}, prediction {pred}"
        )


def _json_value(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return v


def _fmt_opt(x) -> str:
    return "-" if x is None else f"{x:.4g}"
