"""A disk that fills up mid-run: one clear error, no traceback, and the run store stays consistent."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli, posts, request_key


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "tmpfs", str(mount_point)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {made.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_full_disk_stops_with_one_line_keeps_the_store_consistent_and_resumes_without_paying_twice(cli: Cli, tiny_disk: Path):
    output = tiny_disk / "data.jsonl"
    first = cli.run_in_process(output=str(output), num=120, progress="quiet")
    assert first.returncode != 0 and "could not be written" in first.stderr
    assert "Traceback" not in first.stderr
    errors = [line for line in first.stderr.splitlines() if line.startswith("ootgen: error:")]
    assert len(errors) == 1 and ("could not be written" in errors[0] or "cannot write" in errors[0]), first.stderr
    db = sqlite3.connect(f"file:{tiny_disk / 'data.run' / 'run.sqlite'}?mode=ro", uri=True)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored_keys = {row[0] for row in db.execute("SELECT key FROM requests")}
    db.close()
    assert stored_keys, first.stderr + str(os.listdir(tiny_disk / "data.run"))
    assert not [p for p in os.listdir(tiny_disk) if p.endswith(".tmp")], "a half-written temporary file was left behind"
    sent_before = len(posts(cli.fake))
    # The keys rebuilt from the wire match the store's (else the check below could never fail).
    assert stored_keys <= {request_key(e["body"], attempt) for e in posts(cli.fake) for attempt in (0, 1, 2)}

    grown = subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], capture_output=True)
    assert grown.returncode == 0, grown.stderr
    second = cli.run_in_process(output=str(output), num=120, progress="quiet")
    assert second.returncode == 0, second.stderr
    assert len(cli.outputs(str(output)).lines()) == 120
    again = [e for e in posts(cli.fake)[sent_before:] if request_key(e["body"]) in stored_keys]
    assert not again, "a response stored before the disk filled was paid for again"
