"""Run loop piece: what to send next. Per-type quotas and waves (shared by streaming and batch), and the
streaming loop that keeps generation and judge calls going.

Finishing exactly: each type asks for its quota of accepted examples in waves sized from its own judged
history (`wave_size`), so the run buys little beyond the quotas, and what it asks for is the same whatever
order calls complete in; export then takes each type's first `quota` accepted examples in stream order.

Sharing judge calls: a later wave's last, smaller call (its top-up) goes to the wave's shared context, the same
for every type's wave of that number (`shared_contexts`), and a part-filled judge group waits while candidates
for its context are coming, so the few candidates of several types' top-ups are judged in one call.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from .budget import BudgetStop
from .exchange import Answer
from .pipeline import CandidatePipeline
from .plan import Task, TypeStream, shared_contexts, type_quotas, type_streams
from .store import ACCEPTED, REJECTED, RunStore

# A wave's size is its type's deficit over the type's measured acceptance rate, never planned as if fewer than
# MIN_ACCEPT_RATE were accepted; the first wave asks for (at most) the quota itself: no surplus bought up front.
MIN_ACCEPT_RATE = 0.15
_MIN_RATE = Fraction(MIN_ACCEPT_RATE).limit_denominator()
WINDOW = 64  # tasks of an open wave taken from the stream ahead of sending (a cold context's tasks may wait)


@dataclass(frozen=True)
class Targets:
    """What the run aims for: `num` accepted examples, `per_call` candidates per generation call, at most
    `attempts(quota)` candidates per type, `judge_batch` candidates per judge call."""

    num: int
    per_call: int
    attempts_factor: float
    judge_batch: int

    def attempts(self, quota: int) -> int:
        """Candidates a type may try: `attempts_factor` x (its quota + one call), so a type with a small quota
        is not given up after a call or two of bad luck."""
        return math.ceil((quota + self.per_call) * self.attempts_factor) if quota else 0

    @classmethod
    def from_config(cls, config, num_examples: int) -> Targets:
        gen = config.generation
        return cls(num_examples, gen.examples_per_call, gen.max_attempts_factor, config.judge.candidates_per_call)


def wave_size(quota: int, accepted: int, judged: int, per_call: int) -> int:
    """Candidates the next wave of a type asks for: its deficit over its measured acceptance rate (>= 1), or
    0 when the quota is met. With nothing judged yet (the first wave) the rate is taken as 1. A tie rounds
    down (1 missing at 2/3 asks for 1, not 2): on the fence, the ask that buys no surplus. A wave larger
    than one call is cut to whole calls: the remainder joins the next wave's top-up instead of costing a call
    of its own."""
    deficit = quota - accepted
    if deficit <= 0:
        return 0
    rate = max(_MIN_RATE, Fraction(accepted, judged)) if judged else Fraction(1)
    size = max(1, math.ceil(deficit / rate - Fraction(1, 2)))  # exact: 1 / (2/3) is 1.5, not 1.5000000000000002
    return size - size % per_call if size > per_call else size


def judge_groups(pending: dict[str, list[int]], size: int, expected: set[str]) -> Iterator[tuple[str, list[int]]]:
    """Judge groups of at most `size` pending candidates of one context, in order: every full group, and a
    context's part-filled rest only when no more candidates are `expected` for that context."""
    for context_id, ids in pending.items():
        for start in range(0, len(ids), size):
            group = ids[start : start + size]
            if len(group) == size or context_id not in expected:
                yield context_id, group


class TypeWaves:
    """One type's exact finish: its stream is taken in waves, each sized by `wave_size` from the verdicts of
    the type's earlier waves only. A wave opens when the previous one is fully judged, so its size depends on
    no other type and on no completion order: streaming, --batch and a resumed run send the same tasks."""

    def __init__(self, name: str, stream: TypeStream, quota: int, max_candidates: int, per_call: int, shared: list[str]):
        self.name = name
        self.stream = stream
        self.shared = shared  # contexts the later waves' top-ups take in turn (top_up_context)
        self.number = 0  # of the open wave
        self.quota = quota
        self.max_candidates = max_candidates
        self.per_call = per_call
        self.asked = 0  # candidate slots taken from the stream, every wave
        self.accepted = self.judged = 0  # verdicts on the completed waves' candidates
        self.left = min(wave_size(quota, 0, 0, per_call), max_candidates)  # slots of the open wave still to take
        self.wave: list[int] = []  # task indexes of the open wave
        self.window: list[Task] = []  # tasks of the open wave taken but not handed out
        self.unsettled: set[int] = set()  # tasks handed out whose reply is not stored yet
        self.finished = not self.left

    @property
    def met(self) -> bool:
        return self.accepted >= self.quota

    def fill(self, done: Callable[[Task], bool]) -> None:
        """Take tasks of the open wave from the stream until the window is full; `done` ones (stored by an
        earlier session) are settled at once."""
        while self.left > 0 and len(self.window) < WINDOW:
            task = self.stream.take(self.top_up_context(self.number) if self.left < self.per_call else None).cut(self.left)
            self.left -= task.count
            self.asked += task.count
            self.wave.append(task.index)
            if not done(task):
                self.window.append(task)
                self.unsettled.add(task.index)

    def top_up_context(self, number: int) -> str | None:
        """Where wave `number` sends its call of fewer than `per_call` candidates. None for the first wave: its
        small calls (quotas under `per_call`) keep their planned contexts, or a small run would be one context."""
        return self.shared[(number - 1) % len(self.shared)] if self.shared and number > 0 else None

    def wave_open(self, pending: int) -> bool:
        return bool(self.left or self.window or self.unsettled or pending)

    def next_wave(self, verdicts: Counter) -> None:
        """The open wave is fully judged (`verdicts`: its candidates per status): size the next one, or finish."""
        self.accepted += verdicts[ACCEPTED]
        self.judged += verdicts[ACCEPTED] + verdicts[REJECTED]
        self.wave = []
        self.number += 1
        self._size_wave()

    def _size_wave(self) -> None:
        self.left = min(wave_size(self.quota, self.accepted, self.judged, self.per_call), self.max_candidates - self.asked)
        self.finished = self.left <= 0

    def snapshot(self) -> dict | None:
        """At a wave boundary: the closed waves' counts and the stream's state (None while the stream hands out
        community questions). restore() of it sizes the next wave from the current quota."""
        stream = self.stream.snapshot()
        return None if stream is None else {"number": self.number, "asked": self.asked, "accepted": self.accepted,
                                            "judged": self.judged, "stream": stream}

    def restore(self, snapshot: dict) -> None:
        self.number, self.asked = snapshot["number"], snapshot["asked"]
        self.accepted, self.judged = snapshot["accepted"], snapshot["judged"]
        self.stream.restore_from = snapshot["stream"]
        self._size_wave()


def type_waves(project, targets: Targets) -> list[TypeWaves]:
    """Every type's waves at the start of a run for `targets`: its quota of `targets.num`, its attempt limit, its
    own task stream (the run's planner, and --dry-run's first wave)."""
    quotas = type_quotas(project.mix, targets.num)
    shared = shared_contexts(project)
    return [TypeWaves(name, stream, quotas[name], targets.attempts(quotas[name]), targets.per_call, shared)
            for name, stream in type_streams(project).items()]


class QuotaPlanner:
    """Every type's waves: which task to send next, and when the run is finished (each type's quota of
    accepted examples met, or its attempts used). Each task is saved to the store before it is handed out."""

    def __init__(self, project, store: RunStore, targets: Targets):
        self.store = store
        self.states = store.task_states()
        self.types = type_waves(project, targets)
        # A resume starts each type at its last stored wave boundary: only the open wave is replayed, not the run.
        snapshots = store.wave_snapshots()
        for waves in self.types:
            if waves.name in snapshots:
                waves.restore(snapshots[waves.name])

    @property
    def finished(self) -> bool:
        return all(t.finished for t in self.types)

    @property
    def complete(self) -> bool:
        return all(t.met for t in self.types)

    def advance(self) -> None:
        """Open the next wave of every type whose open wave is fully judged (a resumed run replays the waves its
        store holds since the last stored boundary here, each sized exactly as the first session sized it)."""
        pending = self.store.pending_by_type()
        for waves in self.types:
            while not waves.finished:
                waves.fill(self._done)
                if waves.wave_open(pending[waves.name]):
                    break
                waves.next_wave(self.store.statuses_of_tasks(waves.wave))
                snapshot = waves.snapshot()
                if snapshot is not None:
                    self.store.save_wave_snapshot(waves.name, snapshot)

    def next(self, may_start: Callable[[Task], bool] = lambda _task: True) -> Task | None:
        """The lowest-indexed task of any open wave that `may_start` allows, or None."""
        ready = [(task.index, waves, task) for waves in self.types if not waves.finished
                 for task in waves.window if may_start(task)]
        if not ready:
            return None
        _, waves, task = min(ready, key=lambda item: item[0])
        waves.window.remove(task)
        if task.index not in self.states:
            self.store.save_tasks([task])
            self.states[task.index] = "planned"
        waves.fill(self._done)
        return task

    def waiting_contexts(self) -> set[str]:
        """Contexts of open waves' tasks not handed out yet."""
        return {task.context for waves in self.types for task in waves.window}

    def requeue(self, task: Task) -> None:
        """A handed-out task that was not sent (the cap): back into its wave's window, sent when money allows."""
        for waves in self.types:
            if task.index in waves.unsettled:
                waves.window.append(task)

    def settled(self, task: Task) -> None:
        """The task's reply is stored (or it failed for good): its candidates count towards its wave."""
        for waves in self.types:
            waves.unsettled.discard(task.index)

    def _done(self, task: Task) -> bool:
        return self.states.get(task.index) == "done"


class StreamScheduler:
    """The streaming run: generation and judge calls in parallel, as many as the limiter allows."""

    def __init__(self, project, store: RunStore, pipeline: CandidatePipeline, targets: Targets, max_parallel: int):
        self.store = store
        self.pipeline = pipeline
        self.targets = targets
        self.max_parallel = max_parallel
        self.planner = QuotaPlanner(project, store, targets)
        self.warm_contexts: set[str] = set()  # contexts whose cache prefix has been written
        self.busy_cold: set[str] = set()  # cold contexts with a call in flight
        self.post_processing = 0  # generation jobs past their API call, checking and storing the reply
        self.out_of_budget: set[str] = set()  # call kinds ("generate", "judge") whose floor no longer fits the cap
        self.wake = asyncio.Event()

    def may_start(self, task: Task) -> bool:
        """Only one call at a time for a context whose cache prefix is not written yet."""
        return task.context in self.warm_contexts or task.context not in self.busy_cold

    async def generate(self, task: Task) -> None:
        try:
            task, answer = await self.ask_fitting(task)
        except BudgetStop:
            self.planner.requeue(task)  # not sent: its wave still needs it once the budget allows
            raise
        finally:
            self.busy_cold.discard(task.context)
        self.post_processing += 1
        self.wake.set()  # the scheduler may send the next call while this reply is checked and stored
        try:
            await asyncio.sleep(0)  # let the scheduler run first
            if answer is None:
                self.store.set_task_state(task.index, "failed", "no valid reply")
            else:
                self.warm_contexts.add(task.context)
                compiled = await self.pipeline.compile_reply(task, answer.reply)  # gcc off the event loop
                self.pipeline.accept_generation(task, answer, compiled)
            self.planner.settled(task)
        finally:
            self.post_processing -= 1

    async def ask_fitting(self, task: Task) -> tuple[Task, Answer | None]:
        """The task as sent and its answer. When not even the task's floor fits the money left (and nothing is in
        flight to free more), it asks for one candidate fewer, down to one: the last dollars under the cap still
        buy examples. The slots left out are not asked again in this wave (a resumed run replays it unchanged)."""
        while True:
            try:
                return task, await self.pipeline.ask_generation(task)
            except BudgetStop:
                smaller = task.cut(task.count - 1)
                if not 0 < smaller.count < task.count:  # one slot, a ladder or a question chunk: nothing smaller
                    raise
                task = smaller

    async def run(self) -> str:
        targets = self.targets
        inflight_gen: dict[asyncio.Task, Task] = {}
        inflight_judge: set[asyncio.Task] = set()
        queued: set[int] = set()  # candidate ids being judged or waiting for a judge call
        backlog = 0  # pending candidates no judge call had taken at the end of the last turn
        # Generation pauses while judging is this far behind (and a judge call is in flight to catch up): the
        # pending work, which every turn reads from the store, stays bounded instead of growing with the run.
        backlog_limit = 2 * self.max_parallel * targets.judge_batch

        while True:
            self.planner.advance()
            # Send the open waves' tasks, lowest index first.
            while ("generate" not in self.out_of_budget and len(inflight_gen) - self.post_processing < self.max_parallel
                   and (backlog < backlog_limit or not inflight_judge)):
                task = self.planner.next(self.may_start)
                if task is None:
                    break
                if task.context not in self.warm_contexts:
                    self.busy_cold.add(task.context)
                inflight_gen[asyncio.create_task(self.generate(task))] = task
            # Judge pending candidates in groups of one context (one pass over the pending rows).
            by_context: dict[str, list[int]] = {}
            pending_ids = set()
            for candidate_id, context_id in self.store.pending_contexts():
                pending_ids.add(candidate_id)
                if candidate_id not in queued:
                    by_context.setdefault(context_id, []).append(candidate_id)
            queued &= pending_ids  # judged candidates leave the set: it stays as small as the pending work
            # A part-filled group waits while more candidates for its context are coming (a generation in flight or
            # an open wave's task not sent yet), so the waves' small top-ups on their shared context share judge
            # calls. Once no generation fits the cap, what was generated is judged with the money left.
            expected = {task.context for task in inflight_gen.values()}
            if "generate" not in self.out_of_budget:
                expected |= self.planner.waiting_contexts()
            for context_id, group in judge_groups(by_context, targets.judge_batch, expected):
                if "judge" in self.out_of_budget or len(inflight_judge) + len(inflight_gen) >= self.max_parallel * 2:
                    break
                queued.update(group)
                inflight_judge.add(asyncio.create_task(self.pipeline.judge(context_id, group)))
            backlog = sum(1 for ids in by_context.values() for candidate_id in ids if candidate_id not in queued)
            if not inflight_gen and not inflight_judge:
                if self.out_of_budget:
                    return "budget"
                return "complete" if self.planner.complete else "attempt_limit"
            self.wake.clear()
            waker = asyncio.ensure_future(self.wake.wait())
            done, _ = await asyncio.wait(set(inflight_gen) | inflight_judge | {waker}, return_when=asyncio.FIRST_COMPLETED)
            waker.cancel()
            done.discard(waker)
            for job in done:
                kind = "generate" if inflight_gen.pop(job, None) is not None else "judge"
                inflight_judge.discard(job)
                error = job.exception()
                if isinstance(error, BudgetStop):
                    self.out_of_budget.add(kind)
                elif error is None and kind == "judge" and "judge" not in self.out_of_budget:
                    # Judging set the floors and spent what it needed: a generation that did not fit may now.
                    self.out_of_budget.discard("generate")
                elif error is not None:
                    for other in list(inflight_gen) + list(inflight_judge):
                        other.cancel()
                    raise error
