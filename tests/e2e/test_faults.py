"""`ootgen run` through a flaky API: every fault kind, scripted once and then at random (~25 %)."""

from __future__ import annotations

from collections import Counter

from tests.e2e.conftest import Cli, posts

KINDS = ("rate_limit", "overloaded", "api_error", "drop", "truncate", "malformed", "max_tokens", "not_json")


def test_run_completes_through_faults_and_records_them(cli: Cli):
    cli.fake.configure(retry_after=0)
    # Each kind once, in order, on the first requests; then each kind at random, ~25 % of requests in all.
    cli.fake.add_faults(*KINDS)
    cli.fake.set_random_faults({kind: 0.25 / len(KINDS) for kind in KINDS}, seed=11)
    n = 8
    result = cli.run_in_process(num=n)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]

    out = cli.outputs()
    lines = out.lines()
    assert len(lines) == n
    assert len({line["instruction"] for line in lines}) == n
    meta = out.metadata()
    assert meta["total_examples"] == n and meta["complete"] is True

    sent = posts(cli.fake)
    injected = Counter(e["fault"] for e in sent if e["fault"])
    assert set(KINDS) <= set(injected), f"not every fault kind was exercised: {injected}"
    # Bad replies (cut by max_tokens, prose instead of JSON) are paid-for failures the run must record;
    # a 200 whose body is not JSON is an API failure.
    failures = meta["api"]["failures"]
    assert failures.get("bad_reply", 0) >= 2, failures
    assert sum(failures.values()) >= 3, failures
    rows = out.db("SELECT kind, reason FROM failures")
    assert len(rows) == sum(failures.values())
    assert any("max_tokens" in row["reason"] for row in rows), [row["reason"] for row in rows]
    # Every stored response is valid JSON of the right schema, or recorded as invalid with its error.
    for row in out.db("SELECT valid, error FROM requests"):
        assert row["valid"] == 1 or row["error"], dict(row)
