"""Ctrl-C and SIGTERM stop a run cleanly: what was accepted is exported, exit 130, and a rerun resumes."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.e2e.conftest import Cli, body_hash, posts, wait_for


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_exports_what_it_has_and_resumes(cli: Cli, signum):
    cli.fake.configure(latency_ms=250)
    process = subprocess.Popen(
        cli.args(num=40, progress="quiet"), cwd=cli.project, env=cli.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_for(lambda: len([e for e in posts(cli.fake) if e["status"] == 200]) >= 6, "six answered calls")
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr

    out = cli.outputs()
    before = out.lines()
    assert out.metadata()["stop_reason"] == "interrupted"
    assert len(before) == out.metadata()["total_examples"] < 40
    sent_before = {body_hash(e["body"]) for e in posts(cli.fake) if e["status"] == 200}

    resumed = cli.run_in_process(num=40, progress="quiet")  # the resume is library behaviour
    assert resumed.returncode == 0, resumed.stderr
    after = out.lines()
    assert len(after) == 40 and after[: len(before)] == before  # nothing accepted before the stop is lost
    stored = {r["key"] for r in out.db("SELECT key FROM requests")}
    assert stored
    answered_twice = [e for e in posts(cli.fake) if e["status"] == 200 and body_hash(e["body"]) in sent_before]
    assert len(answered_twice) <= len(sent_before) + 8  # at most the calls that were in flight at the stop
