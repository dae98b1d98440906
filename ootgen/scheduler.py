"""Run loop piece: what to send next. Plan stepping (shared by streaming and batch), how much work to keep
in flight for the target, and the streaming loop that keeps generation and judge calls going.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .budget import BudgetStop
from .pipeline import CandidatePipeline
from .plan import Planner, Task, iter_plan
from .store import ACCEPTED, PENDING, REJECTED, RunStore

# Work in flight is planned as if candidates were accepted until judgements say otherwise: an optimistic
# prior buys no surplus at the start (rejections are topped up as they come), and the measured rate takes
# over after a few judgements.
EXPECTED_ACCEPT_RATE = 1.0
PRIOR_WEIGHT = 3  # the prior counts as this many judged candidates
MIN_ACCEPT_RATE = 0.15  # never plan as if fewer than this share were accepted
DEFERRED_MAX = 64  # tasks held back (cold context busy) before one is sent anyway


@dataclass(frozen=True)
class Targets:
    """What the run aims for: `num` accepted examples, `per_call` candidates per generation call, at most
    `max_candidates` candidates in all, `judge_batch` candidates per judge call."""

    num: int
    per_call: int
    max_candidates: int
    judge_batch: int

    @classmethod
    def from_config(cls, config, num_examples: int) -> Targets:
        gen = config["generation"]
        return cls(num_examples, gen["examples_per_call"],
                   math.ceil(num_examples * gen.get("max_attempts_factor", 3.0)) + gen["examples_per_call"],
                   (config.get("judge") or {}).get("candidates_per_call", 3))


def acceptance_rate(store: RunStore) -> float:
    """The measured acceptance rate, smoothed by the prior (a run's tail plans from it: no surplus bought)."""
    accepted, rejected = store.count(ACCEPTED), store.count(REJECTED)
    rate = (accepted + EXPECTED_ACCEPT_RATE * PRIOR_WEIGHT) / (accepted + rejected + PRIOR_WEIGHT)
    return max(MIN_ACCEPT_RATE, rate)


def type_quotas(mix: dict[str, float], num: int) -> dict[str, int]:
    """Accepted examples wanted per type: `num` split by the mix weights (largest remainders round up)."""
    total = sum(mix.values())
    exact = {name: num * weight / total for name, weight in mix.items()} if total > 0 else {}
    quotas = {name: int(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: (-(exact[name] - quotas[name]), name))
    for name in by_remainder[: num - sum(quotas.values())]:
        quotas[name] += 1
    return quotas


CHECKPOINT_EVERY = 256  # tasks between two saved plan states: a resume replays fewer than this many
PLAN_CHECKPOINT = "plan_checkpoint"  # meta key of the last saved Planner.state()


class PlanCursor:
    """Walks the deterministic plan, skipping tasks already done, saving each task before it is sent.

    Every CHECKPOINT_EVERY tasks it stores the planner's state, taken when every task before it is stored:
    a resumed run continues the plan from there and reads the unfinished tasks before it from the store,
    instead of replaying the whole plan (issue 17: a 100k run resumes in seconds)."""

    def __init__(self, project, store: RunStore):
        self.store = store
        self._plan = _resumed_plan(project, store.get_meta(PLAN_CHECKPOINT))
        # Unfinished tasks before the checkpoint come from the store, in plan order; states are needed only
        # for the tasks the plan will give again.
        self._stored: Iterator[Task] = iter([Task.from_stored(*row) for row in store.unfinished_tasks(self._plan.position)])
        self.states = store.task_states(since=self._plan.position)
        self._deferred: list[Task] = []

    def next(self, may_start: Callable[[Task], bool] = lambda _task: True) -> Task | None:
        """The next task to send; a task `may_start` refuses is deferred (sent later, in plan order)."""
        for pos, task in enumerate(self._deferred):
            if may_start(task):
                return self._deferred.pop(pos)
        for _ in range(10_000):
            drawn = next(self._stored, None) or self._planned()
            if drawn is None:
                continue
            task = drawn
            if may_start(task):
                return task
            self._deferred.append(task)
            if len(self._deferred) > DEFERRED_MAX:
                return self._deferred.pop(0)
        return None

    def _planned(self) -> Task | None:
        """The plan's next task, saved; None when it is done already."""
        task = next(self._plan)
        state = self.states.pop(task.index, None)
        if state is None:
            self.store.save_tasks([task])
        if self._plan.position % CHECKPOINT_EVERY == 0:
            self.store.set_meta(PLAN_CHECKPOINT, self._plan.state())
        return None if state == "done" else task


def _resumed_plan(project, checkpoint: dict | None) -> Planner:
    """The plan from its stored checkpoint, or from the start when there is none (or it is from another plan)."""
    if checkpoint:
        try:
            return Planner(project, state=checkpoint)
        except (KeyError, IndexError, TypeError, ValueError):
            pass  # written by another ootgen version or for another symbol index: replay from the start
    return iter_plan(project)


class StreamScheduler:
    """The streaming run: generation and judge calls in parallel, as many as the limiter allows."""

    def __init__(self, project, store: RunStore, pipeline: CandidatePipeline, targets: Targets, max_parallel: int):
        self.store = store
        self.pipeline = pipeline
        self.targets = targets
        self.max_parallel = max_parallel
        self.cursor = PlanCursor(project, store)
        self.warm_contexts: set[str] = set()  # contexts whose cache prefix has been written
        self.busy_cold: set[str] = set()  # cold contexts with a call in flight
        self.post_processing = 0  # generation jobs past their API call, checking and storing the reply
        self.budget_hit = False
        self.wake = asyncio.Event()

    def may_start(self, task: Task) -> bool:
        """Only one call at a time for a context whose cache prefix is not written yet."""
        return task.context in self.warm_contexts or task.context not in self.busy_cold

    async def generate(self, task: Task) -> None:
        try:
            answer = await self.pipeline.ask_generation(task)
        finally:
            self.busy_cold.discard(task.context)
        self.post_processing += 1
        self.wake.set()  # the scheduler may send the next call while this reply is checked and stored
        try:
            await asyncio.sleep(0)  # let the scheduler run first
            if answer is None:
                self.store.set_task_state(task.index, "failed", "no valid reply")
                return
            self.warm_contexts.add(task.context)
            self.pipeline.accept_generation(task, answer)
        finally:
            self.post_processing -= 1

    async def run(self) -> str:
        targets = self.targets
        inflight_gen: dict[asyncio.Task, Task] = {}
        inflight_judge: set[asyncio.Task] = set()
        queued: set[int] = set()  # candidate ids being judged or waiting for a judge call
        exhausted = False

        while True:
            accepted = self.store.count(ACCEPTED)
            if accepted >= targets.num:
                stop = "complete"
                break
            # Judge pending candidates in groups of one context (one pass over the pending rows).
            by_context: dict[str, list[int]] = {}
            pending_ids = set()
            for candidate in self.store.candidates(PENDING):
                pending_ids.add(candidate.id)
                if candidate.id not in queued:
                    by_context.setdefault(candidate.context, []).append(candidate.id)
            queued &= pending_ids  # judged candidates leave the set: it stays as small as the pending work
            generating = {task.context for task in inflight_gen.values()}
            for context_id, ids in by_context.items():
                # Full groups go at once; a partial group goes when no generation for its context is in flight
                # (nothing more is coming for it soon), so paid-for candidates never wait for the run's end.
                while ids and (len(ids) >= targets.judge_batch or context_id not in generating or exhausted):
                    if len(inflight_judge) + len(inflight_gen) >= self.max_parallel * 2:
                        break
                    group, ids[:] = ids[: targets.judge_batch], ids[targets.judge_batch :]
                    queued.update(group)
                    inflight_judge.add(asyncio.create_task(self.pipeline.judge(context_id, group)))
            # Start generation while the expected yield of work in flight falls short of the target.
            rate = acceptance_rate(self.store)
            while not exhausted and not self.budget_hit and len(inflight_gen) - self.post_processing < self.max_parallel:
                in_pipeline = self.store.count(PENDING) + len(inflight_gen) * targets.per_call
                if accepted + in_pipeline * rate >= targets.num:
                    break
                if self.store.count() + len(inflight_gen) * targets.per_call >= targets.max_candidates:
                    exhausted = True
                    break
                task = self.cursor.next(self.may_start)
                if task is None:
                    break
                if task.context not in self.warm_contexts:
                    self.busy_cold.add(task.context)
                inflight_gen[asyncio.create_task(self.generate(task))] = task
            if not inflight_gen and not inflight_judge:
                if self.store.count(PENDING) and not self.budget_hit:
                    exhausted = True  # flush the last partial judge groups
                    if any(c.id not in queued for c in self.store.candidates(PENDING)):
                        continue
                stop = "budget" if self.budget_hit else "attempt_limit"
                break
            self.wake.clear()
            waker = asyncio.ensure_future(self.wake.wait())
            done, _ = await asyncio.wait(set(inflight_gen) | inflight_judge | {waker}, return_when=asyncio.FIRST_COMPLETED)
            waker.cancel()
            done.discard(waker)
            for job in done:
                inflight_gen.pop(job, None)
                inflight_judge.discard(job)
                error = job.exception()
                if isinstance(error, BudgetStop):
                    self.budget_hit = True
                elif error is not None:
                    for other in list(inflight_gen) + list(inflight_judge):
                        other.cancel()
                    raise error
            if self.budget_hit and not inflight_gen and not inflight_judge:
                stop = "budget"
                break
        # Calls already in flight are paid for: let them finish and store their results (surplus examples
        # stay in the store as accepted beyond the target) rather than throwing their responses away.
        leftovers = list(inflight_gen) + list(inflight_judge)
        if leftovers:
            outcomes = await asyncio.gather(*leftovers, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(outcome, (BudgetStop, asyncio.CancelledError)):
                    raise outcome
        return stop
