"""A campaign's report carries the age x self-efficacy cell table and the targeting
table (JSON and the HTML page's heat maps), and still renders when the cells cannot be
formed."""

from __future__ import annotations

import jsonschema
import pytest

from experiments.report import schema


@pytest.fixture
def running(council, make_campaign):
    return make_campaign(council, status="running")


def test_campaign_report_has_cells_heat_maps_and_targeting(app, running, populate, staff_client):
    written = populate(running, n=600, seed=5)
    c = staff_client(running.council)
    report = c.get(f"/reports/{running.slug}.json").get_json()
    jsonschema.validate(report, schema())
    arms = {w["arm"] for w in written} - {"control"}
    assert {x["arm"] for x in report["cells"]} == arms
    assert len(report["cells"]) == 9 * len(arms)
    assert set(report["heterogeneity"]) == {"omnibus_p_value", "tau2"}
    assert report["cell_model"]["moderators"] == ["age", "self_efficacy"]
    assert sum(x["n"] for x in report["cells"] if x["arm"] == sorted(arms)[0]) > 0
    assert len(report["targeting"]["best_arms"]) == 9
    body = c.get(f"/reports/{running.slug}").get_data(as_text=True)
    assert body.count('<svg class="heat"') == 2 * len(arms)
    assert "Who to target" in body


def test_a_campaign_too_small_for_cells_still_gets_its_report(app, running, populate, staff_client):
    populate(running, n=12, seed=1)
    c = staff_client(running.council)
    response = c.get(f"/reports/{running.slug}.json")
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert report["effects"]
