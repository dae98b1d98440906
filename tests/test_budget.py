"""The budget under `--max-cost`: reservations settle to exactly zero, max_tokens is lowered near the cap down to a
floor learned from the run's replies, judging comes before generating, and a call stops only when even its floor
cannot fit with nothing in flight."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from ootgen.budget import Budget, BudgetStop, OutputFloors, WorstCase
from ootgen.generate import Request

# $0.01 of input plus $10 per million output tokens: max_tokens 12,000 is a $0.13 worst case.
CALL = WorstCase(0.01, 10.0 / 1_000_000)
GENERATE = Request(kind="generate", model="claude-sonnet-5", system="s", user="u", max_tokens=12_000,
                   schema_name="generation_reply", structured=True)
JUDGE = replace(GENERATE, kind="judge", max_tokens=3_000, schema_name="judge_reply")


def fixed(amount: float) -> WorstCase:
    """A call whose worst case does not depend on its max_tokens."""
    return WorstCase(amount, 0.0)


def floors(generate: int | None = None, judge: int | None = None) -> OutputFloors:
    """Floors as if the longest replies seen were `generate` / `judge` output tokens (floor: that x 1.25)."""
    seen = {("generate", GENERATE.model): generate, ("judge", JUDGE.model): judge}
    return OutputFloors({key: value for key, value in seen.items() if value is not None})


def test_settled_reservations_leave_nothing_reserved_despite_float_rounding():
    budget = Budget(cap=1.0)
    amounts = [0.1, 0.2, 0.0123456789]
    for amount in amounts:
        assert budget.reserve_now(amount)
    assert 0.1 + 0.2 - 0.1 - 0.2 != 0.0  # the rounding the budget must not trip over
    for amount in amounts:
        budget.release_now(amount, 0.0)
    assert budget.reserved == 0.0


def test_a_call_that_cannot_fit_with_nothing_in_flight_stops_instead_of_waiting():
    async def scenario() -> None:
        budget = Budget(cap=0.5)
        first, _ = await budget.reserve(fixed(0.1), GENERATE)
        second, _ = await budget.reserve(fixed(0.2), GENERATE)
        await budget.settle(first, 0.05)
        await budget.settle(second, 0.05)  # leaves 0.1 + 0.2 - 0.1 - 0.2 = 2.8e-17 reserved without the snap to zero
        with pytest.raises(BudgetStop):
            await budget.reserve(fixed(0.45), GENERATE)  # 0.1 spent + 0.45 > 0.5, and nothing is in flight

    asyncio.run(scenario())


def test_far_from_the_cap_a_call_keeps_its_configured_max_tokens():
    async def scenario() -> None:
        amount, tokens = await Budget(cap=10.0, floors=floors(generate=1_600)).reserve(CALL, GENERATE)
        assert tokens == 12_000 and amount == pytest.approx(0.13)
        assert (await Budget(cap=None).reserve(CALL, GENERATE))[1] == 12_000

    asyncio.run(scenario())


def test_near_the_cap_max_tokens_is_lowered_to_what_the_money_left_affords():
    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.45, floors=floors(generate=1_600))  # $0.05 left: input + 4,000 tokens
        amount, tokens = await budget.reserve(CALL, GENERATE)
        assert tokens == 4_000 and amount == pytest.approx(0.05)
        assert budget.spent + budget.reserved <= budget.cap

    asyncio.run(scenario())


def test_until_a_reply_is_seen_the_floor_is_the_configured_max_tokens():
    async def scenario() -> None:
        with pytest.raises(BudgetStop):  # $0.05 left would afford 4,000 tokens, but nothing lower is known to be safe
            await Budget(cap=0.5, spent=0.45).reserve(CALL, GENERATE)

    asyncio.run(scenario())


def test_below_its_floor_a_call_waits_for_the_calls_in_flight_and_stops_when_none_is_left():
    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.3, floors=floors(generate=6_400))  # floor 8,000 tokens: $0.09
        first, tokens = await budget.reserve(CALL, GENERATE)
        assert tokens == 12_000  # $0.13 of the $0.20 left
        waiting = asyncio.create_task(budget.reserve(CALL, GENERATE))
        await asyncio.sleep(0)
        assert not waiting.done()  # $0.07 left: under the floor, so concurrency drops to one
        await budget.settle(first, 0.12, GENERATE, 6_000)  # $0.08 left: still under the floor, nothing in flight
        with pytest.raises(BudgetStop):
            await waiting
        assert budget.exhausted and budget.reserved == 0.0 and budget.spent == pytest.approx(0.42)

    asyncio.run(scenario())


def test_a_waiting_call_goes_as_soon_as_a_settled_call_leaves_room_for_its_floor():
    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.3, floors=floors(generate=6_400))
        first, _ = await budget.reserve(CALL, GENERATE)
        waiting = asyncio.create_task(budget.reserve(CALL, GENERATE))
        await asyncio.sleep(0)
        assert not waiting.done()
        await budget.settle(first, 0.1, GENERATE, 5_000)  # $0.10 left: input + 9,000 tokens
        assert (await waiting)[1] == 9_000

    asyncio.run(scenario())


def test_a_reply_longer_than_the_floor_raises_it_for_the_calls_still_waiting():
    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.3, floors=floors(generate=5_600))  # floor 7,000 tokens: $0.08
        first, _ = await budget.reserve(CALL, GENERATE)
        waiting = asyncio.create_task(budget.reserve(CALL, GENERATE))
        await asyncio.sleep(0)
        assert not waiting.done()  # $0.07 left
        await budget.settle(first, 0.1, GENERATE, 8_000)  # $0.10 left affords 9,000, but the floor is now 10,000
        with pytest.raises(BudgetStop):
            await waiting

    asyncio.run(scenario())


def test_a_judge_call_waiting_for_money_goes_before_a_generation_call():
    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.2, floors=floors(generate=1_600, judge=800))  # floors: 2,000 and 1,000
        first, _ = await budget.reserve(fixed(0.25), GENERATE)
        judge = asyncio.create_task(budget.reserve(fixed(0.1), JUDGE))  # does not fit beside the first call
        await asyncio.sleep(0)
        generate = asyncio.create_task(budget.reserve(CALL, GENERATE))  # $0.05 left: it would fit, but waits
        await asyncio.sleep(0)
        assert not judge.done() and not generate.done()
        await budget.settle(first, 0.15, GENERATE, 1_000)  # $0.15 left: the judge first, then the generation
        assert (await judge)[0] == pytest.approx(0.1)
        assert (await generate)[1] == 4_000  # what the judge left: $0.05

    asyncio.run(scenario())


def test_a_generation_call_goes_only_if_judging_its_candidates_still_fits_after_its_likely_cost():
    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.3, floors=floors(generate=1_600, judge=800), judge_calls_per_generation=2)
        amount, _ = await budget.reserve(fixed(0.02), JUDGE)
        await budget.settle(amount, 0.02, JUDGE, 500)  # a judge call costs $0.02 (its worst case): likely $0.02
        amount, tokens = await budget.reserve(CALL, GENERATE)  # nothing paid for a generation yet: likely = its worst
        assert tokens == 12_000  # at the floor ($0.03), which leaves $0.15 > 2 x $0.02 for judging
        await budget.settle(amount, 0.04, GENERATE, 1_000)  # a generation costs $0.04: likely $0.05 from now on
        for _ in range(2):  # its candidates judged: $0.04, nothing owed
            amount, _ = await budget.reserve(fixed(0.02), JUDGE)
            await budget.settle(amount, 0.02, JUDGE, 500)
        amount, tokens = await budget.reserve(CALL, GENERATE)  # $0.10 left: $0.05 + $0.04 fit, lowered to $0.10
        assert tokens == 9_000
        await budget.settle(amount, 0.04, GENERATE, 1_000)  # $0.06 left: the generation's worst case at its floor
        with pytest.raises(BudgetStop):  # would fit ($0.03), but its candidates could not be judged after it
            await budget.reserve(CALL, GENERATE)
        assert (await budget.reserve(fixed(0.02), JUDGE))[0] == pytest.approx(0.02)  # judging still goes

    asyncio.run(scenario())


def test_a_generation_leaves_room_for_the_judging_owed_to_the_generations_sent_before_it():
    """Concurrent generations must not each count the same money as their judging room (an e2e run under a cap
    left paid-for candidates unjudged when they did)."""

    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.3, floors=floors(generate=1_600, judge=800), judge_calls_per_generation=2)
        amount, _ = await budget.reserve(fixed(0.02), JUDGE)
        await budget.settle(amount, 0.02, JUDGE, 500)
        first, _ = await budget.reserve(CALL, GENERATE)  # in flight, its two judge calls owed
        await budget.settle(first, 0.04, GENERATE, 1_000)  # $0.14 left
        assert budget.judge_calls_owed == 2
        second, _ = await budget.reserve(CALL, GENERATE)  # $0.14 - $0.05 = $0.09 >= (2 owed + 2) x $0.02: goes
        await budget.settle(second, 0.04, GENERATE, 1_000)  # $0.10 left, 4 judge calls owed ($0.08)
        with pytest.raises(BudgetStop):  # $0.10 - $0.05 < (4 + 2) x $0.02: counting only its own judging, it would go
            await budget.reserve(CALL, GENERATE)
        for _ in range(4):  # the owed judging fits: every candidate paid for is judged
            amount, _ = await budget.reserve(fixed(0.02), JUDGE)
            await budget.settle(amount, 0.02, JUDGE, 500)
        assert budget.judge_calls_owed == 0 and budget.spent == pytest.approx(0.48)

    asyncio.run(scenario())


def test_floor_is_the_configured_max_tokens_until_a_reply_is_seen_then_the_longest_reply_plus_a_quarter():
    learned = OutputFloors()
    assert learned.floor(GENERATE) == 12_000 and learned.floor(JUDGE) == 3_000
    for tokens in (2_000, 3_200, 900):
        learned.observe(GENERATE, tokens)
    assert learned.floor(GENERATE) == 4_000  # 3,200 x 1.25
    assert learned.floor(JUDGE) == 3_000  # per call kind
    learned.observe(JUDGE, 2_900)
    assert learned.floor(JUDGE) == 3_000  # never above the configured max_tokens
    assert floors(generate=1_000).floor(GENERATE) == 1_250  # what an earlier session's stored replies showed


def test_a_generation_floor_and_its_likely_cost_scale_with_the_candidates_it_asks_for():
    """Near the cap a call asking for fewer candidates must be judged by what that many cost: a 3-slot reply of
    3,000 tokens is 1,000 a slot, so a 1-slot call's floor is 1,250, not the 3-slot call's 3,750."""
    one, three = replace(GENERATE, slots=1), replace(GENERATE, slots=3)
    learned = OutputFloors()
    learned.observe(three, 3_000)
    assert learned.floor(three) == 3_750 and learned.floor(one) == 1_250

    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.38, floors=learned, judge_calls_per_generation=1)
        amount, _ = await budget.reserve(fixed(0.01), JUDGE)
        await budget.settle(amount, 0.01, JUDGE, 500)
        amount, _ = await budget.reserve(CALL, three)
        await budget.settle(amount, 0.045, three, 3_000, 0.03)  # $0.015 input, $0.01 of output a candidate
        amount, _ = await budget.reserve(fixed(0.01), JUDGE)  # its candidates judged: nothing owed
        await budget.settle(amount, 0.01, JUDGE, 500)
        assert budget.left() == pytest.approx(0.055)
        # A 1-candidate call likely costs the same input and a third of the output (+25 %), not a third of the call.
        assert budget.likely_cost("generate", 1.0, 1.0, slots=1) == pytest.approx((0.015 + 0.01) * 1.25)
        with pytest.raises(BudgetStop):  # its floor fits, but after its likely cost ($0.055) no judge call would
            await budget.reserve(CALL, three)
        amount, tokens = await budget.reserve(CALL, one)  # $0.055 - $0.031 >= $0.01 for its judge call: goes
        assert tokens >= 1_250 and budget.spent + amount <= budget.cap

    asyncio.run(scenario())


def test_a_generation_on_a_cold_cache_prefix_counts_its_input_at_the_cache_write_price():
    """The mean input cost is mostly cache reads; a generation on a context no reply has written to the cache
    yet pays for the write. Counting it at the mean left a capped bench run with 2 candidates it could not judge."""

    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.38, floors=floors(generate=1_600, judge=800), judge_calls_per_generation=2)
        amount, _ = await budget.reserve(fixed(0.01), JUDGE)
        await budget.settle(amount, 0.01, JUDGE, 500)
        amount, _ = await budget.reserve(CALL, GENERATE)
        await budget.settle(amount, 0.02, GENERATE, 1_000, 0.01)  # input $0.01 (cached), output $0.01
        for _ in range(2):
            amount, _ = await budget.reserve(fixed(0.01), JUDGE)
            await budget.settle(amount, 0.01, JUDGE, 500)
        assert budget.left() == pytest.approx(0.07) and budget.judge_calls_owed == 0
        input_worst = WorstCase(0.04, CALL.per_output_token)  # $0.04 if every input token is a cache write
        with pytest.raises(BudgetStop):  # cold: $0.07 - ($0.04 + $0.0125) < $0.0225 for its two judge calls
            await budget.reserve(input_worst, replace(GENERATE, system="another context"))
        await budget.reserve(input_worst, GENERATE)  # warm: $0.07 - ($0.0125 + $0.0125) leaves room: goes

    asyncio.run(scenario())


def test_a_resumed_run_learns_its_floors_per_candidate_from_the_stored_replies(tmp_path):
    from ootgen.models import Usage
    from ootgen.records import Example
    from ootgen.store import PENDING, RunStore

    store = RunStore.open_run_dir(tmp_path)
    for task_idx, kind, slots, output_tokens in ((0, "generate", 3, 3_000), (1, "generate", 1, 1_500), (None, "judge", 0, 2_000)):
        row = dict(key=f"k{task_idx}", kind=kind, model="m", task_idx=task_idx, text="{}", stop_reason="end_turn",
                   usage=Usage(output_tokens=output_tokens), cost=0.0, batch=False, valid=True, error=None, from_cache=False)
        if task_idx is None:
            store.save_response(**row)
            continue
        store.commit_generation(row, [{"task_idx": task_idx, "slot": slot, "context": "c", "complexity": "beginner",
                                       "example": Example(instruction=f"q{task_idx}-{slot}", output="a", type="t"),
                                       "findings": [], "status": PENDING} for slot in range(slots)], task_idx)
    assert store.longest_outputs() == {("generate", "m"): 1_500, ("judge", "m"): 2_000}  # 3,000 over 3 is 1,000 a slot
    store.close()


def test_the_room_left_for_judging_counts_a_judge_call_at_its_worst_case_at_the_floor_not_at_its_cached_cost():
    """A judge call reserves its worst case at the floor (every input token written to the cache), though with
    the context cached it costs much less. Counting all owed judging at the cheap cost let a generation go whose
    candidates could then not be judged: a capped e2e run ended with paid-for candidates pending. Judge calls
    waiting for money go one at a time, so the room is one worst case at the floor plus the rest's likely cost."""

    async def scenario() -> None:
        budget = Budget(cap=0.5, spent=0.38, floors=floors(generate=1_600, judge=800), judge_calls_per_generation=1)
        amount, _ = await budget.reserve(fixed(0.05), JUDGE)  # worst case at its floor: $0.05
        await budget.settle(amount, 0.01, JUDGE, 500)  # paid $0.01 (cache reads): likely $0.0125
        assert budget.left() == pytest.approx(0.11)
        amount, _ = await budget.reserve(CALL, GENERATE)  # $0.11 - $0.03 likely = $0.08 >= $0.05: goes
        await budget.settle(amount, 0.03, GENERATE, 1_000)
        with pytest.raises(BudgetStop):  # $0.08 - $0.03 = $0.05 < $0.0125 + $0.05 for 2 calls (it was >= 2 x $0.0125)
            await budget.reserve(CALL, GENERATE)
        amount, _ = await budget.reserve(fixed(0.05), JUDGE)  # the owed judging still fits at its floor
        await budget.settle(amount, 0.01, JUDGE, 500)
        assert budget.judge_calls_owed == 0

    asyncio.run(scenario())
