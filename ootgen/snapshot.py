"""JSON data for the state a resumable plan carries: seeded generators and choices among known items.

The planner (plan.py) and the grounding pool (grounding.py) store their state at each wave boundary with these,
so that a resumed run continues their streams exactly where the first session left them (issue 17)."""

from __future__ import annotations

import random


def positions(items, chosen) -> list[int]:
    """Where each of `chosen` (objects of `items`, by identity) is in `items`."""
    at = {id(item): n for n, item in enumerate(items)}
    return [at[id(item)] for item in chosen]


def rng_state(rng: random.Random) -> list:
    """A seeded generator's state as JSON data (rng_from gives it back for setstate)."""
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def rng_from(data: list) -> tuple:
    return data[0], tuple(data[1]), data[2]
