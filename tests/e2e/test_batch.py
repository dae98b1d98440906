"""`ootgen run --batch`: Message Batches end to end against the fake API, including a kill while polling.

The killed runs are real processes; the other runs (and the resumes) execute the same command in process."""

from __future__ import annotations

import signal
import sqlite3

from tests.e2e.conftest import Cli, wait_for


def _batch_creates(fake) -> list[dict]:
    return [e for e in fake.log if e["method"] == "POST" and e["path"] == "/v1/messages/batches"]


def _custom_ids(fake) -> list[str]:
    return [r["custom_id"] for e in _batch_creates(fake) for r in e["body"]["requests"]]


def test_batch_run_completes_through_batches_only_and_bills_the_discount(cli: Cli):
    result = cli.run_in_process("--batch", "--batch-poll", "0.05", num=6)
    assert result.returncode == 0, result.stderr
    out = cli.outputs()
    assert len(out.lines()) == 6
    assert _batch_creates(cli.fake), "no batch was created"
    assert not [e for e in cli.fake.log if e["method"] == "POST" and e["path"] == "/v1/messages"]
    rows = out.db("SELECT batch, cost, usage FROM requests")
    assert rows and all(r["batch"] == 1 for r in rows)
    # claude-sonnet-5: $2 in / $10 out per MTok, cache write 1.25x, read 0.1x, then the 0.5 batch multiplier.
    import json

    expected = 0.0
    for row in rows:
        u = json.loads(row["usage"])
        expected += 0.5 * (u["input_tokens"] * 2 + u["output_tokens"] * 10 + u["cache_creation_input_tokens"] * 2.5
                           + u["cache_read_input_tokens"] * 0.2) / 1e6
    assert abs(out.metadata()["cost_usd"] - expected) < 1e-6


def _batch_rows(cli: Cli) -> list[dict]:
    db = cli.outputs().run_dir / "run.sqlite"
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT id, status FROM batches")]
    except sqlite3.Error:  # the run is creating its tables
        return []


def test_batch_run_killed_while_polling_resumes_the_stored_batch(cli: Cli):
    cli.fake.configure(batch_complete_after_polls=10**6, batch_complete_after_seconds=2.5)
    process = cli.popen("--batch", "--batch-poll", "0.1", num=6)
    wait_for(lambda: any(r["status"] == "in_progress" for r in _batch_rows(cli)), "a stored batch id")
    stored = next(r["id"] for r in _batch_rows(cli) if r["status"] == "in_progress")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    seen = max(e["seq"] for e in cli.fake.log)

    result = cli.run_in_process("--batch", "--batch-poll", "0.1", num=6)
    assert result.returncode == 0, result.stderr
    assert len(cli.outputs().lines()) == 6
    ids = _custom_ids(cli.fake)
    assert len(ids) == len(set(ids)), "a request was put into a second batch after the restart"
    # The restarted run polled the batch stored before the kill instead of creating it again.
    polled_after = [e["path"] for e in cli.fake.log if e["seq"] > seen and e["method"] == "GET"]
    assert f"/v1/messages/batches/{stored}" in polled_after


def test_batch_killed_between_creating_and_storing_its_id_is_found_not_paid_twice(cli: Cli):
    # The create call takes 1.5 s on the server: the run records the custom ids, sends the create and is
    # killed before the answer (the batch id) arrives, while the server goes on to create the batch.
    cli.fake.add_faults({"kind": "latency", "latency_ms": 1500, "path": "/v1/messages/batches", "method": "POST"})
    process = cli.popen("--batch", "--batch-poll", "0.05", num=6)
    wait_for(lambda: _batch_creates(cli.fake) and any(r["status"] == "creating" for r in _batch_rows(cli)),
              "the create request in flight with its custom ids recorded")
    assert _batch_creates(cli.fake)[0]["status"] is None, "setup: the create answered before the kill"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    wait_for(lambda: _batch_creates(cli.fake)[0]["status"] is not None, "the server to finish creating the batch")
    assert not [r for r in _batch_rows(cli) if r["status"] == "in_progress"], "setup: the batch id was stored"

    result = cli.run_in_process("--batch", "--batch-poll", "0.05", num=6)
    assert result.returncode == 0, result.stderr
    assert len(cli.outputs().lines()) == 6
    ids = _custom_ids(cli.fake)
    assert len(ids) == len(set(ids)), "the batch created before the kill was created (and paid for) again"
    assert [e for e in cli.fake.log if e["method"] == "GET" and e["path"] == "/v1/messages/batches"], "no batches.list lookup"


def test_a_capped_batch_counts_its_input_with_the_api_tokenizer(cli: Cli):
    result = cli.run_in_process("--batch", "--batch-poll", "0.05", "--max-cost", "5", num=6)
    assert result.returncode == 0, result.stderr
    counted = cli.fake.requests("/v1/messages/count_tokens", "POST")
    assert counted and all(e["status"] == 200 for e in counted)
    # One count per prompt shape (model, role, cached context), whatever the number of batch entries of that shape
    # (requests of another type on a counted context are scaled from its count by length).
    shapes = [_shape(e["body"]) for e in counted]
    assert len(shapes) == len(set(shapes)), "a prompt shape was counted twice"
    assert {role for _, role, _ in shapes} == {"generate", "judge"}
    entries = [r["params"] for e in _batch_creates(cli.fake) for r in e["body"]["requests"]]
    assert {_shape(p) for p in entries} == set(shapes)


def _shape(body: dict) -> tuple[str, str, str]:
    """(model, role, context block) of a Messages request body: what one count_tokens call stands for."""
    user = body["messages"][0]["content"]
    text = user if isinstance(user, str) else "".join(part.get("text", "") for part in user)
    return body["model"], "judge" if text.startswith("Review these") else "generate", body["system"][0]["text"]
