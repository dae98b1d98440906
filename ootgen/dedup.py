"""Dedup stage: flags a validated example whose instruction + input repeats an accepted one.

Exact repeats are caught by a hash of the normalised text, near repeats by MinHash + LSH banding
whose candidates are verified by the exact Jaccard similarity of the stored shingle sets.

Memory per remembered text is a few hundred bytes whatever its length (issue 17: 100k examples in
constant memory): LSH band keys and exact digests live in sorted numpy arrays (12 bytes an entry, no
Python object per text), and the shingle sets and keys, needed only to verify a candidate, in an
append-only temporary file read back with pread.

Lookups stay cheap as the index grows: texts of one family (same template, other details) share LSH
buckets, so a bucket's candidates grow with the run. Each text's MinHash signature is kept (one byte a
value), and the candidates are first screened by their estimated similarity in one vectorised
comparison; only those within _SCREEN_MARGIN of the threshold are read back and verified exactly.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

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
# Band keys are kept below 2**58; the band's number goes in the top 6 bits, so one index holds every band.
_BAND_KEY_BITS = 58
_BAND_KEY_MASK = np.uint64((1 << _BAND_KEY_BITS) - 1)
# Entries of an index kept in a dict until this many, then merged into its sorted arrays.
_RECENT_ENTRIES = 1 << 15
# Texts a resume restores per chunk (one file write and one index merge each).
_RESTORE_CHUNK = 1 << 13
# Candidates whose signature-estimated similarity is this far below the threshold are not verified. The
# estimate's standard error is at most 0.5/sqrt(num_perm) (0.0625 at 64): a true near duplicate is screened
# out only beyond 4 standard errors (about 3e-5 of pairs at the 64-permutation default, far less near 0.85).
_SCREEN_MARGIN = 0.25
# A stored fingerprint: scheme tag (8 bytes), digest (16), band keys (8 each), signature (1 each), then the
# shingles (4 each).
_TAG_BYTES, _DIGEST_BYTES = 8, 16
_PUNCTUATION_RUN = re.compile(r"[^\w\s]+")


@dataclass(frozen=True)
class Duplicate:
    """Why a text was rejected: the earlier example's key and how alike the two are (1.0 for exact)."""

    kind: Literal["exact", "near"]
    of: str
    similarity: float


@dataclass(frozen=True)
class _Fingerprint:
    """What add() stores for a unique text, computed once by the lookup that found it unique."""

    digest: bytes
    shingles: np.ndarray  # sorted unique uint32 shingle hashes; empty when the text normalises to ""
    band_keys: list[int]
    signature: np.ndarray  # the MinHash values' low bytes (uint8, num_perm); zeros when the text normalises to ""


def dedup_text(instruction: str, input: str) -> str:
    """The text deduplication looks at: the output is left out, so rewordings of a request count."""
    return f"{instruction}\n\n{input}" if input else instruction


def normalise(text: str) -> str:
    """Casefold, turn punctuation runs into spaces and collapse whitespace."""
    return " ".join(_PUNCTUATION_RUN.sub(" ", text.casefold()).split())


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with the longest bands whose S-curve 1 - (1 - s**rows)**bands still makes a pair
    at similarity `threshold` a candidate with probability >= _LSH_CANDIDATE_RECALL.

    Longer bands mean fewer chance collisions of dissimilar texts; using every band that fits keeps
    recall as high as the row count allows. Falls back to one row per band when nothing reaches it.
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= _LSH_CANDIDATE_RECALL:
            return bands, rows
    return num_perm, 1


def _stable_u64(seed: int, label: str, index: int) -> int:
    # Derived with blake2b rather than numpy's Generator so signatures do not depend on the numpy version.
    digest = hashlib.blake2b(f"{seed}:{label}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _shingle_hashes(normalised: str) -> np.ndarray:
    """Sorted unique uint64 hashes < 2**31 of the text's shingles: its shingle set."""
    words = normalised.split(" ")
    if len(words) >= _MIN_WORDS_FOR_WORD_SHINGLES:
        units = np.fromiter((zlib.crc32(w.encode()) for w in words), dtype=np.uint64, count=len(words))
        width = _WORD_SHINGLE
    else:
        units = np.frombuffer(normalised.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
        width = min(_CHAR_SHINGLE, len(units))
    # Polynomial combination of `width` consecutive units (wrapping uint64), then a xorshift-multiply
    # finaliser so that neighbouring shingles spread over the whole range before reduction mod p.
    count = len(units) - width + 1
    h = np.zeros(count, dtype=np.uint64)
    for offset in range(width):
        h = h * np.uint64(0x100000001B3) + units[offset : offset + count]
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    return np.unique(h % _PRIME)


def _qualified(band_keys: np.ndarray) -> np.ndarray:
    """Band keys (uint64, last axis: band number) with their band number in the top bits: one index for all bands."""
    return band_keys | (np.arange(band_keys.shape[-1], dtype=np.uint64) << np.uint64(_BAND_KEY_BITS))


class _MultiIndex:
    """uint64 key -> the int32 ids added under it.

    Entries go to a small dict (and two flat lists) first and are merged, every _RECENT_ENTRIES, into two
    sorted arrays (key, id): 12 bytes an entry instead of a Python int and list per entry.
    """

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.uint64)
        self._ids = np.empty(0, dtype=np.int32)
        self._recent: dict[int, list[int]] = {}
        self._recent_keys: list[int] = []
        self._recent_ids: list[int] = []

    def add(self, keys: list[int], ids: list[int]) -> None:
        """Add `ids[i]` under `keys[i]`: a few go to the recent entries, a bulk load straight into the arrays."""
        if len(keys) >= _RECENT_ENTRIES:
            self._merge(keys, ids)
            return
        for key, doc_id in zip(keys, ids):
            self._recent.setdefault(key, []).append(doc_id)
        self._recent_keys += keys
        self._recent_ids += ids
        if len(self._recent_keys) >= _RECENT_ENTRIES:
            self._merge()

    def lookup(self, keys: list[int]) -> np.ndarray:
        """Every id added under any of `keys` (int32; an id may appear more than once)."""
        found: list[np.ndarray] = []
        if len(self._keys) and keys:
            wanted = np.array(keys, dtype=np.uint64)
            lows = np.searchsorted(self._keys, wanted, side="left")
            highs = np.searchsorted(self._keys, wanted, side="right")
            found.extend(self._ids[low:high] for low, high in zip(lows.tolist(), highs.tolist()) if high > low)
        recent = [doc_id for key in keys for doc_id in self._recent.get(key, ())]
        if recent:
            found.append(np.array(recent, dtype=np.int32))
        return np.concatenate(found) if found else np.empty(0, dtype=np.int32)

    def _merge(self, more_keys: Sequence[int] = (), more_ids: Sequence[int] = ()) -> None:
        """Merge the recent entries (and `more_keys`/`more_ids`) into the sorted arrays."""
        keys = np.concatenate([self._keys, np.array(self._recent_keys + list(more_keys), dtype=np.uint64)])
        ids = np.concatenate([self._ids, np.array(self._recent_ids + list(more_ids), dtype=np.int32)])
        order = np.argsort(keys, kind="stable")  # a merge of sorted runs: about linear
        self._keys, self._ids = keys[order], ids[order]
        self._recent, self._recent_keys, self._recent_ids = {}, [], []


class _Growing:
    """An append-only numpy array (of scalars, or of rows of `width`) that doubles its capacity when full."""

    def __init__(self, dtype, width: int | None = None) -> None:
        self._data = np.empty(1024 if width is None else (1024, width), dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        if self.size + len(values) > len(self._data):
            capacity = max(2 * len(self._data), self.size + len(values))
            grown = np.empty((capacity, *self._data.shape[1:]), dtype=self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : self.size + len(values)] = values
        self.size += len(values)

    def __getitem__(self, index):
        return self._data[: self.size][index]


class Deduplicator:
    """Remembers accepted texts and tells whether a new one repeats one of them exactly or nearly.

    Near duplicates are texts whose shingle Jaccard similarity is at least `near_threshold`. MinHash
    signatures of `num_perm` values, cut into LSH bands, find candidates in sub-quadratic time; each
    candidate is then verified by its exact Jaccard similarity over the stored shingle sets, so the
    banding can be generous (high recall) without reporting false duplicates.

    Shingle sets and keys go to an anonymous temporary file (in TMPDIR); close() frees it.
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
        # Identifies the signature scheme, so a stored fingerprint is only reused by an identical one.
        self._tag = _stable_u64(seed, f"scheme2:{num_perm}:{self.bands}:{self.rows}", 0).to_bytes(8, "little")
        self.last_fingerprint: bytes | None = None  # of the text the last successful add() remembered

        self._file = tempfile.TemporaryFile(prefix="ootgen-dedup-")  # noqa: SIM115 - lives as long as self
        self._fd = self._file.fileno()
        self._end = 0
        # Text i's record in the file starts at _offsets[i]: _counts[i] uint32 shingles, then its key (UTF-8).
        self._offsets = _Growing(np.int64)
        self._counts = _Growing(np.int32)
        self._digest_tail = _Growing(np.uint64)  # second half of each digest: verifies an exact-index hit
        self._signatures = _Growing(np.uint8, num_perm)  # screens band candidates before exact verification
        self._exact = _MultiIndex()  # first half of the digest -> ids
        self._bands_index = _MultiIndex()  # band number (top bits) | band key -> ids

    def __len__(self) -> int:
        return self._offsets.size

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Deduplicator:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def check(self, text: str) -> Duplicate | None:
        """The duplicate `text` would be, without remembering it."""
        found = self._lookup(text)
        return found if isinstance(found, Duplicate) else None

    def add(self, key: str, text: str) -> Duplicate | None:
        """Remember `text` under `key` unless it duplicates an earlier text; then return why.

        After a text is remembered, `last_fingerprint` holds what restore() needs to remember it again
        without recomputing it (the run store keeps it beside the candidate, so a resume is fast)."""
        found = self._lookup(text)
        if isinstance(found, Duplicate):
            return found
        self.last_fingerprint = self._serialise(found)
        self._remember([key], [self.last_fingerprint])
        return None

    def restore(self, key: str, fingerprint: bytes | None, text: str) -> None:
        """Remember a text add() accepted earlier, from its stored fingerprint (or from `text` when the
        fingerprint is missing or was made with other settings)."""
        self.restore_all([(key, fingerprint, text)])

    def restore_all(self, entries: Iterable[tuple[str, bytes | None, str]]) -> None:
        """restore() each (key, fingerprint, text) in order: a resume's whole index, in chunks of
        _RESTORE_CHUNK texts with one file write and one index merge each (100k texts in about a second)."""
        keys: list[str] = []
        blobs: list[bytes] = []
        for key, fingerprint, text in entries:
            if fingerprint is None or fingerprint[:_TAG_BYTES] != self._tag:
                found = self._lookup(text, verify=False)
                assert isinstance(found, _Fingerprint)
                fingerprint = self._serialise(found)
            keys.append(key)
            blobs.append(fingerprint)
            if len(keys) == _RESTORE_CHUNK:
                self._remember(keys, blobs)
                keys, blobs = [], []
        if keys:
            self._remember(keys, blobs)

    def similar(self, key: str, text: str) -> list[Duplicate]:
        """Every remembered text that `text` repeats, exactly or nearly; then remember `text` too, even when
        it repeats one. Used to cluster a finished dataset (add() reports only the first repeat)."""
        fingerprint = self._fingerprint(normalise(text))
        found: dict[int, float] = {}
        exact = self._exact_ids(fingerprint.digest)
        if exact:
            found[exact[0]] = 1.0
        ids = self._band_candidates(fingerprint)
        if len(ids):
            for doc_id, similarity in zip(ids.tolist(), self._jaccard(ids, fingerprint.shingles).tolist()):
                if similarity >= self.near_threshold:
                    found.setdefault(doc_id, similarity)
        self._remember([key], [self._serialise(fingerprint)])
        return [Duplicate(kind="exact" if s == 1.0 else "near", of=self._key(i), similarity=s) for i, s in sorted(found.items())]

    def signature(self, text: str) -> np.ndarray | None:
        """The MinHash signature (`num_perm` values) of a text's shingle set; None when it normalises to "".

        Two signatures agree in each position with probability equal to the texts' Jaccard similarity
        (used by ootgen.diversity to estimate nearest-neighbour similarity without comparing shingle sets)."""
        normalised = normalise(text)
        if not normalised:
            return None
        return self._minhash(_shingle_hashes(normalised))

    # --- internals -------------------------------------------------------------------------------------

    def _fingerprint(self, normalised: str) -> _Fingerprint:
        digest = hashlib.blake2b(normalised.encode(), digest_size=_DIGEST_BYTES).digest()
        if not normalised:
            return _Fingerprint(digest, np.empty(0, dtype=np.uint32), [], np.zeros(self.num_perm, dtype=np.uint8))
        shingles = _shingle_hashes(normalised)
        signature = self._minhash(shingles)
        return _Fingerprint(digest, shingles.astype(np.uint32), self._band_keys(signature), signature.astype(np.uint8))

    def _lookup(self, text: str, *, verify: bool = True) -> Duplicate | _Fingerprint:
        normalised = normalise(text)
        fingerprint = self._fingerprint(normalised)
        if not verify:
            return fingerprint
        exact = self._exact_ids(fingerprint.digest)
        if exact:
            return Duplicate(kind="exact", of=self._key(exact[0]), similarity=1.0)
        ids = self._band_candidates(fingerprint)
        if len(ids):
            similarities = self._jaccard(ids, fingerprint.shingles)
            best = int(np.argmax(similarities))  # first maximum: the earliest of equally similar texts
            if similarities[best] >= self.near_threshold:
                return Duplicate(kind="near", of=self._key(int(ids[best])), similarity=float(similarities[best]))
        return fingerprint

    def _exact_ids(self, digest: bytes) -> list[int]:
        """Ids of the remembered texts with this digest, earliest first."""
        head, tail = int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:], "little")
        ids = self._exact.lookup([head]).tolist()
        return sorted(i for i in ids if int(self._digest_tail[i]) == tail)

    def _remember(self, keys: list[str], blobs: list[bytes]) -> None:
        """Remember texts from their serialised fingerprints (the layout _serialise writes), ids in this order."""
        head, bands, perm = _TAG_BYTES + _DIGEST_BYTES, self.bands, self.num_perm
        shingles_at = head + 8 * bands + perm
        first = len(self)
        digests = np.frombuffer(b"".join(blob[_TAG_BYTES:head] for blob in blobs), dtype="<u8").reshape(-1, 2)
        records, counts, band_keys, band_ids = [], [], [], []
        signatures = np.zeros((len(blobs), perm), dtype=np.uint8)
        for at, (key, blob) in enumerate(zip(keys, blobs)):
            if len(blob) > head:  # else a text that normalised to "": no shingles, bands or signature
                band_keys.append(blob[head : head + 8 * bands])
                band_ids.append(first + at)
                signatures[at] = np.frombuffer(blob, dtype=np.uint8, count=perm, offset=head + 8 * bands)
            shingles = blob[shingles_at:]
            counts.append(len(shingles) // 4)
            records.append(shingles + key.encode())  # a text's record in the file: its shingles, then its key
        lengths = np.array([len(record) for record in records], dtype=np.int64)
        os.pwrite(self._fd, b"".join(records), self._end)
        self._offsets.extend(self._end + np.cumsum(lengths) - lengths)
        self._end += int(lengths.sum())
        self._counts.extend(np.array(counts, dtype=np.int32))
        self._digest_tail.extend(digests[:, 1])
        self._signatures.extend(signatures)
        self._exact.add(digests[:, 0].tolist(), list(range(first, first + len(blobs))))
        if band_keys:
            qualified = _qualified(np.frombuffer(b"".join(band_keys), dtype=np.uint64).reshape(-1, bands))
            self._bands_index.add(qualified.ravel().tolist(), np.repeat(np.array(band_ids), bands).tolist())

    def _band_candidates(self, fingerprint: _Fingerprint) -> np.ndarray:
        """Ids sharing an LSH band with the text whose estimated similarity is near the threshold or above, in id order."""
        ids = np.unique(self._bands_index.lookup(_qualified(np.array(fingerprint.band_keys, dtype=np.uint64)).tolist()))
        if len(ids):
            estimates = (self._signatures[ids] == fingerprint.signature).mean(axis=1)
            ids = ids[estimates >= self.near_threshold - _SCREEN_MARGIN]
        return ids

    def _record(self, doc_id: int) -> bytes:
        start = int(self._offsets[doc_id])
        end = int(self._offsets[doc_id + 1]) if doc_id + 1 < len(self) else self._end
        return os.pread(self._fd, end - start, start)

    def _key(self, doc_id: int) -> str:
        return self._record(doc_id)[4 * int(self._counts[doc_id]) :].decode()

    def _minhash(self, shingles: np.ndarray) -> np.ndarray:
        return ((shingles[:, None] * self._perm_a[None, :] + self._perm_b[None, :]) % _PRIME).min(axis=0)

    def _band_keys(self, signature: np.ndarray) -> list[int]:
        banded = signature[: self.bands * self.rows].reshape(self.bands, self.rows)
        return ((banded * self._band_mix).sum(axis=1, dtype=np.uint64) & _BAND_KEY_MASK).tolist()

    def _jaccard(self, ids: np.ndarray, shingles: np.ndarray) -> np.ndarray:
        """Exact Jaccard similarity of `shingles` (sorted, unique uint32) with each stored text in `ids`:
        each candidate's shingles are read back and looked up in the query set by binary search."""
        similarities = np.empty(len(ids), dtype=np.float64)
        for at, doc_id in enumerate(ids.tolist()):
            count = int(self._counts[doc_id])
            stored = np.frombuffer(self._record(doc_id)[: 4 * count], dtype=np.uint32)
            if len(shingles) and count:
                slots = np.minimum(np.searchsorted(shingles, stored), len(shingles) - 1)
                shared = int(np.count_nonzero(shingles[slots] == stored))
            else:
                shared = 0
            union = count + len(shingles) - shared
            similarities[at] = shared / union if union else 1.0
        return similarities

    def _serialise(self, found: _Fingerprint) -> bytes:
        if not found.band_keys:  # a text that normalised to "": no shingles, no signature
            return self._tag + found.digest
        return (self._tag + found.digest + np.array(found.band_keys, dtype=np.uint64).tobytes()
                + found.signature.tobytes() + found.shingles.astype(np.uint32).tobytes())
