"""The dedup implementation before issue 17 (in-RAM shingles, per-band dicts), kept as the reference the
compact ootgen.dedup must agree with (tests/test_dedup_compact.py). Not used by ootgen.

Original docstring: flags a validated example whose instruction + input repeats an accepted one.

Exact repeats are caught by a hash of the normalised text, near repeats by MinHash + LSH banding
whose candidates are verified by the exact Jaccard similarity of the stored shingle sets.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

from ootgen.dedup import Duplicate, _shingle_hashes, _stable_u64, lsh_bands, normalise

# MinHash permutations are h -> (a*h + b) mod p with p the Mersenne prime 2**31 - 1: a, b and h are
# all < 2**31, so a*h + b < 2**62 fits in uint64 and the modulo is exact (no wrap-around bias).
_PRIME = np.uint64((1 << 31) - 1)
_WORD_SHINGLE = 3
_CHAR_SHINGLE = 5
# Below this many words there are too few word 3-grams for a meaningful Jaccard estimate
# (one changed word in a 6-word text already removes 3 of 4 shingles), so characters are used.
_MIN_WORDS_FOR_WORD_SHINGLES = 8
# LSH candidates are verified by exact Jaccard, so a false candidate costs a few vectorised
# comparisons while a missed candidate is a duplicate let through: banding is chosen so that a pair
# exactly at the threshold becomes a candidate with at least this probability.
_LSH_CANDIDATE_RECALL = 0.995
# Band keys are kept below 2**60 so each is a two-digit Python int (32 bytes, not 36).
_BAND_KEY_MASK = np.uint64((1 << 60) - 1)
_PUNCTUATION_RUN = re.compile(r"[^\w\s]+")


@dataclass(frozen=True)
class _Fingerprint:
    """What add() stores for a unique text, computed once by the lookup that found it unique."""

    digest: bytes
    shingles: np.ndarray  # sorted unique uint32 shingle hashes; empty when the text normalises to ""
    band_keys: list[int]


class ReferenceDeduplicator:
    """Remembers accepted texts and tells whether a new one repeats one of them exactly or nearly.

    Near duplicates are texts whose shingle Jaccard similarity is at least `near_threshold`. MinHash
    signatures of `num_perm` values, cut into LSH bands, find candidates in sub-quadratic time; each
    candidate is then verified by its exact Jaccard similarity over the stored shingle sets, so the
    banding can be generous (high recall) without reporting false duplicates.
    """

    def __init__(self, *, near_threshold: float = 0.85, num_perm: int = 64, seed: int = 1) -> None:
        if not 0.0 < near_threshold <= 1.0:
            raise ValueError(f"near_threshold must be in (0, 1], got {near_threshold}")
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        self.near_threshold = near_threshold
        self.num_perm = num_perm
        self.bands, self.rows = lsh_bands(near_threshold, num_perm)
        prime = int(_PRIME)
        self._perm_a = np.array(
            [1 + _stable_u64(seed, "a", i) % (prime - 1) for i in range(num_perm)], dtype=np.uint64
        )
        self._perm_b = np.array([_stable_u64(seed, "b", i) % prime for i in range(num_perm)], dtype=np.uint64)
        # Odd multipliers fold a band's `rows` values into one key; collisions only add candidates.
        self._band_mix = np.array([_stable_u64(seed, "band", i) | 1 for i in range(self.rows)], dtype=np.uint64)

        self._keys: list[str] = []
        self._exact: dict[bytes, int] = {}
        # Text i's shingle set is _shingles[_offsets[i]:_offsets[i + 1]]; both arrays grow by doubling.
        # A flat uint32 array costs 4 bytes a shingle, where a Python set would cost ~60.
        self._shingles = np.empty(1 << 16, dtype=np.uint32)
        self._offsets = np.zeros(1024, dtype=np.int64)
        # One table per band: band key -> id, or list of ids once two texts share that band.
        self._band_tables: list[dict[int, int | list[int]]] = [{} for _ in range(self.bands)]

    def __len__(self) -> int:
        return len(self._keys)

    def check(self, text: str) -> Duplicate | None:
        """The duplicate `text` would be, without remembering it."""
        found = self._lookup(text)
        return found if isinstance(found, Duplicate) else None

    def add(self, key: str, text: str) -> Duplicate | None:
        """Remember `text` under `key` unless it duplicates an earlier text; then return why."""
        found = self._lookup(text)
        if isinstance(found, Duplicate):
            return found
        self._remember(key, found)
        return None

    def similar(self, key: str, text: str) -> list[Duplicate]:
        """Every remembered text that `text` repeats, exactly or nearly; then remember `text` too, even when
        it repeats one. Used to cluster a finished dataset (add() reports only the first repeat)."""
        normalised = normalise(text)
        digest = hashlib.blake2b(normalised.encode(), digest_size=16).digest()
        found: dict[int, float] = {}
        if digest in self._exact:
            found[self._exact[digest]] = 1.0
        shingles = _shingle_hashes(normalised) if normalised else np.empty(0, dtype=np.uint64)
        band_keys = self._band_keys(shingles) if normalised else []
        shingles = shingles.astype(np.uint32)
        ids = self._band_candidates(band_keys)
        if len(ids):
            for doc_id, similarity in zip(ids.tolist(), self._jaccard(ids, shingles).tolist()):
                if similarity >= self.near_threshold:
                    found.setdefault(doc_id, similarity)
        self._remember(key, _Fingerprint(digest, shingles, band_keys))
        return [Duplicate(kind="exact" if s == 1.0 else "near", of=self._keys[i], similarity=s) for i, s in sorted(found.items())]

    def _remember(self, key: str, found: _Fingerprint) -> None:
        doc_id = len(self._keys)
        self._keys.append(key)
        self._exact.setdefault(found.digest, doc_id)
        self._store_shingles(doc_id, found.shingles)
        for table, band_key in zip(self._band_tables, found.band_keys):
            bucket = table.get(band_key)
            if bucket is None:
                table[band_key] = doc_id
            elif isinstance(bucket, int):
                table[band_key] = [bucket, doc_id]
            else:
                bucket.append(doc_id)

    def _band_candidates(self, band_keys: list[int]) -> np.ndarray:
        candidates: set[int] = set()
        for table, band_key in zip(self._band_tables, band_keys):
            bucket = table.get(band_key)
            if bucket is None:
                continue
            if isinstance(bucket, int):
                candidates.add(bucket)
            else:
                candidates.update(bucket)
        return np.fromiter(sorted(candidates), dtype=np.int64, count=len(candidates))

    def _store_shingles(self, doc_id: int, shingles: np.ndarray) -> None:
        if doc_id + 2 > len(self._offsets):
            self._offsets = np.concatenate([self._offsets, np.zeros(len(self._offsets), dtype=np.int64)])
        start = int(self._offsets[doc_id])
        end = start + len(shingles)
        if end > len(self._shingles):
            grown = np.empty(max(2 * len(self._shingles), end), dtype=np.uint32)
            grown[:start] = self._shingles[:start]
            self._shingles = grown
        self._shingles[start:end] = shingles
        self._offsets[doc_id + 1] = end

    def _band_keys(self, shingles: np.ndarray) -> list[int]:
        permuted = (shingles[:, None] * self._perm_a[None, :] + self._perm_b[None, :]) % _PRIME
        signature = permuted.min(axis=0)
        banded = signature[: self.bands * self.rows].reshape(self.bands, self.rows)
        return ((banded * self._band_mix).sum(axis=1, dtype=np.uint64) & _BAND_KEY_MASK).tolist()

    def _jaccard(self, ids: np.ndarray, shingles: np.ndarray) -> np.ndarray:
        """Exact Jaccard similarity of `shingles` (sorted, unique) with each stored text in `ids`.

        Equivalent to len(np.intersect1d(a, b)) per pair, done for all candidates in one pass:
        gather their shingles, look each up in the query set by binary search, sum hits per text.
        """
        starts, ends = self._offsets[ids], self._offsets[ids + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        owner = np.repeat(np.arange(len(ids)), lengths)
        positions = np.arange(total) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        stored = self._shingles[positions]
        slots = np.minimum(np.searchsorted(shingles, stored), len(shingles) - 1)
        hits = shingles[slots] == stored
        shared = np.bincount(owner, weights=hits, minlength=len(ids))
        return shared / (lengths + len(shingles) - shared)

    def _lookup(self, text: str) -> Duplicate | _Fingerprint:
        normalised = normalise(text)
        digest = hashlib.blake2b(normalised.encode(), digest_size=16).digest()
        earlier = self._exact.get(digest)
        if earlier is not None:
            return Duplicate(kind="exact", of=self._keys[earlier], similarity=1.0)
        if not normalised:
            return _Fingerprint(digest, np.empty(0, dtype=np.uint32), [])
        shingles = _shingle_hashes(normalised)
        band_keys = self._band_keys(shingles)
        shingles = shingles.astype(np.uint32)
        ids = self._band_candidates(band_keys)
        if len(ids):
            similarities = self._jaccard(ids, shingles)
            best = int(np.argmax(similarities))  # first maximum: the earliest of equally similar texts
            if similarities[best] >= self.near_threshold:
                return Duplicate(kind="near", of=self._keys[ids[best]], similarity=float(similarities[best]))
        return _Fingerprint(digest, shingles, band_keys)
