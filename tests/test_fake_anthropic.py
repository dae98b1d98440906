"""The fake Anthropic server, driven by the real `anthropic` SDK over real HTTP.

These tests pin both the fake's behaviour and the SDK facts ootgen builds on (retries, retry-after,
error types, batch results URL), so an SDK upgrade that changes them shows up here first.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import anthropic
import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` without `python -m` does not put the project root on sys.path
    sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import wait_for  # noqa: E402
from tests.fake_anthropic import FakeAnthropic, Fault  # noqa: E402
from tests.fake_anthropic.oot_responder import OotResponder  # noqa: E402

KEY = "test-key"
MODEL = "claude-sonnet-5"
SCHEMAS = ROOT / "schemas"
USER = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(autouse=True)
def _no_real_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake():
    with FakeAnthropic(api_key=KEY) as server:
        yield server


def client(fake: FakeAnthropic, **kwargs) -> anthropic.Anthropic:
    kwargs.setdefault("max_retries", 2)
    return anthropic.Anthropic(base_url=fake.base_url, api_key=kwargs.pop("api_key", KEY), **kwargs)


def load_schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def api_entries(fake: FakeAnthropic) -> list[dict]:
    return fake.requests(path="/v1/messages")


# ----- messages ------------------------------------------------------------------------------------


def test_plain_message_echoes_model_and_reports_usage(fake):
    reply = client(fake).messages.create(model=MODEL, max_tokens=200, system="You are terse.", messages=USER)

    assert reply.model == MODEL
    assert reply.stop_reason == "end_turn"
    assert reply.content[0].type == "text" and reply.content[0].text
    assert reply.usage.input_tokens == math.ceil((len("You are terse.") + len("Say hello.")) / 3.3)
    assert reply.usage.output_tokens == math.ceil(len(reply.content[0].text) / 3.3)
    [entry] = api_entries(fake)
    assert entry["status"] == 200 and entry["model"] == MODEL
    assert entry["auth"] == "bearer"  # this SDK sends `Authorization: Bearer`, not x-api-key
    assert entry["key_in_body"] is False
    assert entry["body"]["messages"] == USER


def test_a_request_still_being_read_is_counted_as_an_open_connection_until_its_client_goes(fake):
    # A killed client's last request reaches the log only once its body is read; open_connections tells a test
    # when nothing more can arrive.
    host, port = fake.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        wait_for(lambda: fake.open_connections == 1, "the connection to be accepted")
        assert fake.log == []
    wait_for(lambda: fake.open_connections == 0, "the closed connection to be released")
    assert len(fake.log) <= 1


def test_streaming_emits_the_sdk_event_sequence(fake):
    fake.configure(default_text="Streaming works with several text deltas in a row.", stream_chunk_chars=8)
    stream = client(fake).messages.create(model=MODEL, max_tokens=200, messages=USER, stream=True)
    events = list(stream)

    types = [e.type for e in events]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == "Streaming works with several text deltas in a row."
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens > 0

    with client(fake).messages.stream(model=MODEL, max_tokens=200, messages=USER) as helper:
        final = helper.get_final_message()
    assert final.content[0].text == text and final.stop_reason == "end_turn"
    assert all(e["stream"] for e in api_entries(fake))


def test_x_api_key_header_is_accepted_and_logged(fake):
    raw = urllib.request.Request(
        fake.base_url + "/v1/messages",
        data=json.dumps({"model": MODEL, "max_tokens": 50, "messages": USER}).encode(),
        headers={"x-api-key": KEY, "content-type": "application/json"},
    )
    with urllib.request.urlopen(raw) as response:
        assert json.load(response)["type"] == "message"
    assert api_entries(fake)[0]["auth"] == "x-api-key"


def test_key_in_body_is_flagged(fake):
    client(fake).messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": f"my key {KEY}"}])
    assert api_entries(fake)[0]["key_in_body"] is True


def test_structured_output_is_valid_against_any_plain_schema(fake):
    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "tags", "level", "ratio", "ok", "kind"],
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3},
            "level": {"type": "integer", "minimum": 1, "maximum": 10},
            "ratio": {"type": "number", "minimum": 0.5},
            "ok": {"type": "boolean"},
            "kind": {"type": "string", "enum": ["a", "b"]},
        },
    }
    for name in ("generation_reply", "judge_reply"):
        reply = client(fake).messages.create(
            model=MODEL, max_tokens=4000, messages=USER,
            output_config={"format": {"type": "json_schema", "schema": load_schema(name)}},
        )  # fmt: skip
        jsonschema.validate(json.loads(reply.content[0].text), load_schema(name))
    reply = client(fake).messages.create(
        model=MODEL, max_tokens=1000, messages=USER, output_config={"format": {"type": "json_schema", "schema": schema}}
    )
    value = json.loads(reply.content[0].text)
    jsonschema.validate(value, schema)
    assert len(value["tags"]) == 3


def test_custom_responder_gets_the_parsed_request(fake):
    seen = []
    fake.set_responder(lambda req: seen.append(req) or f"{len(req['messages'])} message(s)")
    reply = client(fake).messages.create(model=MODEL, max_tokens=50, messages=USER)
    assert reply.content[0].text == "1 message(s)"
    assert seen[0]["model"] == MODEL


# ----- the OoT responder ---------------------------------------------------------------------------

GEN_PROMPT = (
    "<example_type>{etype}</example_type>\n<examples_wanted>{n}</examples_wanted>\n"
    "<topics>\n{topics}\n</topics>\nReply with JSON."
)


def _generate(fake, etype: str, n: int, *, structured: bool = True) -> dict:
    topics = "\n".join(f"<topic>topic {i}</topic>" for i in range(n))
    extra = {"output_config": {"format": {"type": "json_schema", "schema": load_schema("generation_reply")}}}
    reply = client(fake).messages.create(
        model=MODEL, max_tokens=16000,  # above ~21,333 the SDK refuses non-streaming calls
        messages=[{"role": "user", "content": GEN_PROMPT.format(etype=etype, n=n, topics=topics)}],
        **(extra if structured else {}),
    )  # fmt: skip
    text = reply.content[0].text
    if not structured:
        assert "```json" in text
        text = text.split("```json", 1)[1].rsplit("```", 1)[0]  # the examples hold ``` fences too
    value = json.loads(text)
    jsonschema.validate(value, load_schema("generation_reply"))
    return value


def test_oot_generation_gives_n_distinct_examples_with_real_identifiers(fake):
    fake.set_responder(OotResponder())
    instructions = []
    for etype, needs_input in [("code_explanation", True), ("debugging_help", True), ("feature_implementation", False)]:
        examples = _generate(fake, etype, 3)["examples"]
        assert len(examples) == 3
        assert [e["topic"] for e in examples] == ["topic 0", "topic 1", "topic 2"]
        for e in examples:
            assert bool(e["input"]) is needs_input
            assert "```c" in e["output"] and "PlayState* play" in e["output"]
            assert "globalCtx" not in e["output"] and "DoesNotExist" not in e["output"]
            assert e["turns"] == []
        instructions += [e["instruction"] for e in examples]
    assert len(set(instructions)) == len(instructions)

    conversation = _generate(fake, "conversational", 4, structured=False)["examples"]
    for e in conversation:
        roles = [t["role"] for t in e["turns"]]
        assert 2 <= len(roles) <= 6 and roles == ["user", "assistant"] * (len(roles) // 2)


def test_oot_generation_arities_match_the_decomp():
    from tests.conftest import decomp_facts_dir

    facts_dir = decomp_facts_dir()
    facts = facts_dir / "functions.json" if facts_dir else Path("missing")
    if not facts.exists():
        pytest.skip("decomp fact data not available")
    import re

    arity = {f["name"]: f["arity"] for f in json.loads(facts.read_text())["functions"]}
    responder = OotResponder()
    for etype in ("code_explanation", "code_modification", "architecture_question"):
        prompt = GEN_PROMPT.format(etype=etype, n=7, topics="")
        for example in responder.generate(prompt)["examples"]:
            code = example["output"].split("```c", 1)[1].split("```", 1)[0]
            for name, args in re.findall(r"\b([A-Z][A-Za-z0-9]*_[A-Za-z0-9_]+)\(([^;{]*?)\);", code):
                assert name in arity, name
                count = 0 if not args.strip() else args.count(",") + 1
                assert count == arity[name] or "(" in args, (name, args)


def test_oot_bad_and_duplicate_fractions_and_judge(fake):
    fake.set_responder(OotResponder(bad_fraction=0.5, duplicate_fraction=0.0, seed=3))
    examples = _generate(fake, "code_explanation", 8)["examples"]
    bad = [e for e in examples if "DoesNotExist" in e["output"] or "globalCtx" in e["output"]]
    assert 0 < len(bad) < len(examples)

    candidates = "\n".join(
        f'<candidate index="{i}">\n{json.dumps(e)}\n</candidate>' for i, e in enumerate(examples)
    )
    reply = client(fake).messages.create(
        model=MODEL, max_tokens=4000,
        messages=[{"role": "user", "content": f"Judge these.\n{candidates}"}],
        output_config={"format": {"type": "json_schema", "schema": load_schema("judge_reply")}},
    )  # fmt: skip
    verdicts = json.loads(reply.content[0].text)["verdicts"]
    jsonschema.validate({"verdicts": verdicts}, load_schema("judge_reply"))
    assert [v["index"] for v in verdicts] == list(range(len(examples)))
    for v, e in zip(verdicts, examples):
        if e in bad:
            assert v["technical_accuracy"] <= 3 and v["technical_issues"] and not v["uses_correct_terminology"]
        else:
            assert v["technical_accuracy"] >= 8 and v["technical_issues"] == []

    dup = OotResponder(duplicate_fraction=1.0)
    first = dup.generate(GEN_PROMPT.format(etype="code_explanation", n=1, topics=""))["examples"]
    again = dup.generate(GEN_PROMPT.format(etype="code_explanation", n=2, topics=""))["examples"]
    assert again == first * 2


def test_oot_generation_tolerates_missing_tags():
    value = OotResponder().generate("Write an example about actors, as JSON.")
    assert len(value["examples"]) == 1 and value["examples"][0]["input"]


# ----- prompt caching ------------------------------------------------------------------------------


def test_cached_system_prefix_is_created_then_read(fake):
    context = "Actor system knowledge. " * 200  # 4,800 chars: 1,455 tokens at 3.3 characters a token
    system = [
        {"type": "text", "text": context, "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Task specifics vary per call."},
    ]
    c = client(fake)
    first = c.messages.create(model=MODEL, max_tokens=100, system=system, messages=USER).usage
    second = c.messages.create(model=MODEL, max_tokens=100, system=system, messages=[
        {"role": "user", "content": "A different question this time."}
    ]).usage  # fmt: skip

    assert first.cache_creation_input_tokens == 1455 and first.cache_read_input_tokens == 0
    assert second.cache_creation_input_tokens == 0 and second.cache_read_input_tokens == 1455
    rest = len("Task specifics vary per call.") + len("A different question this time.")
    assert second.input_tokens == math.ceil((len(context) + rest) / 3.3) - 1455

    other_model = c.messages.create(model="claude-haiku-5", max_tokens=100, system=system, messages=USER).usage
    assert other_model.cache_creation_input_tokens == 1455  # the cache key includes the model

    counted = c.messages.count_tokens(model=MODEL, system=system, messages=USER)
    assert counted.input_tokens == math.ceil((len(context) + rest - len("A different question this time.") + len("Say hello.")) / 3.3)
    again = c.messages.create(model=MODEL, max_tokens=100, system=system, messages=USER).usage
    assert again.cache_read_input_tokens == 1455, "count_tokens must not touch the cache"


def test_cache_entries_expire_after_the_ttl_of_idleness(fake):
    fake.configure(cache_ttl_seconds=0.0)  # every entry is idle for longer than the TTL by the next call
    system = [{"type": "text", "text": "Actor system knowledge. " * 200, "cache_control": {"type": "ephemeral"}}]
    c = client(fake)
    first = c.messages.create(model=MODEL, max_tokens=100, system=system, messages=USER).usage
    second = c.messages.create(model=MODEL, max_tokens=100, system=system, messages=USER).usage
    assert first.cache_creation_input_tokens == second.cache_creation_input_tokens == 1455
    assert second.cache_read_input_tokens == 0
    fake.configure(cache_ttl_seconds=300.0)
    third = c.messages.create(model=MODEL, max_tokens=100, system=system, messages=USER).usage
    assert third.cache_read_input_tokens == 1455


def test_top_level_cache_control_marks_the_last_block(fake):
    c = client(fake)
    kwargs = dict(model=MODEL, max_tokens=100, system="Stable system prompt. " * 50, messages=USER,
                  cache_control={"type": "ephemeral"})  # fmt: skip
    assert c.messages.create(**kwargs).usage.cache_creation_input_tokens > 0
    usage = c.messages.create(**kwargs).usage
    assert usage.cache_read_input_tokens > 0 and usage.input_tokens == 0


# ----- faults and retries --------------------------------------------------------------------------


def test_wrong_key_raises_authentication_error_without_retries(fake):
    with pytest.raises(anthropic.AuthenticationError) as info:
        client(fake, api_key="wrong-key", max_retries=3).messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert info.value.status_code == 401
    assert info.value.body["error"]["type"] == "authentication_error"
    assert len(api_entries(fake)) == 1


def test_rate_limit_with_retry_after_then_success(fake):
    fake.add_faults(Fault("rate_limit", retry_after=0.2))
    started = time.monotonic()
    reply = client(fake).messages.create(model=MODEL, max_tokens=100, messages=USER)
    waited = time.monotonic() - started

    assert reply.stop_reason == "end_turn"
    entries = api_entries(fake)
    assert [(e["status"], e["fault"], e["retry_count"]) for e in entries] == [
        (429, "rate_limit", "0"), (200, None, "1")
    ]  # fmt: skip
    assert 0.2 <= waited < 2.0  # the SDK slept for retry-after, not its own backoff
    assert entries[1]["start"] - entries[0]["end"] >= 0.19


def test_rate_limit_error_carries_headers_when_retries_run_out(fake):
    fake.add_faults("429", "429")
    with pytest.raises(anthropic.RateLimitError) as info:
        client(fake, max_retries=1).messages.create(model=MODEL, max_tokens=100, messages=USER)
    headers = info.value.response.headers
    assert headers["retry-after"] == "0.01"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert "anthropic-ratelimit-tokens-reset" in headers


@pytest.mark.parametrize("kind, status", [("overloaded", 529), ("api_error", 500)])
def test_server_errors_are_retried(fake, kind, status):
    fake.add_faults(kind, kind)
    reply = client(fake).messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert reply.content[0].text
    assert [e["status"] for e in api_entries(fake)] == [status, status, 200]


def test_overloaded_error_type_when_not_retried(fake):
    fake.add_faults("529")
    with pytest.raises(anthropic.OverloadedError):
        client(fake, max_retries=0).messages.create(model=MODEL, max_tokens=100, messages=USER)


@pytest.mark.parametrize("kind", ["drop", "truncate"])
def test_broken_connections_are_retried(fake, kind):
    fake.add_faults(kind)
    reply = client(fake).messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert reply.stop_reason == "end_turn"
    assert [e["fault"] for e in api_entries(fake)] == [kind, None]


def test_dropped_connection_without_retries_is_a_connection_error(fake):
    fake.add_faults("drop")
    with pytest.raises(anthropic.APIConnectionError):
        client(fake, max_retries=0).messages.create(model=MODEL, max_tokens=100, messages=USER)


def test_max_tokens_fault_cuts_the_json_in_half(fake):
    schema = load_schema("judge_reply")
    fake.add_faults("max_tokens")
    reply = client(fake).messages.create(
        model=MODEL, max_tokens=500, messages=USER, output_config={"format": {"type": "json_schema", "schema": schema}}
    )
    assert reply.stop_reason == "max_tokens" and reply.usage.output_tokens == 500
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.content[0].text)


def test_small_max_tokens_truncates_naturally(fake):
    fake.configure(default_text="x" * 400)
    reply = client(fake).messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert reply.stop_reason == "max_tokens" and len(reply.content[0].text) == 33  # 10 tokens of 3.3 characters


def test_not_json_fault_returns_prose(fake):
    fake.add_faults("not_json")
    reply = client(fake).messages.create(
        model=MODEL, max_tokens=500, messages=USER,
        output_config={"format": {"type": "json_schema", "schema": load_schema("judge_reply")}},
    )  # fmt: skip
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.content[0].text)


def test_malformed_body_raises_and_is_not_retried(fake):
    fake.add_faults("malformed")
    # The SDK lets json's own error escape here: a JSONDecodeError, not an anthropic.APIError.
    with pytest.raises(json.JSONDecodeError):
        client(fake, max_retries=2).messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert len(api_entries(fake)) == 1


def test_latency_fault_and_global_latency(fake):
    fake.add_faults(Fault("latency", latency_ms=150))
    c = client(fake)
    started = time.monotonic()
    c.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert time.monotonic() - started >= 0.15
    fake.configure(latency_ms=100)
    started = time.monotonic()
    c.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert time.monotonic() - started >= 0.1


def test_fault_queue_is_fifo_and_path_scoped(fake):
    fake.add_faults(Fault("api_error", path="/v1/messages/batches"), "overloaded")
    c = client(fake, max_retries=0)
    c.messages.create(model=MODEL, max_tokens=100, messages=USER)  # head fault is for batches: not consumed
    assert len(fake.pending_faults) == 2
    with pytest.raises(anthropic.InternalServerError):
        c.messages.batches.create(requests=[{"custom_id": "a", "params": {"model": MODEL, "max_tokens": 5, "messages": USER}}])
    with pytest.raises(anthropic.OverloadedError):
        c.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert fake.pending_faults == []


def test_random_faults_are_reproducible_with_a_seed():
    outcomes = []
    for _ in range(2):
        with FakeAnthropic(api_key=KEY, random_faults={"api_error": 0.3, "rate_limit": 0.2}, seed=7) as server:
            c = client(server, max_retries=0)
            for _ in range(20):
                try:
                    c.messages.create(model=MODEL, max_tokens=100, messages=USER)
                except anthropic.APIStatusError:
                    pass
            outcomes.append([e["status"] for e in api_entries(server)])
    assert outcomes[0] == outcomes[1]
    assert {500, 429, 200} <= set(outcomes[0])


# ----- concurrency ---------------------------------------------------------------------------------


def _burst(fake: FakeAnthropic, n: int, max_retries: int = 0) -> list:
    async def run():
        async with anthropic.AsyncAnthropic(base_url=fake.base_url, api_key=KEY, max_retries=max_retries) as c:
            calls = [c.messages.create(model=MODEL, max_tokens=100, messages=USER) for _ in range(n)]
            return await asyncio.gather(*calls, return_exceptions=True)

    return asyncio.run(run())


def test_concurrency_cap_rejects_beyond_k(fake):
    fake.configure(concurrency_limit=3, latency_ms=300)
    results = _burst(fake, 8)
    ok = [r for r in results if isinstance(r, anthropic.types.Message)]
    rejected = [r for r in results if isinstance(r, anthropic.RateLimitError)]
    assert len(ok) == 3 and len(rejected) == 5
    assert all(r.response.headers["retry-after"] for r in rejected)
    assert fake.stats()["max_active_seen"] == 3 and fake.max_concurrency_seen > 3
    assert sum(e["fault"] == "concurrency_reject" for e in api_entries(fake)) == 5


def test_concurrency_cap_queue_mode_waits(fake):
    fake.configure(concurrency_limit=2, concurrency_mode="queue", latency_ms=50)
    results = _burst(fake, 6)
    assert all(isinstance(r, anthropic.types.Message) for r in results)
    assert fake.stats()["max_active_seen"] == 2


def test_serves_at_least_64_concurrent_connections(fake):
    fake.configure(latency_ms=300)
    results = _burst(fake, 80)
    assert all(isinstance(r, anthropic.types.Message) for r in results), results
    assert fake.max_concurrency_seen >= 64  # measured by the server: no wall-clock bound (it fails on a busy machine)


# ----- batches -------------------------------------------------------------------------------------


def _batch_requests(n: int) -> list[dict]:
    return [
        {"custom_id": f"task-{i}", "params": {"model": MODEL, "max_tokens": 100, "messages": USER}} for i in range(n)
    ]


def test_batch_lifecycle_with_errored_and_expired_entries(fake):
    fake.configure(batch_complete_after_polls=3, batch_errored_fraction=0.2, batch_expired_fraction=0.1)
    c = client(fake)
    batch = c.messages.batches.create(requests=_batch_requests(10))
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 10
    assert batch.results_url is None

    polls = [c.messages.batches.retrieve(batch.id).processing_status for _ in range(3)]
    assert polls == ["in_progress", "in_progress", "ended"]
    ended = c.messages.batches.retrieve(batch.id)
    assert ended.results_url == f"{fake.base_url}/v1/messages/batches/{batch.id}/results"
    counts = ended.request_counts
    assert (counts.succeeded, counts.errored, counts.expired, counts.processing) == (7, 2, 1, 0)

    results = list(c.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in results) == [f"task-{i}" for i in range(10)]
    by_type: dict[str, list] = {}
    for r in results:
        by_type.setdefault(r.result.type, []).append(r)
    assert {k: len(v) for k, v in by_type.items()} == {"succeeded": 7, "errored": 2, "expired": 1}
    assert by_type["succeeded"][0].result.message.content[0].text
    assert by_type["errored"][0].result.error.error.type == "api_error"
    results_entry = fake.requests(path=f"/v1/messages/batches/{batch.id}/results")
    assert len(results_entry) == 1 and results_entry[0]["status"] == 200

    listed = c.messages.batches.list(limit=10)
    assert [b.id for b in listed.data] == [batch.id]


def test_batch_cancel_and_time_based_completion(fake):
    fake.configure(batch_complete_after_polls=None, batch_complete_after_seconds=0.2)
    c = client(fake)
    slow = c.messages.batches.create(requests=_batch_requests(3))
    assert c.messages.batches.retrieve(slow.id).processing_status == "in_progress"
    canceled = c.messages.batches.cancel(c.messages.batches.create(requests=_batch_requests(2)).id)
    assert canceled.processing_status == "canceling" and canceled.cancel_initiated_at is not None

    after_cancel = c.messages.batches.retrieve(canceled.id)
    assert after_cancel.processing_status == "ended" and after_cancel.request_counts.canceled == 2
    assert {r.result.type for r in c.messages.batches.results(canceled.id)} == {"canceled"}

    time.sleep(0.25)
    assert c.messages.batches.retrieve(slow.id).processing_status == "ended"
    assert [b.id for b in c.messages.batches.list()] == [canceled.id, slow.id]


def test_open_batches_end_on_the_next_poll_when_told(fake):
    fake.configure(batch_complete_after_polls=None, batch_complete_after_seconds=None)
    c = client(fake)
    open_batch = c.messages.batches.create(requests=_batch_requests(2))
    assert [c.messages.batches.retrieve(open_batch.id).processing_status for _ in range(3)] == ["in_progress"] * 3
    fake.end_open_batches_on_next_poll()
    later = c.messages.batches.create(requests=_batch_requests(1))  # created afterwards: its own settings
    assert c.messages.batches.retrieve(open_batch.id).processing_status == "ended"
    assert c.messages.batches.retrieve(later.id).processing_status == "in_progress"


# ----- control over HTTP and subprocess mode -------------------------------------------------------


def _http(url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_subprocess_mode_prints_url_and_is_controlled_over_http(tmp_path):
    config = {"api_key": KEY, "responder": "oot", "oot": {"seed": 1}}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_anthropic", "--port", "0", "--config", json.dumps(config)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        _http(base_url + "/_fake/config", {"faults": ["529"], "retry_after": 0.01})
        c = anthropic.Anthropic(base_url=base_url, api_key=KEY, max_retries=2)
        topics = "<topic>collision</topic>"
        reply = c.messages.create(
            model=MODEL, max_tokens=8000, messages=[{"role": "user", "content": GEN_PROMPT.format(
                etype="code_explanation", n=1, topics=topics)}],
            output_config={"format": {"type": "json_schema", "schema": load_schema("generation_reply")}},
        )  # fmt: skip
        assert json.loads(reply.content[0].text)["examples"][0]["topic"] == "collision"

        log = _http(base_url + "/_fake/log")
        assert [e["status"] for e in log["requests"]] == [529, 200]
        assert log["counts"] == {"/v1/messages": 2} and log["max_concurrency_seen"] == 1
        _http(base_url + "/_fake/reset", {})
        assert _http(base_url + "/_fake/log")["requests"] == []
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_oot_responder_writes_about_the_topics_the_prompt_gives_with_their_attributes():
    """ootgen's generate template writes `<topic index=".." level="..">`: the fake answers on those topics, not on
    its fallback ones."""
    prompt = ("<example_type>code_explanation</example_type>\n<examples_wanted>2</examples_wanted>\n<topics>\n"
              '<topic index="1" level="beginner">switch flags</topic>\n<topic index="2" level="advanced">the lens of truth</topic>\n'
              "</topics>\n")
    examples = OotResponder(bad_fraction=0.0, seed=1).generate(prompt)["examples"]
    assert [e["topic"] for e in examples] == ["switch flags", "the lens of truth"]
