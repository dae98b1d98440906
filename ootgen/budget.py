"""Run loop piece: the money. Every API call reserves its worst-case cost against `--max-cost` first.

Near the cap fewer calls fit at once, so calls wait for reservations in flight to settle (concurrency
drops) instead of stopping; the run stops only when nothing is in flight and one more call's worst case
still does not fit.
"""

from __future__ import annotations

import asyncio

from .generate import Request
from .models import ModelInfo

_CENT_FRACTION = 1e-9  # dollars; far below any call's worst case


class BudgetStop(Exception):
    """One more call's worst case does not fit under the cap, with nothing else in flight."""


class Budget:
    def __init__(self, cap: float | None, spent: float = 0.0):
        self.cap = cap
        self.spent = spent  # dollars charged for replies received (this run and earlier sessions)
        self.reserved = 0.0  # worst cases of the calls in flight
        self.exhausted = False  # set once a call's worst case did not fit with nothing in flight
        self._settled = asyncio.Condition()

    @staticmethod
    def worst_case(request: Request, model: ModelInfo, *, batch: bool = False, input_tokens: int | None = None) -> float:
        """The most `request` can cost: every input token written to the cache, every output token used."""
        if not model.priced:
            return 0.0
        assert model.cache_write_per_mtok is not None and model.output_per_mtok is not None
        tokens_in = request.estimated_input_tokens() if input_tokens is None else input_tokens
        dollars = (tokens_in * model.cache_write_per_mtok + request.max_tokens * model.output_per_mtok) / 1_000_000
        return dollars * (model.batch_multiplier if batch else 1.0)

    def left(self) -> float | None:
        return None if self.cap is None else self.cap - self.spent - self.reserved

    def fits(self, amount: float) -> bool:
        return self.cap is None or self.spent + self.reserved + amount <= self.cap

    def calls_that_fit(self, amount: float) -> int | None:
        """How many more calls of worst case `amount` fit now (None: no cap)."""
        left = self.left()
        if left is None or amount <= 0:
            return None
        return max(0, int(left // amount))

    async def reserve(self, amount: float) -> None:
        """Reserve `amount`; wait while calls in flight may still leave room; BudgetStop when none can."""
        async with self._settled:
            while not self.fits(amount):
                if self.reserved <= 0:
                    self.exhausted = True
                    raise BudgetStop()
                await self._settled.wait()
            self.reserved += amount

    def reserve_now(self, amount: float) -> bool:
        """Reserve without waiting (a batch is sent whole or not at all)."""
        if not self.fits(amount):
            self.exhausted = True
            return False
        self.reserved += amount
        return True

    async def settle(self, amount: float, cost: float | None) -> None:
        """Release a reservation and charge what the call really cost."""
        async with self._settled:
            self.release_now(amount, cost)
            self._settled.notify_all()

    def release_now(self, amount: float, cost: float | None) -> None:
        # Float sums do not cancel exactly (0.1 + 0.2 - 0.1 - 0.2 != 0): a leftover of a fraction of a micro-dollar
        # would make reserve() wait for calls that are no longer in flight, so it is snapped to zero.
        left = self.reserved - amount
        self.reserved = left if left > _CENT_FRACTION else 0.0
        self.spent += cost or 0.0
