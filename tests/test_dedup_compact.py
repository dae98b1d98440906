"""The compact Deduplicator (sorted band index, shingles in a temporary file, issue 17) gives exactly the
answers of the in-RAM implementation it replaced (tests/dedup_reference.py), on a corpus with exact and near
repeats, through add(), check(), similar() and a restore from stored fingerprints."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ootgen import dedup as dedup_module
from ootgen.dedup import Deduplicator, _qualified, normalise
from tests.dedup_reference import ReferenceDeduplicator
from tests.test_dedup import INSTRUCTION_40_WORDS, NOUNS, VERBS, _one_word_changed


def _corpus(seed: int, size: int) -> list[str]:
    """Distinct texts, exact repeats (case and punctuation changed) and near repeats (one word changed)."""
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(size):
        roll = rng.random()
        if texts and roll < 0.1:
            texts.append(rng.choice(texts).upper() + " !!")
        elif texts and roll < 0.25:
            words = rng.choice(texts).split(" ")
            words[rng.randrange(len(words))] = rng.choice(NOUNS) + "x"
            texts.append(" ".join(words))
        elif roll < 0.28:
            texts.append(f"{rng.choice(VERBS)} {rng.choice(NOUNS)}")  # short: character shingles
        elif roll < 0.29:
            texts.append("?!")  # normalises to ""
        else:
            texts.append(f"{rng.choice(VERBS)} " + " ".join(rng.choice(NOUNS) for _ in range(rng.randint(9, 40))))
    return texts


@pytest.fixture
def small_merges(monkeypatch):
    # Merge the recent-entries dict into the sorted arrays often, so both halves of the index are exercised.
    monkeypatch.setattr(dedup_module, "_RECENT_ENTRIES", 97)


@pytest.mark.parametrize("threshold", [0.85, 0.5])
def test_add_and_check_give_the_reference_answers(small_merges, threshold):
    texts = _corpus(3, 1500)
    new, old = Deduplicator(near_threshold=threshold), ReferenceDeduplicator(near_threshold=threshold)
    answers = []
    for i, text in enumerate(texts):
        assert new.check(text) == old.check(text)
        answer = new.add(f"ex{i}", text)
        assert answer == old.add(f"ex{i}", text), (i, text)
        answers.append(answer)
    assert len(new) == len(old)
    kinds = {a.kind for a in answers if a is not None}
    assert kinds == {"exact", "near"}  # the corpus exercises both
    assert sum(a is not None for a in answers) > 150
    new.close()


def test_similar_gives_the_reference_clusters(small_merges):
    texts = _corpus(8, 800)
    new, old = Deduplicator(), ReferenceDeduplicator()
    clustered = 0
    for i, text in enumerate(texts):
        found = new.similar(str(i), text)
        assert found == old.similar(str(i), text), (i, text)
        clustered += len(found) > 1
    assert clustered > 10  # some texts repeat several earlier ones


def test_restore_from_fingerprints_rebuilds_the_same_index(small_merges, monkeypatch):
    # Chunks of 50 texts: their 600 band entries go straight into the sorted arrays, their digests to the dict.
    monkeypatch.setattr(dedup_module, "_RESTORE_CHUNK", 50)
    texts = _corpus(5, 1200)
    live = Deduplicator()
    stored: list[tuple[str, bytes, str]] = []
    for i, text in enumerate(texts[:900]):
        if live.add(f"ex{i}", text) is None:
            assert live.last_fingerprint is not None
            stored.append((f"ex{i}", live.last_fingerprint, text))
    assert any(len(fingerprint) == 24 for _, fingerprint, _ in stored)  # a text that normalises to "" is among them
    one_by_one, in_bulk, recomputed, mixed = Deduplicator(), Deduplicator(), Deduplicator(), Deduplicator()
    for key, fingerprint, text in stored:
        one_by_one.restore(key, fingerprint, text)
    in_bulk.restore_all(stored)
    # No stored fingerprint (a store from before): computed again, alone or among stored ones.
    recomputed.restore_all((key, None, text) for key, _, text in stored)
    mixed.restore_all((key, None if n % 3 == 0 else fingerprint, text) for n, (key, fingerprint, text) in enumerate(stored))
    assert len(in_bulk) == len(stored)
    for i, text in enumerate(texts[900:], start=900):
        expected = live.add(f"ex{i}", text)
        for resumed in (one_by_one, in_bulk, recomputed, mixed):
            assert resumed.add(f"ex{i}", text) == expected


def test_fingerprint_of_other_settings_is_recomputed_not_trusted():
    text = INSTRUCTION_40_WORDS
    coarse = Deduplicator(num_perm=16)
    coarse.add("a", text)
    fine = Deduplicator(num_perm=64)
    assert coarse.last_fingerprint is not None
    fine.restore("a", coarse.last_fingerprint, text)
    found = fine.check(_one_word_changed(text, 30, "Hover"))
    assert found is not None and found.kind == "near" and found.of == "a"


def test_memory_per_text_is_fixed_size_arrays_not_python_objects(small_merges):
    import tracemalloc

    rng = random.Random(1)
    texts = [f"{rng.choice(VERBS)} " + " ".join(rng.choice(NOUNS) for _ in range(30)) + f" n{i}" for i in range(4000)]
    dedup = Deduplicator()
    for i, text in enumerate(texts[:1000]):
        dedup.add(f"t{i}s0", text)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i, text in enumerate(texts[1000:], start=1000):
        dedup.add(f"t{i}s0", text)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # ~180 bytes a text in arrays that double when full (the dict of recent entries is bounded); the old implementation kept ~2 KB a text.
    assert grown / 3000 < 500, grown / 3000


def test_lookups_verify_few_candidates_when_texts_of_one_family_share_buckets(monkeypatch):
    """Texts made from one template with a few details changed share LSH buckets, so a bucket's candidates grow with
    the index; the signature screen reads back and verifies only those that may be near the threshold."""
    rng = random.Random(4)
    base = [rng.choice(NOUNS) for _ in range(40)]

    def variant(i: int) -> str:
        words = list(base)
        for slot in (4, 12, 20, 28, 36):  # any two about 0.43 similar: far below 0.85, yet often sharing a band
            words[slot] = f"{rng.choice(NOUNS)}{i}"
        return " ".join(words)

    dedup = Deduplicator()
    reads = []
    real_jaccard = Deduplicator._jaccard

    def counting_jaccard(self, ids, shingles):
        reads.append(len(ids))
        return real_jaccard(self, ids, shingles)

    for i in range(1500):
        dedup.add(f"t{i}", variant(i))
    unscreened = [len(np.unique(dedup._bands_index.lookup(_qualified(np.array(dedup._fingerprint(normalise(variant(i))).band_keys, dtype=np.uint64)).tolist())))
                  for i in range(2000, 2050)]
    monkeypatch.setattr(Deduplicator, "_jaccard", counting_jaccard)
    for i in range(1500, 1600):
        assert dedup.add(f"t{i}", variant(i)) is None
    assert sum(unscreened) / len(unscreened) > 100  # the buckets are crowded
    assert sum(reads) / 100 < 5, reads  # yet few candidates are read back
    near = variant(5000)
    dedup.add("original", near)
    found = dedup.check(near.replace(near.split(" ")[3], "changed", 1))
    assert found is not None and found.of == "original"  # a real near duplicate still passes the screen
