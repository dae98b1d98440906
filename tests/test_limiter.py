"""The adaptive limiter and the HTTP counts, driven by real 429/529 answers and rate-limit headers from the
fake API through the real SDK. Concurrency is measured where the server sees it (the fake's request log)."""

from __future__ import annotations

import asyncio

import pytest

from ootgen.generate import AdaptiveLimiter, ClaudeClient, Request
from tests.fake_anthropic import FakeAnthropic, Fault

KEY = "test-key"
REQUEST = Request(kind="generate", model="claude-sonnet-5", system="You are terse.", user="Say hello.",
                  max_tokens=50, schema_name="generation_reply", structured=False)


@pytest.fixture
def fake():
    with FakeAnthropic(api_key=KEY, latency_ms=60) as server:
        yield server


def _calls(fake: FakeAnthropic) -> list[dict]:
    return fake.requests(path="/v1/messages")


async def _run(client: ClaudeClient, n: int) -> None:
    await asyncio.gather(*(client.call(REQUEST) for _ in range(n)))


def _with_client(fake: FakeAnthropic, maximum: int, scenario, max_retries: int = 4):
    limiter = AdaptiveLimiter(maximum)

    async def main():
        client = ClaudeClient(KEY, limiter=limiter, base_url=fake.base_url, max_retries=max_retries)
        try:
            await scenario(client, limiter)
        finally:
            await client.close()
        return client

    return asyncio.run(main())


def test_one_request_until_the_api_has_answered_then_the_full_limit(fake):
    async def scenario(client, limiter):
        await _run(client, 8)

    client = _with_client(fake, 4, scenario)
    calls = _calls(fake)
    first = calls[0]
    assert first["in_flight_at_arrival"] == 1
    assert all(c["start"] >= first["end"] for c in calls[1:]), "a request left before the first answer"
    assert max(c["in_flight_at_arrival"] for c in calls) == 4 == fake.max_concurrency_seen
    assert client.http.peak_concurrency == fake.max_concurrency_seen
    assert client.http.attempts == len(calls) == 8 and client.http.retries == 0 and client.http.faults == {}


@pytest.mark.parametrize("kind,counted", [("rate_limit", "rate_limited_429"), ("overloaded", "overloaded_529")])
def test_throttle_halves_the_limit_pauses_for_retry_after_and_grows_back(fake, kind, counted):
    pause = 0.4

    async def scenario(client, limiter):
        await _run(client, 1)  # proven: the limit opens to the maximum
        fake.add_faults(Fault(kind, retry_after=pause))
        await _run(client, 16)
        assert limiter.limit < limiter.maximum  # still below: it grows one slot per window of successes
        for _ in range(12):
            await _run(client, limiter.maximum)
        assert limiter.limit == limiter.maximum

    client = _with_client(fake, 8, scenario)
    calls = _calls(fake)
    throttled = next(c for c in calls if c["status"] in (429, 529))
    # calls[1:9] are the first wave, sent before the throttle (the limit was 8); everything after had to wait
    # for a slot, so none of it may leave during the retry-after pause.
    later = [c for c in calls[9:] if c["start"] > throttled["end"]]
    # retry-after holds back every call, not only the SDK's retry of the throttled one.
    # A call woken by a slot released just before the client read the throttle may still leave (the limiter
    # can only react once it has seen the 429/529): at most a couple under load, never the rest.
    assert later and sum(c["start"] < throttled["end"] + pause * 0.95 for c in later) <= 2
    # Right after the pause at most half the slots are used ...
    assert max(c["in_flight_at_arrival"] for c in later[:6]) <= 4
    # ... and once the limit has grown back, the server sees the full concurrency again.
    assert max(c["in_flight_at_arrival"] for c in later[-16:]) == 8
    assert client.http.faults == {counted: 1}
    assert client.http.retries == sum(1 for c in calls if c["retry_count"] not in (None, "0")) == 1
    assert client.http.attempts == len(calls)


def test_requests_remaining_zero_shrinks_the_limit(fake):
    fake.configure(ratelimit_requests_limit=1)  # anthropic-ratelimit-requests-remaining: 0 while one is open

    async def scenario(client, limiter):
        await _run(client, 1)
        assert limiter.limit == 4
        for _ in range(4):
            await _run(client, 4)
        assert limiter.limit == 1

    _with_client(fake, 4, scenario)
    calls = _calls(fake)
    assert max(c["in_flight_at_arrival"] for c in calls[-4:]) == 1


def test_a_dropped_connection_is_counted_and_retried_by_the_sdk(fake):
    fake.add_faults("drop")

    async def scenario(client, limiter):
        await _run(client, 1)

    client = _with_client(fake, 2, scenario)
    assert [c["status"] for c in _calls(fake)] == ["dropped", 200]
    assert client.http.faults == {"connection": 1} and client.http.retries == 1 and client.http.attempts == 2
    assert client.http.in_flight == 0
