"""End to end: outputs match their schemas; the response cache, status, export, report, cross-validation
and batch partial failures. The runs execute the `ootgen run` command in process; status, export and report
run as CLI subprocesses against the finished run."""

from __future__ import annotations

import json

import jsonschema

from ootgen.schemas import load_schema
from tests.conftest import run_cli
from tests.e2e.conftest import Cli, posts, read_jsonl


def _validate_all(records: list[dict], schema: str) -> None:
    for record in records:
        jsonschema.validate(record, load_schema(schema))


def test_outputs_match_their_schemas(cli: Cli):
    cli.fake.configure(oot={"bad_fraction": 0.3})
    cli.fake.set_responder("oot")
    result = cli.run_in_process(num=8)
    assert result.returncode == 0, result.stderr
    out = cli.outputs()
    _validate_all(out.lines(), "alpaca_record")
    _validate_all(out.rejected(), "rejected_record")
    assert out.rejected(), "the bad fraction should have produced rejected candidates"
    jsonschema.validate(out.metadata(), load_schema("metadata"))


def test_a_second_run_elsewhere_reuses_the_response_cache_and_no_cache_does_not(cli: Cli):
    assert cli.run_in_process(num=6, output="a/data.jsonl").returncode == 0
    sent_first = len(posts(cli.fake))
    second = cli.run_in_process(num=6, output="b/data.jsonl")
    assert second.returncode == 0, second.stderr
    assert len(posts(cli.fake)) == sent_first, "an identical request was paid for again"
    meta = cli.outputs("b/data.jsonl").metadata()
    assert meta["api"]["responses_reused_from_cache"] > 0 and meta["total_examples"] == 6
    def as_set(lines):  # acceptance order may differ between concurrent runs; the examples may not
        return sorted(json.dumps(line, sort_keys=True) for line in lines)

    assert as_set(cli.outputs("b/data.jsonl").lines()) == as_set(cli.outputs("a/data.jsonl").lines())
    third = cli.run_in_process("--no-cache", num=6, output="c/data.jsonl")
    assert third.returncode == 0, third.stderr
    assert len(posts(cli.fake)) > sent_first


def test_status_export_and_report_work_offline_on_a_finished_run(cli: Cli):
    only_dialogues = "mix={conversational: 1, code_explanation: 0, feature_implementation: 0, debugging_help: 0, architecture_question: 0, code_modification: 0}"
    result = cli.run_in_process("--set", only_dialogues, num=6)
    assert result.returncode == 0, result.stderr
    run_dir = cli.outputs().run_dir
    env = cli.env(key="")  # no key: these commands never call the API
    sent = len(posts(cli.fake))

    status = run_cli("status", str(run_dir), env=env)
    assert status.returncode == 0 and "accepted" in status.stdout

    for fmt, schema in (("sharegpt", "sharegpt_record"), ("messages", "messages_record")):
        exported = run_cli("export", str(run_dir), "--format", fmt, "-o", str(run_dir / f"{fmt}.jsonl"), env=env)
        assert exported.returncode == 0, exported.stderr
        records = read_jsonl(run_dir / f"{fmt}.jsonl")
        assert len(records) == 6
        _validate_all(records, schema)
    dialogues = [r["messages"] for r in read_jsonl(run_dir / "messages.jsonl")]
    assert all([m["role"] for m in d[:2]] == ["user", "assistant"] for d in dialogues)
    assert any(len(d) >= 4 for d in dialogues), "no multi-turn dialogue was exported whole"

    flattened = cli.outputs().lines()
    assert all(line["input"].startswith("User: ") for line in flattened if line["input"])

    high = run_cli("export", str(run_dir), "--min-score", "11", "-o", str(run_dir / "none.jsonl"), env=env)
    assert high.returncode == 0 and read_jsonl(run_dir / "none.jsonl") == []

    report = run_cli("report", str(run_dir), "-o", str(run_dir / "report.html"), env=env)
    assert report.returncode == 0, report.stderr
    assert "<html" in (run_dir / "report.html").read_text().lower()
    assert len(posts(cli.fake)) == sent


def test_cross_validation_asks_every_judge_and_records_the_rule(cli: Cli):
    result = cli.run_in_process("--set", "judges=[claude-sonnet-5, claude-haiku-4-5]", "--set", "cross_validation.rule=all", num=6)
    assert result.returncode == 0, result.stderr
    judge_models = [e["body"]["model"] for e in posts(cli.fake) if "judge_reply" in json.dumps(e["body"].get("output_config", {}))]
    assert judge_models.count("claude-sonnet-5") == judge_models.count("claude-haiku-4-5") > 0
    meta = cli.outputs().metadata()
    assert meta["cross_validation"]["judges"] == ["claude-sonnet-5", "claude-haiku-4-5"]
    assert meta["cross_validation"]["rule"] == "all"
    haiku_bodies = [e["body"] for e in posts(cli.fake) if e["body"]["model"] == "claude-haiku-4-5"]
    assert all("effort" not in b.get("output_config", {}) for b in haiku_bodies)  # haiku's table entry refuses effort


def test_batch_run_survives_errored_and_expired_entries(cli: Cli):
    cli.fake.configure(batch_errored_fraction=0.25, batch_expired_fraction=0.15)
    result = cli.run_in_process("--batch", "--batch-poll", "0.05", num=12)  # >= 4 entries per wave: some err, some expire
    assert result.returncode == 0, result.stderr
    meta = cli.outputs().metadata()
    assert meta["total_examples"] == 12
    assert any(reason.startswith("batch_") for reason in meta["api"]["failures"]), meta["api"]["failures"]
