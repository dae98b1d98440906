"""Unit tests of the run loop's pieces: budget reservations, the cross-judge combination rules and reply parsing."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from dataclasses import dataclass

import pytest

from ootgen.budget import Budget, BudgetStop, WorstCase
from ootgen.generate import Request, parse_reply
from ootgen.models import ModelInfo, Usage
from ootgen.pipeline import combine
from ootgen.store import ACCEPTED, REJECTED

SONNET = ModelInfo(id="claude-sonnet-5", known=True, input_per_mtok=2.0, output_per_mtok=10.0,
                   cache_write_per_mtok=2.5, cache_read_per_mtok=0.2, batch_multiplier=0.5)
UNPRICED = ModelInfo(id="claude-next", known=False)
REQUEST = Request(kind="generate", model=SONNET.id, system="s" * 3996, user="", max_tokens=1000,
                  schema_name="judge_reply", structured=True)

# --- budget -------------------------------------------------------------------------------------------


def test_worst_case_prices_every_input_token_as_a_cache_write_and_every_output_token():
    tokens_in = REQUEST.estimated_input_tokens()
    assert tokens_in == 3996 // 3.3 + 1 + 16  # ceil(3996 / 3.3) + 16
    assert Budget.worst_case(REQUEST, SONNET).at(1000) == pytest.approx((tokens_in * 2.5 + 1000 * 10.0) / 1e6)
    assert Budget.worst_case(REQUEST, SONNET, batch=True).at(1000) == pytest.approx(Budget.worst_case(REQUEST, SONNET).at(1000) * 0.5)
    assert Budget.worst_case(REQUEST, SONNET, input_tokens=2000).at(1000) == pytest.approx((2000 * 2.5 + 1000 * 10.0) / 1e6)
    assert Budget.worst_case(REQUEST, UNPRICED).at(1000) == 0.0


FIXED = WorstCase(0.6, 0.0)  # a call whose worst case does not depend on its max_tokens (REQUEST's floor: all of it)


def test_a_call_that_does_not_fit_waits_for_calls_in_flight_instead_of_stopping():
    async def scenario():
        budget = Budget(1.0)
        await budget.reserve(FIXED, REQUEST)
        waiting = asyncio.create_task(budget.reserve(FIXED, REQUEST))
        await asyncio.sleep(0)
        assert not waiting.done() and budget.reserved == pytest.approx(0.6)  # concurrency dropped to one
        await budget.settle(0.6, cost=0.1)  # the first call cost far less than its worst case
        await waiting
        assert budget.reserved == pytest.approx(0.6) and budget.spent == pytest.approx(0.1)
        assert not budget.exhausted

    asyncio.run(scenario())


def test_it_stops_only_when_one_more_worst_case_cannot_fit_with_nothing_in_flight():
    async def scenario():
        budget = Budget(1.0)
        await budget.reserve(FIXED, REQUEST)
        waiting = asyncio.create_task(budget.reserve(FIXED, REQUEST))
        await asyncio.sleep(0)
        await budget.settle(0.6, cost=0.5)  # 0.5 spent: 0.6 more can never fit
        with pytest.raises(BudgetStop):
            await waiting
        assert budget.exhausted and budget.reserved == 0.0

    asyncio.run(scenario())


def test_no_cap_never_waits_and_batches_reserve_whole():
    budget = Budget(None)
    assert budget.reserve_now(10**6) and budget.left() is None
    capped = Budget(1.0, spent=0.7)
    assert not capped.reserve_now(0.4) and capped.exhausted
    assert capped.reserve_now(0.3) and capped.left() == pytest.approx(0.0)


# --- judge combination ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Breakdown:
    score: float
    accepted: bool
    rejection: str | None = None  # e.g. the technical-accuracy floor


@pytest.mark.parametrize("rule,scores,expected", [
    ("mean", [(8.0, True), (5.0, False)], (True, 6.5)),
    ("mean", [(7.0, True), (4.0, False)], (False, 5.5)),
    ("all", [(8.0, True), (5.0, False)], (False, 5.0)),
    ("all", [(8.0, True), (7.0, True)], (True, 7.0)),
    ("majority", [(8.0, True), (5.0, False)], (False, 6.5)),  # one of two is not a majority
    ("majority", [(8.0, True), (7.0, True), (2.0, False)], (True, pytest.approx(17 / 3))),
])
def test_cross_validation_rules(rule, scores, expected):
    assert combine(rule, [_Breakdown(s, a) for s, a in scores], 6.0) == expected


def test_a_static_error_rejects_under_the_mean_rule_whatever_the_scores():
    # Scored above the threshold yet not accepted: a static L1 error that no judge may outvote.
    accepted, score = combine("mean", [_Breakdown(9.0, True), _Breakdown(8.0, False)], 6.0)
    assert not accepted and score == pytest.approx(8.5)


# --- reply parsing --------------------------------------------------------------------------------

_VERDICT = {"index": 1, "technical_accuracy": 9, "technical_issues": [], "uses_correct_terminology": True,
            "usefulness": {"clarity": 9, "completeness": 8, "practical_value": 8, "level_of_detail": 8, "teaching_value": 9},
            "summary": "fine"}
_GOOD = json.dumps({"verdicts": [_VERDICT]})


@pytest.mark.parametrize("text,stop,error", [
    (_GOOD, "end_turn", None),
    (f"Here it is:\n```json\n{_GOOD}\n```\n", "end_turn", None),
    (f"Sure. {_GOOD} Hope that helps.", "end_turn", None),
    (_GOOD[:40], "max_tokens", "truncated: stop_reason max_tokens"),
    ("", "refusal", "refused by the model"),
    ("{not json", "end_turn", "malformed JSON"),
    (json.dumps({"verdicts": [{**_VERDICT, "technical_accuracy": 11}]}), "end_turn", "reply does not match judge_reply at verdicts/0/technical_accuracy"),
    (json.dumps({"verdicts": [_VERDICT], "extra": 1}), "end_turn", "reply does not match judge_reply at (top)"),
])
def test_parse_reply_never_raises_and_says_why(text, stop, error):
    reply = parse_reply(REQUEST, text, stop, Usage(1, 1))
    if error is None:
        assert reply.error is None and reply.data == {"verdicts": [_VERDICT]}
    else:
        assert reply.data is None and reply.error.startswith(error), reply.error


def test_a_judge_reply_missing_a_verdict_is_unusable_so_it_is_re_asked():
    judge = Request(kind="judge", model=SONNET.id, system="s", user="u", max_tokens=100, schema_name="judge_reply",
                    structured=True, items=2)
    missing = parse_reply(judge, _GOOD, "end_turn", Usage(1, 1))
    assert missing.data is None and missing.error == "judge reply has verdicts for candidates [1], not 1..2"
    both = json.dumps({"verdicts": [_VERDICT, {**_VERDICT, "index": 2}]})
    assert parse_reply(judge, both, "end_turn", Usage(1, 1)).data is not None
    assert judge.key != Request(**{**judge.__dict__, "items": 3}).key
    # The wire schema says how many verdicts only where the API supports it; the count is checked locally.
    from ootgen.generate import reply_schema

    assert reply_schema("judge_reply", 2)["properties"]["verdicts"]["maxItems"] == 2
    assert "maxItems" not in reply_schema("judge_reply")["properties"]["verdicts"]  # the shared schema is untouched


# --- the mix on accepted examples ---------------------------------------------------------------


def test_type_quotas_split_the_target_by_weight_with_largest_remainders():
    from ootgen.plan import type_quotas

    mix = {"code_explanation": 1.0, "feature_implementation": 1.0, "debugging_help": 1.0,
           "architecture_question": 1.0, "conversational": 0.8, "code_modification": 1.0}
    for n in (1, 7, 20, 50, 200):
        quotas = type_quotas(mix, n)
        assert sum(quotas.values()) == n
        assert all(abs(quotas[name] - n * w / 5.8) < 1 for name, w in mix.items())
    assert type_quotas({"a": 1.0, "b": 3.0}, 4) == {"a": 1, "b": 3}


# --- progress -------------------------------------------------------------------------------------------


def test_the_progress_bar_says_cost_unknown_instead_of_zero_dollars_for_an_unpriced_model():
    from ootgen.progress import LiveProgress

    usage = {"input_tokens": 10, "output_tokens": 5}
    for known_model, cost, shown in ((True, 0.125, "$0.12"), (False, None, "cost unknown"), (True, None, "cost unknown")):
        bar = LiveProgress()  # the last case: a priced generator, an unpriced judge
        bar("start", {"accepted": 0, "target": 4, "resuming": False, "spent": 0.0, "known_model": known_model})
        bar("call", {"kind": "judge", "usage": usage, "cost": cost, "spent": cost or 0.0})
        assert bar.cost_text() == shown and "$0.00" not in bar.progress.tasks[0].fields["stats"]
        bar.close()
# --- exact finish: per-type waves -------------------------------------------------------------------


def test_a_wave_asks_for_the_deficit_over_the_types_measured_rate_in_whole_calls():
    from ootgen.scheduler import MIN_ACCEPT_RATE, wave_size

    assert wave_size(3, 0, 0, 3) == 3  # the first wave: the quota itself, no surplus bought up front
    assert wave_size(4, 0, 0, 3) == 3  # ... in whole calls: the fourth joins the next wave's top-up
    assert wave_size(4, 3, 4, 3) == 1  # 1 missing at 75 %: round(1.33)
    assert wave_size(10, 4, 8, 3) == 12  # 6 missing at 50 %
    assert wave_size(10, 4, 8, 5) == 10  # 12, cut to two calls of 5
    assert wave_size(4, 0, 4, 1) == round(4 / MIN_ACCEPT_RATE)  # nothing accepted yet: the floor rate
    assert wave_size(4, 4, 9, 3) == 0 and wave_size(4, 5, 9, 3) == 0
    assert wave_size(3, 2, 2, 3) == 1  # every candidate accepted so far: ask for exactly the deficit
    assert wave_size(3, 2, 3, 3) == 1  # 1 missing at 2/3 is 1.5: a tie asks for the smaller wave (no surplus)
    assert wave_size(6, 1, 3, 20) == 15  # 5 missing at 1/3 is 15 exactly: nothing to round
    assert wave_size(5, 2, 3, 9) == 4  # 3 missing at 2/3 is 4.5: 4


def _verdict(task_idx: int, slot: int) -> str:
    """A stand-in judge: a fixed verdict per candidate, about 60 % accepted."""
    return ACCEPTED if (task_idx * 7 + slot * 3) % 5 < 3 else REJECTED


def _simulate(project, run_dir, order_seed: int | None, *, num: int, stop_after: int | None = None) -> dict:
    """Drive a QuotaPlanner as the run does, replies and verdicts arriving in an order drawn from `order_seed`
    (None: one at a time, oldest first). `stop_after` steps then stop, as a killed run does."""
    import random

    from ootgen.records import Example
    from ootgen.scheduler import QuotaPlanner, Targets
    from ootgen.store import PENDING, RunStore

    store = RunStore.open_run_dir(run_dir)
    planner = QuotaPlanner(project, store, Targets(num, 3, 3.0, 3))
    rng = random.Random(order_seed)
    sent, replies = [], []
    for step in itertools.count():
        if stop_after is not None and step >= stop_after:
            break
        planner.advance()
        while (task := planner.next()) is not None:
            sent.append((task.index, task.count))
            replies.append(task)
        pending = [c.id for c in store.candidates(PENDING)]
        if not replies and not pending:
            break
        if replies and (not pending or rng.random() < 0.5):
            task = replies.pop(rng.randrange(len(replies)) if order_seed is not None else 0)
            rows = [{"task_idx": task.index, "slot": slot, "context": task.context, "complexity": task.level(slot),
                     "example": Example(instruction=f"q{task.index}-{slot}", output="a", type=task.type),
                     "findings": [], "status": PENDING} for slot in range(task.count)]
            store.commit_generation(None, rows, task.index)
            planner.settled(task)
        else:
            group = store.candidates_by_ids(rng.sample(pending, min(2, len(pending))) if order_seed is not None else pending[:2])
            store.commit_judgement([], [dict(cid=c.id, status=_verdict(c.task_idx, c.slot), reason=None, verdict=None, score=None,
                                             breakdown=None) for c in group])
    accepted = Counter(c.example.type for c in store.candidates(ACCEPTED))
    return {"sent": sorted(sent), "accepted": accepted, "finished": planner.finished, "complete": planner.complete,
            "store": store}


@pytest.fixture
def quota_project(ready_loaded_project):
    return ready_loaded_project


def test_waves_send_the_same_tasks_whatever_order_replies_and_verdicts_arrive_in(quota_project, tmp_path):
    from ootgen.plan import type_quotas

    runs = [_simulate(quota_project, tmp_path / f"run{seed}", seed, num=20) for seed in (None, 1, 2, 3)]
    assert all(run["finished"] and run["complete"] for run in runs)
    assert all(run["sent"] == runs[0]["sent"] for run in runs)
    quotas = type_quotas(quota_project.mix, 20)
    surplus = [sum(run["accepted"].values()) - 20 for run in runs]
    assert all(run["accepted"][name] >= quota for run in runs for name, quota in quotas.items())
    assert surplus == [surplus[0]] * len(runs) and surplus[0] <= 3, surplus
    # Several waves were needed (the stand-in judge rejects ~40 %), and the last ones were small.
    assert len(runs[0]["sent"]) > len(quotas)


def test_a_resumed_planner_replays_the_waves_and_sends_the_rest(quota_project, tmp_path):
    whole = _simulate(quota_project, tmp_path / "whole", 5, num=20)
    _simulate(quota_project, tmp_path / "killed", 6, num=20, stop_after=25)
    resumed = _simulate(quota_project, tmp_path / "killed", 7, num=20)
    # Tasks the first session stored are not sent again; together the sessions sent exactly what one run sends.
    stored = sorted((row[0], row[1]) for row in resumed["store"].db.execute(
        "SELECT task_idx, COUNT(*) FROM candidates GROUP BY task_idx"))
    assert stored == whole["sent"] and resumed["complete"]


def test_export_takes_each_types_quota_in_plan_order_then_fills_a_shortfall(tmp_path):
    from ootgen.export import accepted_for_export
    from ootgen.records import Example
    from ootgen.store import RunStore

    store = RunStore.open_run_dir(tmp_path)
    store.set_meta("mix", {"a": 1.0, "b": 1.0})
    # Type a: 4 accepted (tasks 0, 2, 4, 6); type b: 1 accepted (task 1): b falls short of its quota.
    for index, kind in [(6, "a"), (0, "a"), (2, "a"), (1, "b"), (4, "a")]:
        store.commit_generation(None, [{"task_idx": index, "slot": 0, "context": "c", "complexity": "beginner", "findings": [],
                                        "example": Example(instruction=f"q{index}", output="o", type=kind), "status": ACCEPTED}], index)
    # (accepted at insertion, so no accepted_seq: order is by task then slot)
    picked = lambda target: [c.task_idx for c in accepted_for_export(store, target)]  # noqa: E731
    assert picked(2) == [0, 1]
    assert picked(4) == [0, 1, 2, 4]  # a's quota (2) and b's one in plan order, then a's next fills b's shortfall
    assert picked(10) == [0, 1, 2, 4, 6]  # everything: a's quota 5 covers all of a
    store.set_meta("mix", None)
    assert picked(3) == [0, 1, 2]  # a run from before quotas: plan order


def test_an_unknown_model_refusal_can_be_handed_to_every_waiting_call():
    """The limiter raises a copy of its refusal in each call that was waiting for a slot (generate.py)."""
    import copy

    from ootgen.errors import ModelNotFound

    refusal = ModelNotFound("claude-nope", "model 'claude-nope' was not found by the API")
    again = copy.copy(refusal)
    assert isinstance(again, ModelNotFound) and again.model == "claude-nope" and str(again) == str(refusal)


# --- sharing judge calls: top-ups on a shared context ------------------------------------------------


def test_a_part_filled_judge_group_waits_only_while_more_is_expected_for_its_context():
    from ootgen.scheduler import judge_groups

    pending = {"a": [1, 2, 3, 4], "b": [5, 6], "c": [7]}
    assert list(judge_groups(pending, 3, set())) == [("a", [1, 2, 3]), ("a", [4]), ("b", [5, 6]), ("c", [7])]
    # More is expected for a and c: their full group goes, their rest waits; b's rest goes now.
    assert list(judge_groups(pending, 3, {"a", "c"})) == [("a", [1, 2, 3]), ("b", [5, 6])]


def test_near_the_cap_a_generation_asks_for_fewer_candidates_until_one_fits(quota_project):
    from types import SimpleNamespace

    from ootgen.plan import type_streams
    from ootgen.scheduler import StreamScheduler

    task = next(type_streams(quota_project)["code_explanation"])
    assert task.count == 3
    asked: list = []

    def scheduler(fits: int) -> SimpleNamespace:
        async def ask_generation(sent):  # the budget: only a call of at most `fits` candidates fits
            asked.append(sent.count)
            if sent.count > fits:
                raise BudgetStop()
            return "answer"

        return SimpleNamespace(pipeline=SimpleNamespace(ask_generation=ask_generation))

    sent, answer = asyncio.run(StreamScheduler.ask_fitting(scheduler(1), task))  # type: ignore[arg-type]
    assert answer == "answer" and asked == [3, 2, 1]
    assert sent == task.cut(1) and sent.index == task.index and sent.topics == task.topics[:1]
    asked.clear()
    with pytest.raises(BudgetStop):  # not even one candidate fits: the run stops as before
        asyncio.run(StreamScheduler.ask_fitting(scheduler(0), task))  # type: ignore[arg-type]
    assert asked == [3, 2, 1]


def test_a_stream_builds_its_next_task_on_a_wanted_context_and_then_goes_on_as_planned(quota_project):
    from ootgen.plan import shared_contexts, type_streams

    planned = list(itertools.islice(type_streams(quota_project)["code_explanation"], 3))
    stream = type_streams(quota_project)["code_explanation"]
    wanted = next(c for c in shared_contexts(quota_project) if c != planned[0].context)
    moved = stream.take(wanted)
    assert moved.context == wanted and moved.index == planned[0].index
    topics = {t.topic for t in quota_project.contexts[wanted].topics_for(quota_project.types["code_explanation"].topic_type)}
    assert set(moved.topics) <= topics  # its topics are the wanted context's
    assert moved.complexity == planned[0].complexity or not quota_project.contexts[wanted].topics_for(
        quota_project.types["code_explanation"].topic_type, planned[0].complexity)
    assert [next(stream).index for _ in range(2)] == [t.index for t in planned[1:]]
    assert type_streams(quota_project)["code_explanation"].take("no_such_context").context == planned[0].context


def _answer_all(planner, store, status: str) -> list:
    """Hand out every task of the open waves and store its candidates with `status` (as judged); the tasks."""
    from ootgen.records import Example

    planner.advance()
    tasks = list(iter(planner.next, None))
    for task in tasks:
        store.commit_generation(None, [{"task_idx": task.index, "slot": slot, "context": task.context, "complexity": task.level(slot),
                                        "example": Example(instruction=f"q{task.index}-{slot}", output="a", type=task.type),
                                        "findings": [], "status": status} for slot in range(task.count)], task.index)
        planner.settled(task)
    return tasks


def test_every_types_top_up_of_a_wave_goes_to_that_waves_shared_context(quota_project, tmp_path):
    from ootgen.plan import shared_contexts
    from ootgen.scheduler import QuotaPlanner, Targets
    from ootgen.store import RunStore

    shared = shared_contexts(quota_project)
    store = RunStore.open_run_dir(tmp_path)
    planner = QuotaPlanner(quota_project, store, Targets(20, 3, 3.0, 3))  # quotas 4, 4, 3, 3, 3, 3
    first = _answer_all(planner, store, ACCEPTED)
    assert all(t.count == 3 for t in first) and len({t.context for t in first}) > 1  # the first wave keeps the plan
    top_ups = _answer_all(planner, store, ACCEPTED)
    # The two types with a quota of 4 ask for one more each, both on the shared context: one judge call for both.
    assert sorted((t.type, t.count) for t in top_ups) == [("architecture_question", 1), ("code_explanation", 1)]
    assert {t.context for t in top_ups} == {shared[0]}
    planner.advance()
    assert planner.finished and planner.complete


def test_a_response_body_cut_off_mid_way_is_no_longer_counted_as_open():
    """The SDK does not always close a body whose connection dropped mid-way: counted open for the rest of the run,
    each such drop raised the measured peak concurrency above what the server saw (tests/e2e/test_accounting)."""
    import httpx2

    from ootgen.generate import HttpCounts, _ClosingStream

    class Dropped(httpx2.AsyncByteStream):
        async def __aiter__(self):
            yield b"{"
            raise httpx2.ReadError("connection dropped")

    async def read(stream) -> None:
        with pytest.raises(httpx2.ReadError):
            async for _chunk in stream:
                pass

    counts = HttpCounts(in_flight=1)
    stream = _ClosingStream(Dropped(), counts)
    asyncio.run(read(stream))
    assert counts.in_flight == 0 and counts.faults == {"connection": 1}
    asyncio.run(stream.aclose())  # closed later all the same: counted once
    assert counts.in_flight == 0


def _streams_after(project, taken: int, snapshot_of: dict | None = None) -> dict:
    """Every type's stream, restored from `snapshot_of` (name -> snapshot) when given, else taken `taken` tasks
    into (every third one on a wanted context, as the waves' top-ups are)."""
    from ootgen.plan import shared_contexts, type_streams

    streams = type_streams(project)
    shared = shared_contexts(project)
    for name, stream in streams.items():
        if snapshot_of is not None:
            stream.restore_from = snapshot_of[name]
            continue
        for n in range(taken):
            stream.take(shared[n % len(shared)] if n % 3 == 2 else None)
    return streams


def test_a_stream_restored_from_its_snapshot_builds_the_same_next_tasks(quota_project):
    went_on = _streams_after(quota_project, 40)
    # Through JSON, as the store keeps it.
    snapshots = {name: json.loads(json.dumps(stream.snapshot())) for name, stream in went_on.items()}
    restored = _streams_after(quota_project, 0, snapshots)
    for name, stream in went_on.items():
        assert [restored[name].take("x" if n == 5 else None) for n in range(30)] == \
               [stream.take("x" if n == 5 else None) for n in range(30)], name


def test_a_resumed_planner_starts_at_the_last_wave_boundary_without_rebuilding_earlier_tasks(quota_project, tmp_path):
    from ootgen.scheduler import QuotaPlanner, Targets

    whole = _simulate(quota_project, tmp_path / "whole", 5, num=20)
    store = whole["store"]
    assert set(store.wave_snapshots()) == set(quota_project.mix)
    planner = QuotaPlanner(quota_project, store, Targets(20, 3, 3.0, 3))
    restored = {waves.name: waves.stream.restore_from["position"] for waves in planner.types}
    planner.advance()
    assert planner.finished and planner.complete
    # The finished run's streams continue from their stored positions and build no task at all.
    assert all(waves.stream.state is None or waves.stream.state.position == restored[waves.name] for waves in planner.types)
    # A larger target goes on from the stored waves: each type's next task is the one after its last stored one.
    bigger = QuotaPlanner(quota_project, store, Targets(30, 3, 3.0, 3))
    bigger.advance()
    last = dict(store.db.execute("SELECT type, MAX(idx) FROM tasks GROUP BY type").fetchall())
    firsts = {waves.name: min(t.index for t in waves.window) for waves in bigger.types if waves.window}
    assert firsts and all(index > last[name] for name, index in firsts.items())


def test_a_resume_restores_the_dedup_index_when_its_first_reply_is_checked_not_before(quota_project, tmp_path):
    from types import SimpleNamespace

    from ootgen.pipeline import CandidatePipeline
    from ootgen.plan import type_streams
    from ootgen.store import PENDING, REJECTED, RunStore

    store = RunStore.open_run_dir(tmp_path / "run")
    stream = type_streams(quota_project)["architecture_question"]
    reply = SimpleNamespace(data={"examples": [
        {"instruction": f"How does the {what} system of the game hand work between frames, step by step?",
         "output": f"The {what} system keeps its entries in a list that the play loop walks once per frame, in a fixed "
                   "order, calling each entry's update and then its draw function; entries added during a frame wait "
                   "for the next one, and removed ones are unlinked after the walk, so the list never changes while "
                   "it is walked."} for what in ("actor", "collision", "audio")]})
    first, later = next(stream), next(stream)
    rows = CandidatePipeline(quota_project, store, None, lambda *_: None).candidates(first, reply)  # type: ignore[arg-type]
    assert [row["status"] for row in rows] == [PENDING] * first.count
    store.commit_generation(None, rows, first.index)

    resumed = CandidatePipeline(quota_project, store, None, lambda *_: None)  # type: ignore[arg-type]
    assert len(resumed.dedup) == 0  # nothing read at start: the first requests go out first
    again = resumed.candidates(later, reply)  # type: ignore[arg-type]
    assert len(resumed.dedup) == first.count
    assert all(row["status"] == REJECTED and row["reason"].startswith("duplicate") for row in again)
