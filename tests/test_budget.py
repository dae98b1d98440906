"""The budget's reservations return to exactly zero once every call has settled, so a call never waits for none."""

from __future__ import annotations

import asyncio

import pytest

from ootgen.budget import Budget, BudgetStop


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
        await budget.reserve(0.1)
        await budget.reserve(0.2)
        await budget.settle(0.1, 0.05)
        await budget.settle(0.2, 0.05)  # leaves 0.1 + 0.2 - 0.1 - 0.2 = 2.8e-17 reserved without the snap to zero
        with pytest.raises(BudgetStop):
            await budget.reserve(0.45)  # 0.1 spent + 0.45 > 0.5, and nothing is in flight (before the fix: waits forever)

    asyncio.run(scenario())
