"""`nudge demo` as the README runs it: the demo, then the served platform walked in headless
Chromium with the printed login (console, monitoring page, report with its forest plot),
and a new campaign launched in the browser whose first messages the scheduler running
beside the server sends within a minute, with no other command.

Runs the real command in a subprocess on a fresh SQLite database and a free port, and
saves screenshots to test-output/demo-*.png. Uses Debian's /usr/bin/chromium.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_checks import launch, needs_chromium

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "test-output"
NUDGE = Path(sys.executable).with_name("nudge")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    needs_chromium,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_demo(tmp_path):
    """`nudge demo` (no --no-serve) in its own process group; yields (base URL, output) once
    the simulation is done, having checked that the server answered before then."""
    port = _free_port()
    env = dict(os.environ)
    for name in ("DATABASE_URL", "NUDGE_ENV", "NUDGE_BASE_URL", "NUDGE_FILE_CHANNEL_PATH"):
        env.pop(name, None)
    env["NUDGE_INSTANCE_PATH"] = str(tmp_path / "instance")
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(NUDGE), "demo", "--participants", "200", "--seed", "5", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 540
        while True:
            if proc.poll() is not None:
                pytest.fail(f"nudge demo stopped ({proc.returncode}):\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"nudge demo did not serve in time:\n{log.read_text()}")
            time.sleep(0.5)
        # The server starts before the residents act (the scheduler once they are done).
        while "scheduler: running" not in log.read_text():
            if proc.poll() is not None:
                pytest.fail(f"nudge demo stopped ({proc.returncode}):\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"nudge demo did not finish in time:\n{log.read_text()}")
            time.sleep(0.5)
        output = log.read_text()
        assert output.index("while the simulation runs") < output.index("Residents enrolling")
        assert output.index("Residents enrolling") < output.index("Demo finished")
        yield base, output, tmp_path
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the demo and its gunicorn worker
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


PEOPLE_CSV = "external_ref,first_name,email,age,gender,se_safety,se_environment,se_health\n" + (
    "".join(f"N{i},Ann{i},ann{i}@example.org,{25 + i},woman,3,4,2\n" for i in range(6))
)


def test_readme_demo_serves_console_monitoring_report_and_sends_new_campaigns(served_demo):
    sync_api = pytest.importorskip("playwright.sync_api")
    base, output, tmp_path = served_demo
    email = re.search(r"email:\s+(\S+)", output).group(1)
    password = re.search(r"password:\s+(\S+)", output).group(1)
    paths = dict(re.findall(r"(console|monitoring|report): http://127\.0\.0\.1:\d+(\S+)", output))
    assert set(paths) == {"console", "monitoring", "report"}, output
    # the report files went to the default folder in the instance path
    for name in ("report.html", "report.json", "report.csv"):
        assert (tmp_path / "instance" / "demo" / name).exists()
    OUTPUT.mkdir(exist_ok=True)

    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        expect = sync_api.expect

        page.goto(f"{base}{paths['console']}")
        page.screenshot(path=str(OUTPUT / "demo-01-login.png"), full_page=True)
        page.fill("#email", email)
        page.fill("#password", password)
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_contain_text("Street clean-up")
        expect(page.locator("h1 .status")).to_have_text("closed")
        page.screenshot(path=str(OUTPUT / "demo-02-campaign.png"), full_page=True)

        page.goto(f"{base}{paths['monitoring']}")
        expect(page.locator("h1")).to_contain_text("Monitoring")
        expect(page.locator("body")).to_contain_text("Randomized per arm")
        page.screenshot(path=str(OUTPUT / "demo-03-monitoring.png"), full_page=True)

        page.goto(f"{base}{paths['report']}")
        forest = page.locator("svg.forest")
        expect(forest).to_have_count(1)
        assert forest.bounding_box()["height"] > 50
        expect(page.locator("body")).to_contain_text("self_efficacy")
        page.screenshot(path=str(OUTPUT / "demo-04-report.png"), full_page=True)

        # A new campaign, made, filled and launched in the browser, sends by itself. The
        # demo council's quiet hours are lifted so the check does not depend on the hour.
        with sqlite3.connect(tmp_path / "instance" / "nudge.sqlite3") as conn:
            conn.execute("UPDATE council SET quiet_start = '00:00', quiet_end = '00:00'")
        page.goto(f"{base}/campaigns/new")
        page.check("input[name=source][value=catalog]")
        page.select_option("#catalog", "council-consultation")
        page.click("text=Create draft")
        expect(page.locator("h1 .status")).to_have_text("draft")
        slug = page.url.rstrip("/").rsplit("/", 1)[1]
        page.goto(f"{base}/campaigns/{slug}/participants")
        page.set_input_files(
            "#file", {"name": "people.csv", "mimeType": "text/csv", "buffer": PEOPLE_CSV.encode()}
        )
        page.click("text=Check and import")
        page.goto(f"{base}/campaigns/{slug}")
        page.click("text=Review and launch")
        expect(page.locator("#check-scheduler")).to_contain_text("The scheduler last ran")
        expect(page.locator("#check-sending")).to_contain_text("within a minute of launch")
        page.check("#confirm")
        page.click("button:has-text('Launch campaign')")
        expect(page.locator("h1 .status")).to_have_text("running")
        launched = time.monotonic()
        messages = page.locator(".card", has_text="Messages")
        while True:
            page.goto(f"{base}/campaigns/{slug}/monitor")
            sent = int(re.search(r"(\d+) sent", messages.inner_text()).group(1))
            if sent == 6 or time.monotonic() - launched > 60:
                break
            time.sleep(2)
        page.screenshot(path=str(OUTPUT / "demo-05-new-campaign-sent.png"), full_page=True)
        assert sent == 6, f"{sent} of 6 first messages sent a minute after launch"
        expect(page.locator("#scheduler-status")).to_contain_text("The scheduler last ran")
        browser.close()
    outbox = (tmp_path / "instance" / "demo" / "outbox.jsonl").read_text()
    assert all(f"ann{i}@example.org" in outbox for i in range(6))
