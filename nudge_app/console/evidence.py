"""The council's evidence library in the console: "What has worked" (its closed campaigns
and imported packs pooled by mechanism, with a forest plot), the results pack download
and the import of another council's pack (all or nothing, every problem listed)."""

from __future__ import annotations

import json
import math

from flask import Response, flash, redirect, render_template, request, url_for
from markupsafe import Markup

from experiments.evidence.forest import forest_svg, rows_for_pool
from nudge_app.auth import current_staff, login_required, roles_required
from nudge_app.console.common import EDITORS, actor, bp
from nudge_app.services import evidence_library, evidence_record

BINARY_OUTCOMES = ("exposed", "joined", "participated")


def _page(problems=None, status: int = 200):
    council = current_staff().council
    evidence_record.record_closed(council.id)
    entries = evidence_library.library(council.id)
    pools = evidence_library.pooled(council.id)
    outcomes: dict[str, list] = {}
    for pool in pools:
        outcomes.setdefault(pool.outcome, []).append(pool)
    sections = []
    for outcome, group in outcomes.items():
        binary = outcome in BINARY_OUTCOMES
        rows = []
        for pool in group:
            rows += rows_for_pool(
                pool.mechanism,
                [e.campaign_label for e in pool.effects],
                [e.effect for e in pool.effects],
                [e.std_error for e in pool.effects],
                pool.result,
            )
        svg = forest_svg(
            rows,
            scale=100.0 if binary else 1.0,
            unit="percentage points" if binary else "outcome units",
            label=f"Forest plot: effects on {outcome} by mechanism, pooled",
        )
        sections.append(
            {
                "outcome": outcome,
                "binary": binary,
                "pools": [_pool_row(p, binary) for p in group],
                "svg": Markup(svg),  # built from escaped text only (experiments.evidence.forest)
            }
        )
    return render_template(
        "console/evidence.html",
        sections=sections,
        entries=entries,
        own=sum(1 for e in entries if e.source == "own"),
        imports=evidence_library.imports(council.id),
        problems=problems,
        can_edit=current_staff().role in ("admin", *EDITORS),
    ), status


def _pool_row(pool: evidence_library.MechanismPool, binary: bool) -> dict:
    r = pool.result
    scale = 100.0 if binary else 1.0

    def f(x: float, signed: bool = False) -> str:
        if not math.isfinite(x):
            return "–"
        v = x * scale
        return f"{v:+.1f}" if signed else f"{v:.1f}"

    return {
        "mechanism": pool.mechanism,
        "k": r.k,
        "campaigns": pool.campaigns,
        "estimate": f(r.estimate, True),
        "ci": f"{f(r.ci_low)} to {f(r.ci_high)}" if math.isfinite(r.ci_low) else "–",
        "prediction": f"{f(r.prediction_low)} to {f(r.prediction_high)}"
        if math.isfinite(r.prediction_low)
        else "needs 3 effects",
        "tau2": f"{r.tau2:.3g}" if math.isfinite(r.tau2) else "–",
        "i2": f"{100 * r.i2:.0f}%" if math.isfinite(r.i2) else "–",
        "message": r.message,
    }


@bp.get("/evidence")
@login_required
def evidence():
    return _page()


@bp.post("/evidence/export")
@roles_required(*EDITORS)
def evidence_export():
    who, who_id = actor()
    council = current_staff().council
    evidence_record.record_closed(council.id)
    try:
        pack = evidence_library.export_pack(council, actor=who, actor_id=who_id)
    except evidence_library.NothingToExport as exc:
        return _page([_Problem("", str(exc))], 409)
    return Response(
        json.dumps(pack, indent=2) + "\n",
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{council.slug}-results-pack.json"'},
    )


@bp.post("/evidence/import")
@roles_required(*EDITORS)
def evidence_import():
    upload = request.files.get("pack")
    if upload is None or not upload.filename:
        return _page([_Problem("pack", "choose a results pack (a .json file) to import")], 422)
    who, who_id = actor()
    try:
        evidence_library.import_pack(
            current_staff().council,
            upload.read(evidence_library.MAX_PACK_BYTES + 1),
            label=upload.filename,
            actor=who,
            actor_id=who_id,
        )
    except evidence_library.EvidencePackRefused as exc:
        problems = exc.details or [str(exc)]
        return _page([_Problem(*_split(p)) for p in problems], 422)
    flash(f"Imported the results pack {upload.filename}.")
    return redirect(url_for("console.evidence"))


class _Problem:
    def __init__(self, path: str, message: str):
        self.path, self.message = path, message


def _split(problem: str) -> tuple[str, str]:
    path, sep, message = problem.partition(": ")
    return (path, message) if sep and " " not in path else ("", problem)
