"""The web app and the scheduler start without the analysis stack they use only for some
pages: the light modules they import at start-up (sample-ratio checks, diagnostics) do
not load the engine, pandas or the power module. Each check runs in a fresh interpreter,
since this test process has long since imported everything."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(statement: str, modules: list[str]) -> dict[str, bool]:
    code = f"import sys\n{statement}\nprint(','.join(str(m in sys.modules) for m in {modules!r}))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    return dict(zip(modules, (v == "True" for v in out.split(",")), strict=True))


@pytest.mark.parametrize(
    "statement",
    [
        "import experiments.analysis.srm",
        "import experiments.diagnostics",
        "import nudge_app.services.monitoring",
    ],
)
def test_light_modules_do_not_load_the_analysis_stack(statement):
    loaded = _loaded_after(statement, ["experiments.analysis.engine", "experiments.power"])
    assert loaded == {"experiments.analysis.engine": False, "experiments.power": False}


def test_the_package_still_gives_its_names_on_first_use():
    loaded = _loaded_after(
        "from experiments.analysis import analyze, Trial, holm", ["experiments.analysis.engine"]
    )
    assert loaded == {"experiments.analysis.engine": True}
