"""Every API metric in the metadata and the report matches what the fake server counted, through faults the SDK
retries and one kill and resume."""

from __future__ import annotations

import signal
from collections import Counter

from tests.e2e.conftest import Cli, in_process, posts, wait_for

FLAKY = {"rate_limit": 0.06, "overloaded": 0.06, "api_error": 0.04, "drop": 0.04}
STATUS_KIND = {429: "rate_limited_429", 529: "overloaded_529", 500: "server_error_5xx", "dropped": "connection"}


def test_report_metrics_match_what_the_fake_server_counted(cli: Cli):
    cli.fake.configure(retry_after=0.01, latency_ms=30)
    cli.fake.set_random_faults(FLAKY, seed=5)
    process = cli.popen(num=12)
    db = cli.outputs().run_dir / "run.sqlite"
    wait_for(lambda: len([e for e in posts(cli.fake) if e["status"] == 200]) >= 4 or process.poll() is not None,
             "four answered calls")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert db.is_file()
    # Every request the killed run sent is in the log once the server holds none of its connections.
    wait_for(lambda: cli.fake.open_connections == 0 and all(e["end"] is not None for e in cli.fake.log),
             "the killed run's requests to settle")
    killed_session = len(cli.fake.log)
    result = cli.run_in_process(num=12)  # the resume is library behaviour
    assert result.returncode == 0, result.stderr[-2000:]
    meta = cli.outputs().metadata()
    api = meta["api"]
    log = cli.fake.log[killed_session:]  # the killed session's counts died with it; the store has the rest

    answered = [e for e in log if e["path"] == "/v1/messages" and e["status"] == 200]
    stored_calls = sum(api["calls"].values())
    # Calls: one stored response per answered POST of the finished session, plus what the killed one stored.
    killed_answers = [e for e in cli.fake.log[:killed_session] if e["path"] == "/v1/messages" and e["status"] == 200]
    assert len(answered) <= stored_calls <= len(answered) + len(killed_answers)
    assert api["http_attempts"] == len(log)
    assert api["sdk_retries"] == sum(1 for e in log if e["retry_count"] not in (None, "0"))
    faults = Counter(STATUS_KIND[e["status"]] for e in log if e["status"] in STATUS_KIND)
    assert faults, "setup: the fake injected no fault"
    assert api["http_faults"] == dict(sorted(faults.items()))
    # Peak concurrency as the server saw it: a request is open from its arrival to its last byte.
    server_peak = max(e["in_flight_at_arrival"] for e in log)
    assert server_peak <= api["peak_concurrency"] <= server_peak + 1, (server_peak, api["peak_concurrency"])
    assert meta["candidates"]["accepted"] - meta["candidates"]["surplus_accepted"] == meta["total_examples"] == 12

    # The report lists the faults the SDK retried instead of "No API call failed".
    report = in_process(["report", str(cli.outputs().run_dir), "-o", str(cli.project / "r.html")], cwd=cli.project, env=cli.env())
    assert report.returncode == 0, report.stderr
    html = (cli.project / "r.html").read_text()
    assert "No API call failed" not in html
    for kind in faults:
        assert kind in html
