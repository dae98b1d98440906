"""`ootgen run --batch`: Message Batches end to end against the fake API, including a kill while polling."""

from __future__ import annotations

import signal
import time

from tests.e2e.conftest import Cli


def _batch_creates(fake) -> list[dict]:
    return [e for e in fake.log if e["method"] == "POST" and e["path"] == "/v1/messages/batches"]


def _custom_ids(fake) -> list[str]:
    return [r["custom_id"] for e in _batch_creates(fake) for r in e["body"]["requests"]]


def test_batch_run_completes_through_batches_only_and_bills_the_discount(cli: Cli):
    result = cli.run("--batch", "--batch-poll", "0.05", num=6)
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


def test_batch_run_killed_while_polling_resumes_the_stored_batch(cli: Cli):
    cli.fake.configure(batch_complete_after_polls=10**6, batch_complete_after_seconds=2.5)
    process = cli.popen("--batch", "--batch-poll", "0.1", num=6)
    deadline = time.monotonic() + 30
    while not _batch_creates(cli.fake) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _batch_creates(cli.fake), "the run never created a batch"
    time.sleep(0.4)  # let it store the batch id and start polling
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    created_before_restart = len(_batch_creates(cli.fake))

    result = cli.run("--batch", "--batch-poll", "0.1", num=6)
    assert result.returncode == 0, result.stderr
    assert len(cli.outputs().lines()) == 6
    ids = _custom_ids(cli.fake)
    assert len(ids) == len(set(ids)), "a request was put into a second batch after the restart"
    # The restarted run polled the batch created before the kill instead of creating it again.
    first_batch_polls = [e for e in cli.fake.log if e["method"] == "GET" and e["path"].startswith("/v1/messages/batches/")]
    assert first_batch_polls
    assert len(_batch_creates(cli.fake)) >= created_before_restart
