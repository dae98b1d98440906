"""`ootgen run --batch` at scale (issue 17): batches cut to the per-batch request and byte limits, several
created before any is collected, and a killed run resuming its stored batches without creating them again.
The fake server enforces the limits it is given (400 over the request count, 413 over the byte size)."""

from __future__ import annotations

import signal
import sqlite3
import time

from tests.e2e.conftest import Cli


def _batch_creates(fake) -> list[dict]:
    return [e for e in fake.log if e["method"] == "POST" and e["path"] == "/v1/messages/batches"]


def _custom_ids(fake) -> list[str]:
    return [r["custom_id"] for e in _batch_creates(fake) for r in e["body"]["requests"]]


def _creates_before_first_collect(fake) -> int:
    creates = 0
    for entry in fake.log:
        if entry["method"] == "GET" and entry["path"].endswith("/results"):
            break
        creates += entry["method"] == "POST" and entry["path"] == "/v1/messages/batches"
    return creates


def _stored_open_batches(db_path) -> list[str]:
    if not db_path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
            return [r[0] for r in db.execute("SELECT id FROM batches WHERE status='in_progress'")]
    except sqlite3.OperationalError:  # the run has not created its tables yet
        return []


def test_batches_are_cut_to_the_request_count_limit(cli: Cli):
    cli.fake.configure(batch_max_requests=1, batch_complete_after_polls=1)
    result = cli.run_in_process("--batch", "--batch-poll", "0.01", "--set", "batch.max_requests=1", num=6)
    assert result.returncode == 0, result.stderr
    assert len(cli.outputs().lines()) == 6
    creates = _batch_creates(cli.fake)
    assert all(e["status"] == 200 for e in creates)
    assert max(len(e["body"]["requests"]) for e in creates) == 1
    assert _creates_before_first_collect(cli.fake) >= 2  # one wave went out as several batches in flight
    ids = _custom_ids(cli.fake)
    assert len(ids) == len(set(ids))


def test_batches_are_cut_to_the_byte_limit(cli: Cli):
    # A first run measures one request's size; the limit is then set to hold two or three of them.
    probe = cli.run_in_process("--batch", "--batch-poll", "0.01", "--set", "batch.max_requests=1", num=1, output="probe/d.jsonl")
    assert probe.returncode == 0, probe.stderr
    largest = max(e["body_bytes"] for e in _batch_creates(cli.fake))
    limit = 3 * largest
    cli.fake.reset()
    cli.fake.configure(batch_max_bytes=limit, batch_complete_after_polls=1)
    result = cli.run_in_process("--batch", "--batch-poll", "0.01", "--set", f"batch.max_bytes={limit}", num=6)
    assert result.returncode == 0, result.stderr
    creates = _batch_creates(cli.fake)
    assert all(e["status"] == 200 and e["body_bytes"] <= limit for e in creates)
    assert len(creates) >= 2 and max(len(e["body"]["requests"]) for e in creates) >= 2
    # The same run without the limit sends the first wave as one batch: the cut is the byte limit's doing.
    assert len(cli.outputs().lines()) == 6


def test_over_the_limit_the_fake_refuses_so_the_limits_above_are_really_checked(cli: Cli):
    cli.fake.configure(batch_max_requests=1, batch_complete_after_polls=1)
    result = cli.run_in_process("--batch", "--batch-poll", "0.01", num=6)  # the run's own limit is the API's 100,000
    assert any(e["status"] == 400 for e in _batch_creates(cli.fake))
    # The API's refusal is one line and a stopped run (exit 1), not a traceback.
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "ootgen: error: the API rejected the request (400)" in result.stderr


def test_killed_batch_run_resumes_its_stored_batches_without_creating_them_again(cli: Cli):
    # Batches never end while the first run polls them: it is killed while polling.
    cli.fake.configure(batch_max_requests=1, batch_complete_after_polls=None, batch_complete_after_seconds=None)
    process = cli.popen("--batch", "--batch-poll", "0.05", "--set", "batch.max_requests=1", num=6)
    db_path = cli.outputs().run_dir / "run.sqlite"
    stored: list[str] = []
    deadline = time.monotonic() + 120  # a hang guard only: the batches cannot end, so there is no race
    while time.monotonic() < deadline and process.poll() is None:
        # Observable state: two or more batch ids stored, and the run polling one of them.
        stored = _stored_open_batches(db_path)
        polled = {e["path"].rsplit("/", 1)[-1] for e in cli.fake.log if e["method"] == "GET" and "/batches/msgbatch" in e["path"]}
        if len(stored) >= 2 and polled & set(stored):
            break
        time.sleep(0.05)
    assert len(stored) >= 2, "the run never stored several batch ids"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert not [e for e in cli.fake.log if e["path"].endswith("/results")], "a batch ended before the kill"
    ids_before = _custom_ids(cli.fake)
    creates_before = len(_batch_creates(cli.fake))
    # From now on every batch, stored before the kill or created after it, ends on its next poll.
    cli.fake.end_open_batches_on_next_poll()
    cli.fake.configure(batch_complete_after_polls=1)

    result = cli.run_in_process("--batch", "--batch-poll", "0.01", "--set", "batch.max_requests=1", num=6)
    assert result.returncode == 0, result.stderr
    assert len(cli.outputs().lines()) == 6
    ids = _custom_ids(cli.fake)
    assert len(ids) == len(set(ids)), "a request of a stored batch was put into a new batch after the restart"
    assert ids[: len(ids_before)] == ids_before
    collected = {e["path"].split("/")[-2] for e in cli.fake.log if e["method"] == "GET" and e["path"].endswith("/results")}
    assert set(stored) <= collected, "a batch stored before the kill was not collected after the restart"
    assert len(_batch_creates(cli.fake)) >= creates_before


def test_a_sessions_first_batch_is_small_so_its_first_request_does_not_wait_for_a_full_batch(cli: Cli):
    cli.fake.configure(batch_complete_after_polls=1)
    whole = cli.run_in_process("--batch", "--batch-poll", "0.01", num=6, output="whole/d.jsonl")
    assert whole.returncode == 0, whole.stderr
    first_wave = len(_batch_creates(cli.fake)[0]["body"]["requests"])
    assert first_wave >= 3  # by default the first wave goes as one batch (first_requests 100 is more than it)
    ids = _custom_ids(cli.fake)
    cli.fake.reset()
    cli.fake.configure(batch_complete_after_polls=1)
    result = cli.run_in_process("--batch", "--batch-poll", "0.01", "--set", "batch.first_requests=1", num=6)
    assert result.returncode == 0, result.stderr
    sizes = [len(e["body"]["requests"]) for e in _batch_creates(cli.fake)]
    assert sizes[0] == 1 and sizes[1] == first_wave - 1  # then full batches: the rest of the wave in one
    assert _creates_before_first_collect(cli.fake) == 2
    # The first wave's requests, in the same order, only cut differently (later waves' prompts carry the fake's
    # replies, which number every example it writes, so they differ between the two runs).
    assert _custom_ids(cli.fake)[:first_wave] == ids[:first_wave]
    assert len(cli.outputs().lines()) == 6
