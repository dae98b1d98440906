"""One behaviour everywhere: the same fixture run streaming, with --batch, and streaming killed and resumed
gives the same candidates, the same verdicts and the same cost accounting (batch at each model's batch price)."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.conftest import TEST_KEY, Cli, wait_for
from tests.fake_anthropic import FakeAnthropic

JUDGES = '["claude-sonnet-5","claude-haiku-4-5"]'
PRICES = {  # $/MTok (input, output), cache write 1.25x and read 0.1x of input; see the edited model table below
    "claude-sonnet-5": (2.0, 10.0, 0.5),
    "claude-haiku-4-5": (1.0, 5.0, 0.4),
}


def _cost(model: str, usage: dict, batch: bool) -> float:
    inp, out, multiplier = PRICES[model]
    dollars = (usage["input_tokens"] * inp + usage["output_tokens"] * out + usage["cache_creation_input_tokens"] * inp * 1.25
               + usage["cache_read_input_tokens"] * inp * 0.1) / 1e6
    return dollars * (multiplier if batch else 1.0)


def _accepted_in(db: Path) -> int:
    if not db.is_file():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT COUNT(*) FROM candidates WHERE status='accepted'").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.fixture
def parity_fake():
    # Keyed draws: which slot is wrong or a duplicate follows from the request. These fractions give this 9-example
    # plan static rejections and a duplicate (the verdict reasons the test compares); 0.1 duplicates gave none once
    # the types walked one context order.
    config = {"keyed": True, "bad_fraction": 0.3, "duplicate_fraction": 0.3}
    with FakeAnthropic(api_key=TEST_KEY, responder="oot", oot=config, batch_complete_after_polls=1) as fake:
        yield fake


def _verdicts(cli: Cli, output: str) -> dict[tuple[int, int], tuple[str, str | None, str]]:
    rows = cli.outputs(output).db("SELECT task_idx, slot, status, reason, instruction FROM candidates WHERE status != 'pending'")
    return {(r["task_idx"], r["slot"]): (r["status"], r["reason"], r["instruction"]) for r in rows}


def test_streaming_batch_and_resumed_runs_agree(project_dir: Path, preset: Path, parity_fake: FakeAnthropic):
    models = project_dir / "configs" / "models.yaml"
    # A judge whose batch discount differs from the generator's, to see each model priced at its own.
    models.write_text(models.read_text().replace("  - id: claude-haiku-4-5\n", "  - id: claude-haiku-4-5\n    batch_multiplier: 0.4\n"))
    common = ("--set", f"judges={JUDGES}", "--concurrency", "1", "--no-cache")
    cli = Cli(project_dir, preset, parity_fake)
    num = 9

    streaming = cli.run_in_process(*common, output="stream/data.jsonl", num=num)
    assert streaming.returncode == 0, streaming.stderr
    batch = cli.run_in_process(*common, "--batch", "--batch-poll", "0.01", output="batch/data.jsonl", num=num)
    assert batch.returncode == 0, batch.stderr

    process = cli.popen(*common, output="resumed/data.jsonl", num=num)
    db = cli.outputs("resumed/data.jsonl").run_dir / "run.sqlite"
    wait_for(lambda: _accepted_in(db) >= 3 or process.poll() is not None, "the first accepted examples")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL and _accepted_in(db) < num, "the run finished before it was killed"
    resumed = cli.run_in_process(*common, output="resumed/data.jsonl", num=num)
    assert resumed.returncode == 0, resumed.stderr

    outputs = {name: cli.outputs(f"{name}/data.jsonl") for name in ("stream", "batch", "resumed")}
    datasets = {name: out.lines() for name, out in outputs.items()}
    assert len(datasets["stream"]) == num
    assert datasets["batch"] == datasets["stream"], "batch exported a different dataset"
    assert datasets["resumed"] == datasets["stream"], "the resumed run exported a different dataset"

    # Every candidate the runs share got the same verdict for the same reason (static, duplicate, score).
    verdicts = {name: _verdicts(cli, f"{name}/data.jsonl") for name in outputs}
    reasons = {v[1].split(" (")[0] for v in verdicts["stream"].values() if v[1]}
    assert {"duplicate"} <= reasons and any(r.startswith("static") or r == "low_score" for r in reasons), reasons
    for name in ("batch", "resumed"):
        shared = verdicts[name].keys() & verdicts["stream"].keys()
        assert len(shared) >= num
        assert {k: verdicts[name][k] for k in shared} == {k: verdicts["stream"][k] for k in shared}, name

    # Both judges reviewed every judged candidate in every mode.
    for name, out in outputs.items():
        for row in out.db("SELECT breakdown FROM candidates WHERE breakdown IS NOT NULL"):
            judges = [j["model"] for j in json.loads(row["breakdown"]).get("judges") or []]
            assert judges == ["claude-sonnet-5", "claude-haiku-4-5"], name

    # Cost accounting: every stored response priced at its own model's rate, batch at that model's batch
    # multiplier, and the metadata's total is their sum.
    for name, out in outputs.items():
        rows = out.db("SELECT model, usage, cost, batch FROM requests")
        assert rows and all(bool(r["batch"]) == (name == "batch") for r in rows), name
        assert {r["model"] for r in rows} == set(PRICES)
        for row in rows:
            assert row["cost"] == pytest.approx(_cost(row["model"], json.loads(row["usage"]), bool(row["batch"])), abs=1e-9)
        assert out.metadata()["cost_usd"] == pytest.approx(sum(r["cost"] for r in rows), abs=1e-6)
