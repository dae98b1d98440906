"""Run loop piece: the money. Every API call reserves its worst-case cost against `--max-cost` first.

A call's worst case is its input (every token written to the cache) plus its max_tokens at the output
price. Near the cap a streaming call is sent with a lower max_tokens, as many output tokens as the money
left affords, but never below a floor learned from the run's own replies (the longest one seen of that
kind, plus 25 %), so the run spends up to the cap instead of stopping a whole worst case short of it.
When even the floor does not fit, the call waits for the calls in flight to settle (concurrency drops);
with nothing in flight a generation call is asked again for fewer candidates (floors are per candidate,
`Request.slots`; scheduler.StreamScheduler.ask_fitting), and the run stops only when one candidate's does not fit.

Judging what was paid for comes first: a generation call waits while a judge call waits for money, and
goes only if, once it has cost what it likely will, `judge_calls_per_generation` judge calls for its
candidates, and those still owed to the generations sent before it, still fit. "Likely" is the mean cost of that kind of call so far plus 25 %, or its worst case at
its floor until one has been paid for: a plan, not a guarantee (the cap itself is kept by the reservations).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from .generate import Request
from .models import ModelInfo

_CENT_FRACTION = 1e-9  # dollars; far below any call's worst case
FLOOR_MARGIN = 1.25  # a lowered max_tokens keeps this much room over the longest reply seen of its kind


class BudgetStop(Exception):
    """One more call's worst case does not fit under the cap, with nothing else in flight."""


@dataclass(frozen=True)
class WorstCase:
    """The most one call can cost: `input` dollars plus `per_output_token` for each token of its max_tokens."""

    input: float
    per_output_token: float

    def at(self, max_tokens: int) -> float:
        return self.input + self.per_output_token * max_tokens


class OutputFloors:
    """The lowest max_tokens a call of one (kind, model) may be sent with near the cap: the longest reply of
    that kind seen so far (this session or stored by an earlier one) per slot, x the call's slots x FLOOR_MARGIN,
    or the configured max_tokens until one reply has been seen (nothing lower is known to be safe). Per slot,
    so a generation call asking for fewer candidates near the cap has a floor that fits them."""

    def __init__(self, seen: dict[tuple[str, str], int] | None = None):
        self._longest = dict(seen or {})  # output tokens per slot

    def floor(self, request: Request) -> int:
        longest = self._longest.get((request.kind, request.model))
        if longest is None:
            return request.max_tokens
        return min(request.max_tokens, math.ceil(longest * request.slots * FLOOR_MARGIN))

    def observe(self, request: Request, output_tokens: int) -> None:
        key = (request.kind, request.model)
        self._longest[key] = max(self._longest.get(key, 0), math.ceil(output_tokens / request.slots))


@dataclass
class Paid:
    """What the calls of one kind cost so far: the input (and cache) part per call, the output part per candidate
    asked for, so a generation asking for fewer candidates near the cap is not counted as cheaper than it is
    (its input costs the same)."""

    calls: int = 0
    slots: int = 0
    dollars: float = 0.0
    output: float = 0.0  # of `dollars`, for output tokens

    def add(self, slots: int, dollars: float, output: float) -> None:
        self.calls += 1
        self.slots += slots
        self.dollars += dollars
        self.output += output

    def input_mean(self) -> float:
        return (self.dollars - self.output) / self.calls

    def output_mean(self, slots: int) -> float:
        """The mean output cost of a call asking for `slots`."""
        return self.output / self.slots * slots


class Budget:
    def __init__(self, cap: float | None, spent: float = 0.0, floors: OutputFloors | None = None,
                 judge_calls_per_generation: float = 0.0):
        self.cap = cap
        self.floors = floors or OutputFloors()
        self.judge_calls_per_generation = judge_calls_per_generation
        self._paid: dict[str, Paid] = {}  # what the calls of each kind cost so far
        self._warm: set[tuple[str, str, str, str]] = set()  # cache prefixes a paid reply has written
        self._judge_floor_cost = 0.0  # worst case at its floor of the latest judge call asked for
        self._judges_waiting = 0
        # Judge calls that generations already sent will need and that have not reserved yet: a generation leaves
        # room for these too, or concurrent generations each count the same money as their judging room.
        self.judge_calls_owed = 0.0
        self.spent = spent  # dollars charged for replies received (this run and earlier sessions)
        self.reserved = 0.0  # worst cases of the calls in flight
        self.exhausted = False  # set once a call's worst case did not fit with nothing in flight
        self._settled = asyncio.Condition()

    @staticmethod
    def worst_case(request: Request, model: ModelInfo, *, batch: bool = False, input_tokens: int | None = None) -> WorstCase:
        """The most `request` can cost: every input token written to the cache, every output token used."""
        if not model.priced:
            return WorstCase(0.0, 0.0)
        assert model.cache_write_per_mtok is not None and model.output_per_mtok is not None
        tokens_in = request.estimated_input_tokens() if input_tokens is None else input_tokens
        scale = (model.batch_multiplier if batch else 1.0) / 1_000_000
        return WorstCase(tokens_in * model.cache_write_per_mtok * scale, model.output_per_mtok * scale)

    def left(self) -> float | None:
        return None if self.cap is None else self.cap - self.spent - self.reserved

    def fits(self, amount: float) -> bool:
        return self.cap is None or self.spent + self.reserved + amount <= self.cap

    def affordable_tokens(self, worst: WorstCase, max_tokens: int) -> int:
        """The largest max_tokens (at most `max_tokens`) whose worst case fits now; negative when not even the input fits."""
        left = self.left()
        if left is None:
            return max_tokens
        if worst.per_output_token <= 0:
            return max_tokens if worst.input <= left else -1
        return min(max_tokens, math.floor((left - worst.input) / worst.per_output_token + 1e-6))  # 1e-6: float noise

    def likely_cost(self, kind: str, worst_at_floor: float, worst: float, slots: int = 1, cold_input: float | None = None) -> float:
        """What a call of `kind` asking for `slots` likely costs: the mean input of its kind per call and mean
        output per slot + 25 % (at most `worst`, its worst case as sent), or `worst_at_floor` until one has been
        paid for. A call whose cache prefix no reply has written yet pays `cold_input` (its input at the
        cache-write price) instead of the mean: a capped run's last generation on a cold context cost more
        than the mean, and the judge call for its candidates then did not fit."""
        paid = self._paid.get(kind)
        if not paid:
            return worst_at_floor
        fixed = paid.input_mean() * FLOOR_MARGIN if cold_input is None else cold_input
        return min(fixed + paid.output_mean(slots) * FLOOR_MARGIN, worst)

    def leaves_room_to_judge(self, worst: WorstCase, floor: int, tokens: int, request: Request) -> bool:
        """Whether a generation call, once it has cost what it likely will, leaves room to judge its candidates
        and those owed to earlier generations. Judge calls that wait for money go one after another, each
        reserving its worst case at the floor (every input token written to the cache) and paying its likely,
        cache-read cost: so the room is the likely cost of all but one of them plus one worst case at the floor.
        Counting every call at its likely cost let a capped run pay for candidates it could not judge."""
        left = self.left()
        if left is None:
            return True
        calls = self.judge_calls_owed + self.judge_calls_per_generation
        likely = self.likely_cost("judge", self._judge_floor_cost, self._judge_floor_cost)
        judging = (max(calls, 1.0) - 1.0) * likely + self._judge_floor_cost if calls > 0 else 0.0
        cold = None if _prefix(request) in self._warm else worst.input
        generate = self.likely_cost("generate", worst.at(floor), worst.at(tokens), request.slots, cold)
        return left - generate >= judging - _CENT_FRACTION  # float noise

    async def reserve(self, worst: WorstCase, request: Request) -> tuple[float, int]:
        """Reserve the worst case of sending `request` with its max_tokens lowered to what is left, not below its
        floor; wait while calls in flight may still free room; BudgetStop when none can. Returns (amount
        reserved, max_tokens to send)."""
        judge = request.kind == "judge"
        async with self._settled:
            while True:
                floor = self.floors.floor(request)
                tokens = self.affordable_tokens(worst, request.max_tokens)
                if judge:
                    self._judge_floor_cost = worst.at(floor)
                    if tokens >= floor:
                        break
                elif not self._judges_waiting:
                    if tokens >= floor and self.leaves_room_to_judge(worst, floor, tokens, request):
                        break
                    tokens = -1  # does not go: a stop when nothing is in flight
                if self.reserved <= 0 and tokens < floor:
                    self.exhausted = True
                    self._settled.notify_all()  # a generation call waiting behind this judge call decides now
                    raise BudgetStop()
                self._judges_waiting += judge
                try:
                    await self._settled.wait()
                finally:
                    self._judges_waiting -= judge
            amount = worst.at(tokens)
            self.reserved += amount
            if judge:
                self.judge_calls_owed = max(0.0, self.judge_calls_owed - 1)
                self._settled.notify_all()  # a generation call waiting behind this judge call may go now
            else:
                self.judge_calls_owed += self.judge_calls_per_generation
            return amount, tokens

    def reserve_now(self, amount: float) -> bool:
        """Reserve without waiting (a batch is sent whole or not at all)."""
        if not self.fits(amount):
            self.exhausted = True
            return False
        self.reserved += amount
        return True

    async def settle(self, amount: float, cost: float | None, request: Request | None = None, output_tokens: int = 0,
                     output_cost: float = 0.0) -> None:
        """Release a reservation and charge what the call really cost (`output_cost` of it for its output tokens);
        what `request`'s reply used (when it came) sets the floors and the room left for judging that the calls
        waiting see."""
        async with self._settled:
            if request is not None:
                self.floors.observe(request, output_tokens)
                self._paid.setdefault(request.kind, Paid()).add(request.slots, cost or 0.0, output_cost)
                self._warm.add(_prefix(request))
            self.release_now(amount, cost)
            self._settled.notify_all()

    def release_now(self, amount: float, cost: float | None) -> None:
        # Float sums do not cancel exactly (0.1 + 0.2 - 0.1 - 0.2 != 0): a leftover of a fraction of a micro-dollar
        # would make reserve() wait for calls that are no longer in flight, so it is snapped to zero.
        left = self.reserved - amount
        self.reserved = left if left > _CENT_FRACTION else 0.0
        self.spent += cost or 0.0


def _prefix(request: Request) -> tuple[str, str, str, str]:
    """The cached prefix a request reads or writes: its model and its system blocks."""
    return request.model, request.system, request.rules, request.instructions
