"""How varied the accepted instructions are, so a user sees when a run repeats itself.

Two measures over the accepted instructions (current models take no temperature, so variety has to come from
the plan — topics, angles and styles — and this is where a user sees whether it did):
- distinct-n: unique word n-grams / all word n-grams (n = 1, 2, 3) over every instruction; 1.0 means no n-gram
  is ever repeated, a run that reuses one phrasing drifts towards 0;
- nearest-neighbour similarity: for each instruction, the highest Jaccard similarity of its shingle set to any
  other accepted instruction, estimated from MinHash signatures (ootgen.dedup). Near-duplicates are rejected at
  the dedup threshold, so the distribution below it is what tells a varied run from a repetitive one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .dedup import Deduplicator, normalise

SAMPLE = 2000  # instructions compared pairwise at most (evenly spaced over the run): O(SAMPLE^2) signature compares
NUM_PERM = 128  # signature length: standard error of one similarity estimate <= 0.045
_CHUNK = 64
SIMILAR = 0.5  # an instruction whose nearest neighbour is at least this similar counts as a repeat of a phrasing


@dataclass(frozen=True)
class Diversity:
    instructions: int
    distinct: dict[str, float]  # "distinct_1".."distinct_3" -> ratio
    compared: int  # instructions in the nearest-neighbour sample
    nearest_neighbour: dict[str, float]  # mean, p10, p50, p90, max
    histogram: dict[str, int]  # "0.0-0.1" .. "0.9-1.0" -> instructions whose nearest neighbour falls there
    similar_share: float  # share of compared instructions with a neighbour >= SIMILAR

    def as_dict(self) -> dict:
        return {
            "instructions": self.instructions,
            **self.distinct,
            "nearest_neighbour_similarity": {**self.nearest_neighbour, "compared": self.compared,
                                             "histogram": self.histogram, f"share_at_least_{SIMILAR}": self.similar_share},
        }


def distinct_n(texts: Sequence[str], n: int) -> float:
    total, unique = 0, set()
    for text in texts:
        words = normalise(text).split()
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        unique.update(grams)
    return round(len(unique) / total, 4) if total else 0.0


def nearest_neighbour_similarities(texts: Sequence[str], *, num_perm: int = NUM_PERM) -> np.ndarray:
    """Estimated Jaccard similarity of each text to its most similar other text (texts that normalise to "" are skipped)."""
    hasher = Deduplicator(num_perm=num_perm)
    signatures = [sig for sig in (hasher.signature(t) for t in texts) if sig is not None]
    if len(signatures) < 2:
        return np.zeros(0)
    matrix = np.stack(signatures)
    best = np.zeros(len(matrix))
    for start in range(0, len(matrix), _CHUNK):
        block = (matrix[start : start + _CHUNK, None, :] == matrix[None, :, :]).mean(axis=2)
        rows = np.arange(block.shape[0])
        block[rows, start + rows] = -1.0  # not its own neighbour
        best[start : start + block.shape[0]] = block.max(axis=1)
    return best


def measure(instructions: Sequence[str], *, sample: int = SAMPLE) -> Diversity | None:
    """The diversity of a run's accepted instructions; None for fewer than two."""
    total = len(instructions)
    if total < 2:
        return None
    distinct = {f"distinct_{n}": distinct_n(instructions, n) for n in (1, 2, 3)}
    if len(instructions) > sample:  # evenly spaced, so early and late parts of the run both count
        step = len(instructions) / sample
        instructions = [instructions[int(i * step)] for i in range(sample)]
    nearest = nearest_neighbour_similarities(instructions)
    if len(nearest) == 0:
        return None
    counts = np.histogram(np.clip(nearest, 0.0, 1.0), bins=10, range=(0.0, 1.0))[0]
    histogram = {f"{i / 10:.1f}-{(i + 1) / 10:.1f}": int(c) for i, c in enumerate(counts)}
    summary = {"mean": float(nearest.mean()), "p10": float(np.percentile(nearest, 10)), "p50": float(np.median(nearest)),
               "p90": float(np.percentile(nearest, 90)), "max": float(nearest.max())}
    return Diversity(
        instructions=total,
        distinct=distinct,
        compared=len(nearest),
        nearest_neighbour={k: round(v, 4) for k, v in summary.items()},
        histogram=histogram,
        similar_share=round(float((nearest >= SIMILAR).mean()), 4),
    )
