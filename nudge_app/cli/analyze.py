"""`nudge analyze` (or `nudge analyse`): analyse a trial from a CSV file (one row per
randomized participant).

No database and no Flask: the CSV is read with pyarrow, the analysis is the vectorised
`experiments.analysis.analyze`, and the report is written as JSON, HTML or CSV. Every
problem with the input ends the command with one clear message and a non-zero exit.
"""

from __future__ import annotations

import csv
import os
import sys

import click

CORRECTIONS = ("holm", "bh", "none")
FORMATS = ("json", "html", "csv")


def _read_header(path: str) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            row = next(csv.reader(fh), None)
    except FileNotFoundError:
        raise click.ClickException(f"{path}: no such file") from None
    except IsADirectoryError:
        raise click.ClickException(f"{path}: is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{path}: not UTF-8 text (save the CSV as UTF-8)") from None
    except (OSError, csv.Error) as exc:
        raise click.ClickException(f"{path}: cannot read: {exc}") from None
    if row is None or not any(c.strip() for c in row):
        raise click.ClickException(f"{path}: the file is empty (expected a header row)")
    return [c.strip() for c in row]


def read_trial_csv(path: str, columns: list[str], text_columns: set[str]):
    """Read only the needed columns; arms, blocks, clusters and categorical moderators as
    text exactly as written in the file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    header = _read_header(path)
    for col in columns:
        if col not in header:
            shown = ", ".join(header[:20])
            raise click.ClickException(f"{path}: no column {col!r} (columns: {shown})")
    types = {c: pa.string() for c in text_columns}
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(dict.fromkeys(columns)),
                column_types=types,
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise click.ClickException(f"{path}: cannot read as CSV: {exc}") from None
    if table.num_rows == 0:
        raise click.ClickException(f"{path}: no data rows under the header")
    return table.to_pandas()


@click.command("analyze")
@click.argument("path", metavar="IN.csv", type=click.Path(dir_okay=False))
@click.option("--arm", "arm", required=True, help="Column holding each row's arm.")
@click.option("--control", required=True, help="The control arm's value in that column.")
@click.option(
    "--outcome",
    "outcomes",
    required=True,
    multiple=True,
    metavar="COL",
    help="Outcome column (0/1 or numeric), repeatable: the first is the primary outcome "
    "(Holm across arms), the others secondary (Benjamini-Hochberg, marked as such).",
)
@click.option(
    "--baseline",
    "baselines",
    multiple=True,
    metavar="OUTCOME=COL",
    help="An outcome's baseline value, its Lin covariate in the collective/individual "
    "panel and the response-weighted estimate. Repeatable.",
)
@click.option(
    "--mediator",
    default=None,
    metavar="COL",
    help="Mediator measured after assignment (e.g. self_efficacy_followup): causal "
    "mediation of the effect on collective_coproduction (or the primary outcome).",
)
@click.option(
    "--response",
    default=None,
    metavar="COL",
    help="1 if the follow-up survey was answered (survey outcomes empty otherwise): Lee "
    "bounds and a response-weighted estimate for every survey-measured outcome.",
)
@click.option(
    "--response-covariate",
    "response_covariates",
    multiple=True,
    metavar="COL",
    help="Recorded for everyone, modelling who answered (default: the --covariate "
    "columns). Repeatable.",
)
@click.option(
    "--exposure",
    default=None,
    metavar="COL",
    help="1 if the participant saw the message: complier average causal effect on the "
    "primary outcome beside the intention-to-treat effect.",
)
@click.option(
    "--moderator",
    "moderators",
    multiple=True,
    metavar="COL[:CUTS]",
    help="Moderator, repeatable; CUTS as in `nudge randomize` (age:25,35 gives "
    "under 25, 25-34, 35 and over).",
)
@click.option(
    "--preregistered",
    multiple=True,
    metavar="COL",
    help="A moderator pre-registered in the analysis plan (confirmatory family, "
    "Holm); others are exploratory (Benjamini-Hochberg). Repeatable.",
)
@click.option(
    "--covariate",
    "covariates",
    multiple=True,
    metavar="COL",
    help="Baseline covariate for the Lin (2013) adjusted estimate. Repeatable.",
)
@click.option(
    "--block",
    default=None,
    metavar="COL",
    help="Stratum (block) column: every estimate is formed within strata (tiny strata "
    "pooled with strata of the same probabilities).",
)
@click.option(
    "--cluster",
    default=None,
    metavar="COL",
    help="Cluster column (the randomized unit): CR2 standard errors, Bell-McCaffrey df.",
)
@click.option(
    "--saturation",
    default=None,
    metavar="COL",
    help="Randomized saturation design: the column with the saturation of each row's "
    "cluster (0 for pure-control clusters; needs --cluster). Adds `spillover`: direct, "
    "spillover and total effects per saturation (CR2 by cluster, Bell-McCaffrey df).",
)
@click.option(
    "--referred-by",
    "referred_by",
    default=None,
    metavar="COL",
    help="Peer mentoring: the column naming the mentor whose invitation enrolled the row "
    "(empty for everyone else). Adds `referrals`: the invited against the control arm's "
    "other members (OLS, CR2 by mentor and --cluster); with --saturation the invited are "
    "left out of the estimates.",
)
@click.option(
    "--probability",
    default=None,
    metavar="COL",
    help="Column holding the recorded probability of each row's own arm: used to pool "
    "strata, and as inverse-probability weights where it differs within an arm.",
)
@click.option(
    "--randomization-inference",
    "draws",
    default=0,
    type=click.IntRange(min=0),
    metavar="N",
    help="Re-randomize N times with the design's randomizer and add ri_p_value to every "
    "effect and interaction (exact enumeration when the design has at most N assignments).",
)
@click.option(
    "--sequential",
    default=None,
    metavar="COL",
    help="Column that orders the rows in time (a date or a number): adds `sequential`, "
    "each arm's always-valid confidence sequence and p-value with one look per distinct "
    "value (safe to look at repeatedly).",
)
@click.option(
    "--sequential-tuning",
    "sequential_n",
    default=None,
    type=click.IntRange(min=1),
    metavar="N",
    help="Units (participants, or clusters) at which the confidence sequence is tightest, "
    "usually the planned sample (default: all the units in the file).",
)
@click.option(
    "--cells",
    default=None,
    metavar="COL,COL",
    help="Two banded moderators (e.g. age,self_efficacy): each arm's effect in every cell "
    "of the two, raw and partially pooled (empirical Bayes), the test that cells differ, "
    "and the targeting table (best arm per cell, cross-fitted gain, exploratory "
    "calibration).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the re-randomizations and of the targeting's folds and draws.",
)
@click.option(
    "--weights",
    default=None,
    metavar="ARM=W,...",
    help="Design weights for the sample ratio test (default: equal).",
)
@click.option(
    "--minimum-effect",
    default=None,
    type=float,
    help="Smallest effect worth detecting; warns when a test cannot detect it with 80% power.",
)
@click.option("--alpha", default=0.05, show_default=True, type=float)
@click.option(
    "--correction",
    type=click.Choice(CORRECTIONS),
    default="holm",
    show_default=True,
    help="Across arms and the confirmatory family.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("--out", default=None, metavar="PATH", help="Write here instead of stdout.")
@click.option("--title", default=None, help="Report title.")
def command(
    path,
    arm,
    control,
    outcomes,
    baselines,
    mediator,
    response,
    response_covariates,
    exposure,
    moderators,
    preregistered,
    covariates,
    block,
    cluster,
    saturation,
    referred_by,
    probability,
    draws,
    sequential,
    sequential_n,
    cells,
    seed,
    weights,
    minimum_effect,
    alpha,
    correction,
    fmt,
    out,
    title,
):
    """Analyse a trial from IN.csv: effects per arm on each outcome, subgroup effects,
    diagnostics; with --mediator, --response and --exposure also the mediated effect, Lee
    bounds and the complier effect."""
    from experiments.analysis import AnalysisInputError, analyze
    from experiments.analysis.adjustment import OutcomeInputError
    from experiments.analysis.further import OutcomeSpec, further_analyses
    from experiments.analysis.outcomes import OutcomePlanError
    from experiments.analysis.request import TrialSettings
    from experiments.bands import BandSpecError, parse_band_spec
    from experiments.report import build_report

    if not 0 < alpha < 1:
        raise click.ClickException(f"--alpha must be between 0 and 1, got {alpha}")
    specs = []
    for text in moderators:
        try:
            specs.append(parse_band_spec(text))
        except BandSpecError as exc:
            raise click.ClickException(f"--moderator {exc}") from None
    design_weights = _parse_weights(weights) if weights else None
    cell_names = _parse_cells(cells) if cells is not None else ()
    outcome = outcomes[0]
    if len(set(outcomes)) < len(outcomes):
        twice = next(o for o in outcomes if outcomes.count(o) > 1)
        raise click.ClickException(f"--outcome {twice!r} is named twice")
    baseline_of = _parse_baselines(baselines, outcomes)
    response_covariates = list(response_covariates or covariates)
    columns = [arm, *outcomes, *[s.column for s in specs], *covariates]
    columns += [
        c
        for c in (block, cluster, probability, saturation, mediator, response, exposure, sequential)
        if c
    ]
    columns += [*baseline_of.values(), *response_covariates]
    columns += [referred_by] if referred_by else []
    text_cols = {arm, *(c for c in (block, cluster, sequential, referred_by) if c)}
    text_cols |= {s.column for s in specs if s.cuts is None}
    frame = read_trial_csv(path, columns, text_cols)
    referrals = None
    if referred_by:
        frame, referrals = _referrals(
            frame, referred_by, arm, control, outcome, cluster, saturation, alpha
        )
    settings = TrialSettings(
        arm=arm,
        control=control,
        covariates=tuple(covariates),
        block=block,
        cluster=cluster,
        probability=probability,
        alpha=alpha,
        correction=correction,
    )
    bar = progress_bar(draws)
    try:
        result = analyze(
            frame,
            outcome=outcome,
            moderators=specs,
            saturation=saturation,
            randomization_inference=draws,
            seed=seed,
            progress=bar.update if bar else None,
            preregistered=preregistered,
            weights=design_weights,
            flow_columns=False,
            minimum_effect=minimum_effect,
            cells=cell_names,
            sequential=sequential,
            sequential_n=sequential_n or 0,
            **settings.engine_arguments(),
        )
    except AnalysisInputError as exc:
        raise click.ClickException(f"{os.path.basename(path)}: {exc}") from None
    finally:
        if bar:
            bar.close()
    try:
        further = further_analyses(
            frame,
            result.effects,
            [OutcomeSpec(o, o, baseline_of.get(o)) for o in outcomes],
            columns=settings.columns(),
            estimate=lambda column: settings.effects(frame, column),
            correction=correction,
            alpha=alpha,
            mediator=mediator,
            response=response,
            response_covariates=response_covariates,
            exposure=exposure,
            seed=seed,
        )
    except (OutcomePlanError, OutcomeInputError, AnalysisInputError) as exc:
        raise click.ClickException(f"{os.path.basename(path)}: {exc}") from None
    for note in further.notes:
        click.echo(f"Note: {note}", err=True)
    report = build_report(
        result,
        title=title or f"Effects on {outcome}",
        source=os.path.basename(path),
        further=further,
        referrals=referrals,
    )
    write_report(report.render(fmt), out, fmt)


def _referrals(frame, column, arm, control, outcome, cluster, saturation, alpha):
    """(the frame to estimate on, `referrals`): the rows a mentor's invitation enrolled
    (a non-empty `column`) against the control arm's other rows (in saturation-0 clusters
    with --saturation, when the invited are also left out of the estimates)."""
    import pandas as pd

    from experiments.analysis.referrals import referral_effect

    text = frame[column].astype("string").str.strip()
    mentor = text.where(text.notna() & (text != ""), None).astype(object)
    comparison = (frame[arm].astype(str) == str(control)).to_numpy()
    if saturation:
        share = pd.to_numeric(frame[saturation], errors="coerce")
        comparison = comparison & (share == 0).to_numpy()
    y = pd.to_numeric(frame[outcome], errors="coerce").to_numpy(dtype=float)
    clusters = frame[cluster].to_numpy(dtype=object) if cluster else None
    found = referral_effect(
        y, mentor.to_numpy(), comparison, clusters, comparison_arm=str(control), alpha=alpha
    ).to_dict()
    if saturation and mentor.notna().any():
        kept = mentor.isna().to_numpy()
        click.echo(
            f"Note: {int((~kept).sum()):,} row(s) enrolled through a mentor's invitation "
            "are left out of the estimates of the saturation design (see `referrals`).",
            err=True,
        )
        frame = frame[kept].reset_index(drop=True)
    return frame, found


def write_report(text: str, out: str | None, fmt: str) -> None:
    """The report on stdout, or in `out` with a line saying what was written where."""
    if not out:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        with open(out, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    except OSError as exc:
        raise click.ClickException(f"--out {out}: cannot write: {exc.strerror}") from None
    click.echo(f"Wrote the {fmt.upper()} report to {out} ({len(text.encode()):,} bytes).")


class _Progress:
    """Re-randomizations done, on stderr, about once a second (nothing for short runs)."""

    def __init__(self, total: int):
        self.total = total
        self.bar = click.progressbar(
            length=total, label="Randomization inference", file=sys.stderr, show_pos=True
        )
        self.done = 0

    def update(self, done: int, total: int) -> None:
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        self.bar.render_finish()


def progress_bar(draws: int) -> _Progress | None:
    return _Progress(draws) if draws else None


def _parse_cells(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(","))
    if len(names) != 2 or not all(names):
        raise click.ClickException(
            f"--cells {text!r}: give two moderators separated by a comma (e.g. age,self_efficacy)"
        )
    return names


def _parse_baselines(texts: tuple[str, ...], outcomes: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for text in texts:
        name, sep, column = (p.strip() for p in text.partition("="))
        if not sep or not name or not column:
            raise click.ClickException(
                f"--baseline: {text!r} is not OUTCOME=COL (e.g. "
                "individual_coproduction=individual_baseline)"
            )
        if name not in outcomes:
            raise click.ClickException(
                f"--baseline: {name!r} is not one of the --outcome columns ({', '.join(outcomes)})"
            )
        out[name] = column
    return out


def _parse_weights(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            w = float(value)
        except ValueError:
            w = -1.0
        if not sep or not name.strip() or w < 0:
            raise click.ClickException(
                f"--weights: {part!r} is not ARM=WEIGHT (e.g. control=1,peer=1)"
            )
        out[name.strip()] = w
    return out
