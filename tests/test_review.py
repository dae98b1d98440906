"""`ootgen review` driven in a real headless Chromium (Debian's chromium + chromedriver, through selenium).

The server is the CLI as a subprocess; every check reads what a user would see, or the run store and
`ootgen export` afterwards. Waits are on page state (WebDriverWait), never on time.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from ootgen.export import record
from ootgen.store import ACCEPTED, REJECTED, RunStore
from tests.conftest import clean_env, ootgen_command, run_cli
from tests.report_fixture import PLANTED_HANDLER, PLANTED_SCRIPT, build_run

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
EDITED = "Edited by a person: call `Actor_Kill(&this->actor)` once the timer runs out."
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    build_run(tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def server(run_dir: Path):
    """`ootgen review RUN_DIR` on a free port; yields the URL it prints (with its token)."""
    process = subprocess.Popen([*ootgen_command(), "review", str(run_dir), "--no-browser"], env=clean_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # the server prints its address once it is listening
        assert "http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() is not None else "")
        yield line.split(" at ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait(driver, condition, message: str):
    return WebDriverWait(driver, 20).until(condition, message)


def _status(url: str, data: bytes | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _candidate_id(run_dir: Path, task_idx: int, slot: int) -> int:
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        return db.execute("SELECT id FROM candidates WHERE task_idx=? AND slot=?", (task_idx, slot)).fetchone()[0]


def test_every_request_needs_the_token(server):
    base, token = server.rstrip("/").rsplit("/", 1)
    assert server.startswith("http://127.0.0.1:")
    assert _status(server) == 200
    assert _status(f"{base}/") == 403
    assert _status(f"{base}/{token[:-1]}x/") == 403
    assert _status(f"{base}/example/1") == 403
    assert _status(f"{base}/static/review.js") == 403
    assert _status(f"{base}/x{token}/example/1/decision", data=b"action=reject&reason=no") == 403
    assert _status(f"{server}static/review.js") == 200


def test_page_answers_while_a_run_holds_a_write_transaction(server, run_dir):
    writer = RunStore.open_run_dir(run_dir)
    try:
        with writer.transaction():  # the run's writer mid-commit: WAL readers are not blocked
            writer.set_meta("progress", "writing")
            with urllib.request.urlopen(server, timeout=20) as response:
                page = response.read().decode()
    finally:
        writer.close()
    assert "shown" in page and "example-row" in page


def test_filter_reject_and_edit_in_the_browser_then_export_reflects_both(browser, server, run_dir, tmp_path):
    with _readonly(run_dir) as store:
        accepted = [c for c in store.candidates(ACCEPTED, order="accepted_seq")]
    single_turn = [c for c in accepted if not c.example.turns]
    pairs = sorted({(c.context, c.example.type) for c in single_turn})
    context, type_name = max(pairs, key=lambda p: sum((c.context, c.example.type) == p for c in single_turn))
    expected_ids = {c.id for c in single_turn if (c.context, c.example.type) == (context, type_name)}
    assert len(expected_ids) >= 2

    # Filter: accepted examples of one context.
    browser.get(server)
    Select(browser.find_element(By.ID, "status")).select_by_value("accepted")
    Select(browser.find_element(By.ID, "context")).select_by_visible_text(context)
    Select(browser.find_element(By.ID, "type")).select_by_visible_text(type_name)
    browser.find_element(By.ID, "apply").click()
    _wait(browser, lambda d: "context=" in d.current_url, "the filter was not applied")
    rows = browser.find_elements(By.CSS_SELECTOR, "li.example-row")
    assert {int(r.get_attribute("data-id")) for r in rows} == expected_ids

    # Open the first with the keyboard, reject it with a reason.
    body = browser.find_element(By.TAG_NAME, "body")
    first_id, second_id = (int(r.get_attribute("data-id")) for r in rows[:2])
    body.send_keys(Keys.ENTER)
    _wait(browser, lambda d: f"/example/{first_id}" in d.current_url, "Enter did not open the example")
    browser.find_element(By.TAG_NAME, "body").send_keys("r")
    reason = browser.find_element(By.ID, "reject-reason")
    _wait(browser, lambda d: d.switch_to.active_element == reason, "r did not focus the reason field")
    reason.send_keys("wrong actor flags", Keys.ENTER)
    # After a decision the page moves on to the next example of the filtered list.
    _wait(browser, lambda d: f"/example/{second_id}" in d.current_url, "the page did not move to the next example")

    # Edit the second example (the page is already on it) and save with Ctrl+Enter.
    browser.find_element(By.TAG_NAME, "body").send_keys("e")
    output = browser.find_element(By.ID, "edit-output")
    _wait(browser, lambda d: d.switch_to.active_element == output, "e did not open the editor")
    output.clear()
    output.send_keys(EDITED)
    output.send_keys(Keys.CONTROL, Keys.ENTER)
    _wait(browser, lambda d: "Edited by a person" in d.find_element(By.ID, "answer").text, "the edit was not saved")
    assert browser.find_element(By.ID, "status").get_attribute("data-status") == "accepted"

    # Back to the first: it shows the person's rejection and its reason.
    browser.get(server + f"example/{first_id}")
    assert browser.find_element(By.ID, "status").get_attribute("data-status") == "rejected"
    assert "human: wrong actor flags" in browser.find_element(By.ID, "reason").text

    # The store keeps the model's originals and records both decisions with timestamps.
    with _readonly(run_dir) as store:
        assert store.candidate(first_id).status == ACCEPTED
        assert "Edited by a person" not in store.candidate(second_id).example.output
        human = store.human_verdicts()
        assert human[first_id].status == REJECTED and human[first_id].reason == "wrong actor flags"
        assert human[second_id].edit and human[second_id].edit["output"].startswith("Edited by a person")
        assert all(v.created > 0 for v in human.values())

    # `ootgen export` (a subprocess) reflects both decisions.
    out = tmp_path / "export.jsonl"
    result = run_cli("export", str(run_dir), "--format", "alpaca", "-o", str(out))
    assert result.returncode == 0, result.stderr
    rows_out = [json.loads(line) for line in out.read_text().splitlines()]
    expected = [record(replace(c.example, output=EDITED) if c.id == second_id else c.example, "alpaca")
                for c in accepted if c.id != first_id]
    assert rows_out == expected and len(rows_out) == len(accepted) - 1
    rejected = [json.loads(line) for line in (tmp_path / "export_rejected.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in rejected if r["id"] == first_id] == ["human: wrong actor flags"]
    metadata = json.loads((tmp_path / "export_metadata.json").read_text())
    assert metadata["candidates"]["human_reviewed"] == 2

    status = run_cli("status", str(run_dir))
    assert "human review: 2 decided (accepted 1, rejected 1, edited 1)" in status.stdout


def test_model_markup_is_shown_as_text_and_never_runs(browser, server, run_dir):
    planted = _candidate_id(run_dir, 2, 1)  # the fixture's example with a <script> and an <img onerror>
    for url in (server + f"example/{planted}", server + "?q=stray+tag"):
        browser.get(url)
        _wait(browser, lambda d: d.execute_script("return document.readyState") == "complete", "page did not load")
        text = browser.find_element(By.TAG_NAME, "main").text
        if "example/" in url:
            assert PLANTED_SCRIPT in text and PLANTED_HANDLER in text  # shown literally
            answer = browser.find_element(By.ID, "answer")
            assert answer.find_elements(By.TAG_NAME, "img") == [] and answer.find_elements(By.TAG_NAME, "script") == []
            assert answer.find_elements(By.TAG_NAME, "b") == []
        else:
            assert [int(r.get_attribute("data-id")) for r in browser.find_elements(By.CSS_SELECTOR, "li.example-row")] == [planted]
        assert browser.execute_script("return window.ootgenPwned === undefined") is True
    # The page's own script did run (so "never runs" is not just "no script runs at all").
    browser.get(server)
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "li.example-row.selected"), "review.js did not run")


class _readonly:
    def __init__(self, run_dir: Path):
        self.store = RunStore.open_run_dir(run_dir, readonly=True)

    def __enter__(self) -> RunStore:
        return self.store

    def __exit__(self, *exc) -> None:
        self.store.close()
