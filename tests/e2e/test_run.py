"""`ootgen run` end to end: outputs, request shape, accounting, rejections, budget and model refusals.

The happy path, the budget stop's exit 1 and --dry-run run the CLI as a subprocess; the other tests check library
behaviour through the same command run in process (`Cli.run_in_process`)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.e2e.conftest import (
    Cli,
    billed_usd,
    body_hash,
    events,
    kind_of,
    posts,
    request_text,
    schema_title,
    wait_for,
)
from tests.fake_anthropic import FakeAnthropic
from tests.fake_anthropic.oot_responder import OotResponder


def _assert_alpaca_lines(lines: list[dict]) -> None:
    for line in lines:  # `input` always present ("" when empty): load_dataset and the Unsloth template need it
        assert set(line) == {"instruction", "input", "output"}, line.keys()
        assert line["instruction"].strip() and line["output"].strip()
        assert line["input"] == line["input"].strip() or line["input"].strip(), "a whitespace-only input was written"


def test_happy_path_writes_n_examples_metadata_and_well_formed_requests(cli: Cli):
    n = 8
    result = cli.run("--concurrency", "3", num=n)
    assert result.returncode == 0, result.stderr
    out = cli.outputs()

    lines = out.lines()
    assert len(lines) == n
    _assert_alpaca_lines(lines)
    assert len({line["instruction"] for line in lines}) == n

    meta = out.metadata()
    assert meta["total_examples"] == n
    assert meta["complete"] is True and meta["stop_reason"] == "complete"
    assert meta["average_quality"] >= 6
    assert sum(meta["type_distribution"].values()) == n
    assert meta["tokens"]["cache_read_input_tokens"] > 0
    calls = [e for e in events(result.stderr) if e["event"] == "call"]
    assert any(e["usage"]["cache_read_input_tokens"] > 0 for e in calls[1:]), "no later call read the cached prefix"

    sent = posts(cli.fake)
    for entry in sent:
        body = entry["body"]
        assert body["output_config"]["format"]["type"] == "json_schema"
        assert isinstance(body["system"], list) and any("cache_control" in block for block in body["system"])
        assert body["model"] == "claude-sonnet-5"
        assert "temperature" not in body, "claude-sonnet-5 refuses temperature (models.yaml)"
        assert entry["status"] == 200 and entry["auth"] in ("x-api-key", "bearer", "both")
    assert cli.fake.max_concurrency_seen <= 3

    rejected = out.rejected()
    assert all(r["reason"] for r in rejected)
    assert "ootgen: error" not in result.stderr and "Traceback" not in result.stderr

    # Every request the API answered is accounted for (see also the in-flight test below).
    by_kind = {"generate": 0, "judge": 0}
    for entry in sent:
        by_kind[kind_of(entry["body"])] += 1
    assert by_kind == meta["api"]["calls"], f"fake answered {by_kind}, metadata counts {meta['api']['calls']}"


def test_statically_wrong_candidates_are_rejected_and_never_judged(cli: Cli):
    cli.fake.configure(responder="oot", oot={"bad_fraction": 0.4, "seed": 7})
    responder = cli.fake._responder_fn
    assert isinstance(responder, OotResponder)
    n = 8
    result = cli.run_in_process(num=n)
    assert result.returncode == 0, result.stderr
    out = cli.outputs()
    assert responder.bad_generated > 0

    lines = out.lines()
    assert len(lines) == n
    _assert_alpaca_lines(lines)
    for line in lines:
        text = json.dumps(line)
        assert "Actor_DoesNotExist" not in text and "GlobalContext" not in text, line["instruction"]

    rejected = out.rejected()
    judge_prompts = "\n".join(request_text(e["body"]) for e in posts(cli.fake) if schema_title(e["body"]) == "judge_reply")
    missing_fn = [r for r in rejected if "Actor_DoesNotExist" in r["output"]]
    old_era = [r for r in rejected if "GlobalContext" in r["output"]]
    assert missing_fn, "the responder's bad examples did not reach the rejected file"
    for r in missing_fn:
        if r["type"] == "debugging_help":
            continue  # see test_unknown_function_in_a_corrected_fix_is_rejected_statically
        assert r["reason"].startswith("static:") and "UNKNOWN_FUNCTION" in r["reason"], r["reason"]
        assert r["instruction"] not in judge_prompts, "a statically rejected candidate was sent to the judge"
    for r in old_era:
        if r["reason"].startswith("static:"):
            assert "NAMING_ERA_MIX" in r["reason"] or "OLD_NAME" in r["reason"], r["reason"]
            assert r["instruction"] not in judge_prompts
        else:  # old names alone are a warning (checks.yaml): the judge must catch them
            assert r["reason"].startswith("low_score"), r["reason"]
    meta = out.metadata()
    assert meta["rejection_reasons"].get("static", 0) == sum(r["reason"].startswith("static:") for r in rejected)
    assert meta["candidates"]["rejected"] == len(rejected)


class _SlowThirdJudge(OotResponder):
    """Answers judge requests after the first a second late, so the target can be reached while one is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self._judges = 0
        self._count_lock = threading.Lock()

    def judge(self, prompt: str) -> dict:
        with self._count_lock:
            self._judges += 1
            number = self._judges
        if number >= 2:
            time.sleep(1.0)
        return super().judge(prompt)


def test_calls_in_flight_when_the_target_is_reached_are_finished_and_counted(project_dir, preset):
    # 6 wanted, 3 per call: three generation calls and three judge calls of three candidates, all accepted.
    with FakeAnthropic(api_key="test-key", responder=_SlowThirdJudge()) as fake:
        cli = Cli(project_dir, preset, fake)
        result = cli.run_in_process(num=6)
        assert result.returncode == 0, result.stderr
        meta = cli.outputs().metadata()
        wait_for(lambda: fake.open_connections == 0 and all(e["end"] is not None for e in fake.log),
                 "every request the fake received to settle")
        sent = posts(fake)
    judge_posts = [e for e in sent if kind_of(e["body"]) == "judge"]
    assert len(judge_posts) >= 2, "setup: expected a second (slow) judge call"
    abandoned = [e["seq"] for e in sent if e["status"] != 200]
    assert not abandoned, f"requests abandoned mid-flight at completion (paid for, never stored): {abandoned}"
    assert len(sent) == sum(meta["api"]["calls"].values()), (
        f"the fake answered {len(sent)} POST /v1/messages but metadata counts {meta['api']['calls']}"
    )


def test_tiny_max_cost_stops_cleanly_before_any_request(cli: Cli):
    result = cli.run("--max-cost", "0.01", num=8)
    assert result.returncode == 1, result.stderr
    assert "incomplete" in result.stderr and "Traceback" not in result.stderr
    out = cli.outputs()
    meta = out.metadata()
    assert meta["stop_reason"] == "budget" and meta["complete"] is False
    assert meta["cost_usd"] <= 0.01
    assert out.lines() == [] and meta["total_examples"] == 0
    assert posts(cli.fake) == []


def _without_max_tokens(body: dict) -> str:
    return body_hash({k: v for k, v in body.items() if k != "max_tokens"})


def test_max_cost_spends_up_to_the_cap_never_past_it_and_its_answers_are_reused(cli: Cli):
    cap, num = 0.7, 80  # 80 examples cost about $0.95: the cap stops the run
    result = cli.run_in_process("--max-cost", str(cap), num=num)
    assert result.returncode == 1, result.stderr
    assert "incomplete" in result.stderr and "Traceback" not in result.stderr
    out = cli.outputs()
    meta = out.metadata()
    assert meta["stop_reason"] == "budget"
    # Spent up to the cap, never past it, by the fake's own bill: near the cap calls go with a lower max_tokens
    # (down to the longest reply seen + 25 %) instead of stopping a whole worst case ($0.13) short of it.
    billed = billed_usd(cli.fake)
    assert 0.9 * cap <= billed <= cap, billed
    assert meta["cost_usd"] == pytest.approx(billed, abs=1e-6)
    configured = {"generation_reply": 12000, "judge_reply": 3000}
    first = posts(cli.fake)
    assert [e for e in first if e["body"]["max_tokens"] < configured[schema_title(e["body"])]], "no max_tokens was lowered"
    assert meta["candidates"]["pending"] == 0, "paid-for candidates were left unjudged at the cap"
    lines = out.lines()
    _assert_alpaca_lines(lines)
    assert len(lines) == meta["total_examples"] < num
    assert len(first) == sum(meta["api"]["calls"].values())
    # Under a cap the input of the first request of each prompt shape is counted by the API's tokenizer.
    counted = cli.fake.requests("/v1/messages/count_tokens", "POST")
    shapes = [(e["body"]["model"], *(block["text"] for block in e["body"]["system"])) for e in counted]
    assert counted and all(e["status"] == 200 for e in counted)
    assert len(shapes) == len(set(shapes)), "a prompt shape was counted twice"

    # The same job without the cap in a new run directory: every question answered under a lowered max_tokens
    # comes from the response cache (stored under the question's own key), none is asked again.
    answered = {_without_max_tokens(e["body"]) for e in first if e["stop_reason"] == "end_turn"}
    seen = max(e["seq"] for e in cli.fake.log)
    again = cli.run_in_process(num=num, output="again/data.jsonl")
    assert again.returncode == 0, again.stderr
    resent = [e["seq"] for e in posts(cli.fake, since=seen) if _without_max_tokens(e["body"]) in answered]
    assert not resent, f"questions answered under the cap were asked again: {resent}"
    assert len(cli.outputs("again/data.jsonl").lines()) == num


def test_unknown_model_runs_with_a_cost_warning(cli: Cli):
    result = cli.run_in_process("--model", "claude-unknown-9", num=6)
    assert result.returncode == 0, result.stderr
    assert "claude-unknown-9" in result.stderr and "cost is unknown" in result.stderr
    meta = cli.outputs().metadata()
    assert meta["total_examples"] == 6 and meta["cost_usd"] is None
    sent = posts(cli.fake)
    assert sent and all(e["body"]["model"] == "claude-unknown-9" for e in sent)
    assert all(e["body"]["output_config"]["format"]["type"] == "json_schema" for e in sent)


@pytest.mark.parametrize("named", [("--model", "claude-unknown-9"),
                                   ("--set", "judges=[claude-sonnet-5, claude-unknown-9]")],
                         ids=["generator", "cross-validation judge"])
def test_unknown_model_with_max_cost_is_refused_before_any_request(cli: Cli, named):
    result = cli.run_in_process(*named, "--max-cost", "1", num=6)
    assert result.returncode == 2, result.stderr
    assert "claude-unknown-9" in result.stderr and "--max-cost" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli.fake.log == []


@pytest.mark.parametrize("flag", ["--model", "--judge-model"])
def test_a_model_the_api_does_not_know_costs_one_request_and_names_the_flag(cli: Cli, flag):
    cli.fake.configure(models=["claude-sonnet-5"])  # the API answers 404 not_found_error for any other model
    result = cli.run_in_process(flag, "claude-nonexistent-1", num=6)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ootgen: error")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{flag} claude-nonexistent-1" in errors[0] and "404" in errors[0], errors[0]
    refused = [e for e in cli.fake.log if e["status"] == 404]
    assert [(e["path"], e["model"]) for e in refused] == [("/v1/messages", "claude-nonexistent-1")]
    if flag == "--model":
        assert len(cli.fake.log) == 1


def test_retired_model_is_refused_with_its_replacement(cli: Cli):
    result = cli.run_in_process("--model", "claude-3-5-sonnet-20241022", num=6)
    assert result.returncode == 2, result.stderr
    assert "retired" in result.stderr and "claude-sonnet-5" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli.fake.log == []


def test_dry_run_needs_no_key_and_sends_nothing(cli: Cli):
    result = cli.run("--dry-run", key="", num=8)
    assert result.returncode == 0, result.stderr
    assert "No request was sent" in result.stdout
    assert cli.fake.log == []
    assert not cli.outputs().dataset.exists()


def test_rejected_key_fails_fast_with_one_request_and_no_traceback(cli: Cli):
    result = cli.run_in_process(key="wrong-key", num=8)
    assert result.returncode not in (0, None)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ootgen: error")]
    assert len(errors) == 1, result.stderr
    assert "key" in errors[0] and "401" in errors[0]
    assert len(cli.fake.log) == 1, [e["seq"] for e in cli.fake.log]


def test_unknown_function_in_a_corrected_fix_is_rejected_statically(cli: Cli):
    # Only debugging_help: the answer's prose says "The bug is ... Here is the corrected X:" before the fix.
    types = sorted(p.stem for p in (cli.project / "configs" / "types").glob("*.yaml"))
    if "debugging_help" not in types:
        raise AssertionError("setup: the debugging_help example type is missing")
    mix = [f"--set=mix.{name}={1.0 if name == 'debugging_help' else 0}" for name in types]
    cli.fake.configure(responder="oot", oot={"bad_fraction": 0.5, "seed": 1})
    result = cli.run_in_process(*mix, num=6)
    assert result.returncode in (0, 1), result.stderr
    judge_prompts = "\n".join(request_text(e["body"]) for e in posts(cli.fake) if schema_title(e["body"]) == "judge_reply")
    missing_fn = [r for r in cli.outputs().rejected() if "Actor_DoesNotExist" in r["output"]]
    assert missing_fn, "setup: no candidate called Actor_DoesNotExist"
    wrongly_judged = [(r["id"], r["reason"], [f["code"] for f in r["findings"]]) for r in missing_fn
                      if not r["reason"].startswith("static:") or r["instruction"] in judge_prompts]
    assert not wrongly_judged, (
        "answers whose corrected code calls a function that does not exist went to the judge "
        f"instead of a static UNKNOWN_FUNCTION rejection: {wrongly_judged}"
    )
