from __future__ import annotations

import random

import pytest

from ootgen.dedup import Deduplicator, Duplicate, dedup_text, lsh_bands, normalise

INSTRUCTION_40_WORDS = (
    "Explain step by step how the Player actor decides to start swimming when Link walks into deep "
    "water in Zora's Domain, which flags and timers in the save context it reads, and what changes "
    "when he wears the Iron Boots"
)
NOUNS = ["actor", "room", "scene", "flag", "switch", "collider", "skeleton", "animation", "cutscene", "textbox", "item", "rupee", "heart", "bottle", "ocarina", "song", "overlay", "segment", "vertex", "matrix", "camera", "timer", "inventory", "equipment", "magic", "arrow", "bomb", "hookshot", "boomerang", "shield", "tunic", "boots", "mask", "child", "adult", "link", "zelda", "ganon", "navi", "epona", "spawn", "entrance", "exit", "transition", "params", "rotation", "position", "velocity", "gravity", "forest", "temple", "field", "village", "mountain", "lake", "valley", "castle", "ranch"]
VERBS = ["explain", "describe", "rewrite", "document", "trace", "refactor", "annotate", "decompile", "summarise", "compare", "fix", "extend"]


def _word_trigram_jaccard(a: str, b: str) -> float:
    def trigrams(text: str) -> set[tuple[str, ...]]:
        words = normalise(text).split()
        return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}

    return len(trigrams(a) & trigrams(b)) / len(trigrams(a) | trigrams(b))


def _one_word_changed(text: str, index: int, word: str) -> str:
    words = text.split(" ")
    words[index] = word
    return " ".join(words)


def _random_instruction(rng: random.Random, words: int) -> str:
    return f"{rng.choice(VERBS)} " + " ".join(rng.choice(NOUNS) for _ in range(words - 1))


def test_exact_duplicate_survives_case_whitespace_and_punctuation_changes():
    dedup = Deduplicator()
    assert dedup.add("first", dedup_text("How does Flags_GetSwitch work?", "play, 0x1F")) is None

    found = dedup.add("second", dedup_text("  how DOES flags_getswitch   work ", "PLAY 0x1f!!"))

    assert found == Duplicate(kind="exact", of="first", similarity=1.0)
    assert len(dedup) == 1


def test_dedup_text_leaves_out_nothing_of_instruction_and_input():
    assert dedup_text("Explain this.", "") == "Explain this."
    assert "Explain this." in dedup_text("Explain this.", "s16 x = 0;")
    assert "s16 x = 0;" in dedup_text("Explain this.", "s16 x = 0;")


@pytest.mark.parametrize("seed", range(1, 21))
def test_one_word_changed_in_40_word_instruction_is_near_duplicate_for_every_seed(seed):
    assert len(INSTRUCTION_40_WORDS.split()) == 40
    # True 3-gram Jaccard is 0.857, just over 0.85: an estimate from 64 MinHash values would miss it
    # for about one seed in three; exact verification of LSH candidates must catch it for all of them.
    changed = _one_word_changed(INSTRUCTION_40_WORDS, 30, "Hover")
    dedup = Deduplicator(seed=seed)
    dedup.add("original", INSTRUCTION_40_WORDS)

    found = dedup.add("reworded", changed)

    assert found is not None and found.kind == "near" and found.of == "original"
    assert found.similarity == pytest.approx(_word_trigram_jaccard(INSTRUCTION_40_WORDS, changed))
    assert found.similarity >= dedup.near_threshold
    assert len(dedup) == 1


def test_one_word_changes_are_caught_exactly_when_true_jaccard_reaches_the_threshold():
    # A middle-word change in 40 words leaves a true 3-gram Jaccard of ~0.85-0.88, right at the
    # threshold: the similarity reported is the exact one, so the decision follows the true Jaccard.
    rng = random.Random(11)
    at_or_over = caught = 0
    for i in range(60):
        dedup = Deduplicator(seed=i)
        original = _random_instruction(rng, 40)
        dedup.add("original", original)
        changed = _one_word_changed(original, rng.randrange(10, 30), "zzz")
        jaccard = _word_trigram_jaccard(original, changed)
        found = dedup.check(changed)
        if jaccard >= dedup.near_threshold:
            at_or_over += 1
            assert found is not None and found.similarity == pytest.approx(jaccard), (i, jaccard)
            caught += 1
        else:
            assert found is None, (i, jaccard, found)
    assert at_or_over >= 30 and caught == at_or_over


def test_distinct_synthetic_instructions_are_not_flagged():
    rng = random.Random(5)
    texts = {_random_instruction(rng, rng.randint(25, 45)) for _ in range(2000)}
    dedup = Deduplicator()

    flagged = [text for i, text in enumerate(sorted(texts)) if dedup.add(f"ex{i}", text) is not None]

    assert len(texts) > 1990
    assert len(flagged) <= 2, flagged[:2]
    assert len(dedup) == len(texts) - len(flagged)


def test_pair_at_half_jaccard_is_not_flagged_at_085():
    rng = random.Random(2)
    first = _random_instruction(rng, 40)
    words = first.split(" ")
    # Changing every 6th word keeps ~half of the 3-grams.
    second = " ".join(f"other{i}" if i % 6 == 5 else w for i, w in enumerate(words))
    assert 0.35 <= _word_trigram_jaccard(first, second) <= 0.6

    strict = Deduplicator(near_threshold=0.85)
    strict.add("first", first)
    loose = Deduplicator(near_threshold=0.3)
    loose.add("first", first)

    assert strict.check(second) is None
    assert loose.check(second) == Duplicate(kind="near", of="first", similarity=loose.check(second).similarity)


def test_two_instances_with_same_seed_agree_exactly():
    rng = random.Random(9)
    base = [_random_instruction(rng, 40) for _ in range(200)]
    texts = base + [_one_word_changed(t, 20, "zzz") for t in base[:100]] + base[100:150]

    runs = []
    for _ in range(2):
        dedup = Deduplicator(seed=3)
        runs.append([dedup.add(f"ex{i}", t) for i, t in enumerate(texts)])

    assert runs[0] == runs[1]
    kinds = [r.kind for r in runs[0] if r is not None]
    assert kinds.count("exact") == 50 and kinds.count("near") > 0


def test_check_does_not_insert():
    dedup = Deduplicator()
    assert dedup.check(INSTRUCTION_40_WORDS) is None
    assert dedup.check(INSTRUCTION_40_WORDS) is None
    assert len(dedup) == 0

    assert dedup.add("a", INSTRUCTION_40_WORDS) is None
    assert dedup.check(INSTRUCTION_40_WORDS) == Duplicate(kind="exact", of="a", similarity=1.0)
    assert len(dedup) == 1


def test_duplicates_are_not_inserted_and_point_at_the_first_text():
    dedup = Deduplicator()
    dedup.add("a", INSTRUCTION_40_WORDS)
    dedup.add("b", INSTRUCTION_40_WORDS.upper())
    assert dedup.add("c", INSTRUCTION_40_WORDS + " ") == Duplicate(kind="exact", of="a", similarity=1.0)
    assert len(dedup) == 1


@pytest.mark.parametrize("text", ["", "!!", "hi", "Hi there", "Open chest"])
def test_short_and_empty_texts_work(text):
    dedup = Deduplicator()
    assert dedup.add("a", text) is None
    assert dedup.add("b", text.upper() + " ") == Duplicate(kind="exact", of="a", similarity=1.0)


def test_short_texts_use_characters_so_a_small_edit_is_near_and_a_different_text_is_not():
    dedup = Deduplicator(near_threshold=0.6)
    dedup.add("a", "Explain Flags_GetSwitch in the Forest Temple")

    assert dedup.check("Explain Flags_GetSwitch in the Forest Temples") is not None
    assert dedup.check("Decompile EnHorse_Update for Lon Lon Ranch") is None


def test_lsh_bands_fit_in_num_perm_move_with_threshold_and_make_pairs_at_threshold_candidates():
    for threshold in (0.5, 0.7, 0.85, 0.95):
        bands, rows = lsh_bands(threshold, 64)
        assert bands * rows <= 64
        assert 1 - (1 - threshold**rows) ** bands >= 0.99
    # a stricter threshold needs longer bands (more rows must agree)
    assert lsh_bands(0.95, 64)[1] > lsh_bands(0.5, 64)[1]


def test_many_stored_texts_keep_their_own_shingle_sets():
    # Past the initial capacity of the shingle store, every text must still be compared with its own set.
    rng = random.Random(4)
    texts = [_random_instruction(rng, 40) for _ in range(3000)]
    dedup = Deduplicator()
    for i, text in enumerate(texts):
        dedup.add(f"ex{i}", text)
    for i in (0, 1500, 2999):
        changed = _one_word_changed(texts[i], 39, "zzz")  # last word: only one 3-gram lost
        found = dedup.check(changed)
        assert found is not None and found.of == f"ex{i}"
        assert found.similarity == pytest.approx(_word_trigram_jaccard(texts[i], changed))


def test_bad_threshold_is_rejected():
    with pytest.raises(ValueError):
        Deduplicator(near_threshold=0)
