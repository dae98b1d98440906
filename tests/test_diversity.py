"""Diversity you can see: distinct-n and nearest-neighbour similarity tell a repetitive set of instructions from a varied one."""

from __future__ import annotations

import random

import pytest

from ootgen.dedup import Deduplicator, _shingle_hashes, normalise
from ootgen.diversity import distinct_n, measure, nearest_neighbour_similarities

TOPICS = ["actor update order", "switch flags", "spawning a bomb", "the matrix stack", "SRAM saves", "scene exits",
          "sound effects", "display lists", "collision cylinders", "Link's state flags", "room loading", "fanfares"]
REPETITIVE = [f"Walk me through this code from my hack. What is it doing with {t}?" for t in TOPICS * 3]
VARIED = [
    "How do I make my NPC turn to face Link when he gets close?",
    "Why does my game freeze with a black screen after I added a second skeleton to my actor?",
    "Which flag should I use so a chest stays open after the player saves and reloads?",
    "My boss theme never stops when the fight ends; what did I forget in the destroy function?",
    "Explain the difference between world rotation and shape rotation on an actor.",
    "Can a room hold more than one waterbox, and how does Link know which one he is in?",
    "What does the crash screen's cause field mean when it says address error on load?",
    "Write a platform that sinks slowly while Link stands on it and rises again afterwards.",
    "Where do the title cards for each area come from, and can I add one for my own dungeon?",
    "Is it safe to keep a pointer to the bomb I spawned, or can it disappear under me?",
    "How many sound effects can play at once before new ones are dropped?",
    "Why do offsets in my notes not match the retail ROM?",
]


def test_a_repeated_phrasing_scores_lower_distinct_n_and_higher_neighbour_similarity():
    repetitive, varied = measure(REPETITIVE), measure(VARIED)
    assert repetitive is not None and varied is not None
    for n in (1, 2, 3):
        assert repetitive.distinct[f"distinct_{n}"] < varied.distinct[f"distinct_{n}"]
    assert repetitive.nearest_neighbour["p50"] >= 0.6
    assert varied.nearest_neighbour["p50"] <= 0.2
    assert repetitive.similar_share == 1.0 and varied.similar_share == 0.0
    assert sum(repetitive.histogram.values()) == repetitive.compared == len(REPETITIVE)


def test_distinct_n_counts_unique_ngrams_over_all_ngrams():
    assert distinct_n(["a b a b"], 1) == 0.5  # {a, b} of 4 words
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3, abs=1e-4)  # {ab, ba} of 3 bigrams
    assert distinct_n(["x y", "x y"], 2) == 0.5


def test_minhash_neighbour_similarity_tracks_the_exact_jaccard():
    rng = random.Random(3)
    words = [f"w{i}" for i in range(60)]
    base = [rng.choice(words) for _ in range(40)]
    texts = [" ".join(base)]
    for changed in (4, 12, 25):  # rewrite `changed` words of the base text
        copy = list(base)
        for position in rng.sample(range(40), changed):
            copy[position] = f"new{position}"
        texts.append(" ".join(copy))
    shingles = [set(_shingle_hashes(normalise(t)).tolist()) for t in texts]
    exact_best = [max(len(s & o) / len(s | o) for j, o in enumerate(shingles) if j != i) for i, s in enumerate(shingles)]
    estimated = nearest_neighbour_similarities(texts)
    for exact, estimate in zip(exact_best, estimated):
        assert abs(exact - estimate) <= 0.15, (exact_best, estimated.tolist())


def test_a_large_run_is_sampled_evenly_and_the_signature_of_an_empty_text_is_none():
    many = [f"question {i} about {TOPICS[i % len(TOPICS)]} and case {i * 7}" for i in range(2500)]
    found = measure(many, sample=500)
    assert found is not None and found.instructions == 2500 and found.compared == 500
    assert Deduplicator().signature("  ?! ") is None
    assert measure(["only one"]) is None


def test_streamed_distinct_n_equals_exact_counting_across_buffer_merges(monkeypatch):
    from ootgen import diversity

    monkeypatch.setattr(diversity, "_FLUSH", 64)  # many merges of the hash buffer into the sorted array
    rng = random.Random(5)
    texts = [" ".join(rng.choice(["a", "b", "c", "d", "e", "f"]) for _ in range(rng.randint(0, 12))) for _ in range(400)]
    for n in (1, 2, 3):
        grams = [tuple(t.split()[i : i + n]) for t in texts for i in range(len(t.split()) - n + 1)]
        assert distinct_n(texts, n) == round(len(set(grams)) / len(grams), 4)
    meter = diversity.DiversityMeter(sample=50)
    for text in texts:
        meter.add(text)
    assert meter.sample_positions() == [int(i * 400 / 50) for i in range(50)]
