"""How varied the accepted instructions are, so a user sees when a run repeats itself.

Two measures over the accepted instructions (current models take no temperature, so variety has to come from
the plan — topics, angles and styles — and this is where a user sees whether it did):
- distinct-n: unique word n-grams / all word n-grams (n = 1, 2, 3) over every instruction; 1.0 means no n-gram
  is ever repeated, a run that reuses one phrasing drifts towards 0;
- nearest-neighbour similarity: for each instruction, the highest Jaccard similarity of its shingle set to any
  other accepted instruction, estimated from MinHash signatures (ootgen.dedup). Near-duplicates are rejected at
  the dedup threshold, so the distribution below it is what tells a varied run from a repetitive one.

Streamed (issue 17): `DiversityMeter` counts n-grams as 8-byte hashes in numpy arrays while a caller walks the
store, and the nearest-neighbour part needs only SAMPLE instructions, which the caller reads back by position.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
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


_FLUSH = 1 << 18  # n-gram hashes buffered (8 bytes each, 2 MB) before they are merged into the sorted unique array


class _DistinctHashes:
    """A set of 64-bit n-gram hashes as one sorted numpy array plus a small buffer (8 bytes a distinct n-gram)."""

    def __init__(self) -> None:
        self.unique = np.empty(0, dtype=np.int64)
        self.pending = array("q")
        self.total = 0

    def update(self, hashes: list[int]) -> None:
        self.total += len(hashes)
        self.pending.extend(hashes)
        if len(self.pending) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.unique = np.unique(np.concatenate([self.unique, np.frombuffer(self.pending, dtype=np.int64)]))
            self.pending = array("q")

    def ratio(self) -> float:
        self._flush()
        return round(len(self.unique) / self.total, 4) if self.total else 0.0


class DiversityMeter:
    """Diversity of a stream of instructions: `add` each, then `result` with the ones at `sample_positions()`."""

    def __init__(self, sample: int = SAMPLE) -> None:
        self.sample = sample
        self.count = 0
        self._grams = {n: _DistinctHashes() for n in (1, 2, 3)}

    def add(self, instruction: str) -> None:
        self.count += 1
        words = normalise(instruction).split()
        for n, grams in self._grams.items():
            grams.update(_ngram_hashes(words, n))

    def sample_positions(self) -> list[int]:
        """Positions (in the order added) of the instructions compared pairwise: all of them, or `sample` evenly
        spaced over the stream, so early and late parts of the run both count."""
        if self.count <= self.sample:
            return list(range(self.count))
        step = self.count / self.sample
        return [int(i * step) for i in range(self.sample)]

    def result(self, sampled: Sequence[str]) -> Diversity | None:
        """The diversity, given the instructions at `sample_positions()`; None for fewer than two."""
        if self.count < 2:
            return None
        nearest = nearest_neighbour_similarities(sampled)
        if len(nearest) == 0:
            return None
        counts = np.histogram(np.clip(nearest, 0.0, 1.0), bins=10, range=(0.0, 1.0))[0]
        histogram = {f"{i / 10:.1f}-{(i + 1) / 10:.1f}": int(c) for i, c in enumerate(counts)}
        summary = {"mean": float(nearest.mean()), "p10": float(np.percentile(nearest, 10)), "p50": float(np.median(nearest)),
                   "p90": float(np.percentile(nearest, 90)), "max": float(nearest.max())}
        return Diversity(
            instructions=self.count,
            distinct={f"distinct_{n}": grams.ratio() for n, grams in self._grams.items()},
            compared=len(nearest),
            nearest_neighbour={k: round(v, 4) for k, v in summary.items()},
            histogram=histogram,
            similar_share=round(float((nearest >= SIMILAR).mean()), 4),
        )


def _ngram_hashes(words: list[str], n: int) -> list[int]:
    # hash() of a word tuple has 64 bits: two distinct n-grams of one run collide with negligible probability
    return [hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1)]


def distinct_n(texts: Iterable[str], n: int) -> float:
    grams = _DistinctHashes()
    for text in texts:
        grams.update(_ngram_hashes(normalise(text).split(), n))
    return grams.ratio()


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
    """The diversity of a run's accepted instructions, all in memory; None for fewer than two."""
    meter = DiversityMeter(sample)
    for instruction in instructions:
        meter.add(instruction)
    return meter.result([instructions[i] for i in meter.sample_positions()])
