"""Benchmark of the dedup stage: Deduplicator.add over synthetic OoT-flavoured instruction + input texts.

Run as `python bench/bench_dedup.py [--n 100000]`; ~5 % of the texts are injected exact and near duplicates.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ootgen.dedup import Deduplicator, dedup_text, normalise

TARGET_SECONDS = 60.0
TARGET_RSS_MB = 300.0
TARGET_NEAR_RECALL = 0.95  # of injected near duplicates whose true Jaccard reaches the threshold

VERBS = ["explain", "describe", "rewrite", "document", "trace", "refactor", "annotate", "decompile", "summarise", "compare", "fix", "extend"]
SUBJECTS = ["Player_UpdateCommon", "EnItem00_Init", "Actor_Kill", "Message_StartTextbox", "Flags_GetSwitch", "Flags_SetEventChkInf", "Collider_InitCylinder", "SkelAnime_Update", "Math_SmoothStepToF", "Audio_PlaySfxGeneral", "Gameplay_Update", "Camera_Update", "BossGanon_Draw", "EnHorse_Update", "ObjSwitch_Init", "DoorShutter_Update", "EnZl4_Init", "Interface_Update", "KaleidoScope_Draw", "Room_Draw", "Scene_CommandSpawnList", "func_80033F54", "ActorShape_Init"]
NOUNS = ["actor", "room", "scene", "flag", "switch", "collider", "skeleton", "animation", "cutscene", "textbox", "item", "rupee", "heart", "bottle", "ocarina", "song", "overlay", "segment", "display-list", "vertex", "matrix", "camera", "timer", "save-context", "inventory", "equipment", "magic", "arrow", "bomb", "hookshot", "boomerang", "shield", "tunic", "boots", "mask", "child", "adult", "link", "zelda", "ganon", "navi", "epona", "spawn", "entrance", "exit", "transition", "draw", "update", "init", "destroy", "params", "rotation", "position", "velocity", "gravity"]
PLACES = ["Kokiri Forest", "Hyrule Field", "Kakariko Village", "Death Mountain", "Goron City", "Zora's Domain", "Lake Hylia", "Gerudo Valley", "Deku Tree", "Dodongo's Cavern", "Jabu-Jabu's Belly", "Forest Temple", "Fire Temple", "Water Temple", "Shadow Temple", "Spirit Temple", "Ice Cavern", "Ganon's Castle", "Lon Lon Ranch", "Temple of Time"]
FILLER = ["the", "a", "of", "in", "for", "with", "when", "after", "before", "while", "so", "that", "this", "its", "which", "each", "every", "only", "also", "then", "how", "why", "what", "where", "must", "should", "could", "would", "can", "does"]
TYPES = ["s16", "s32", "u8", "u16", "u32", "f32", "Vec3f", "Vec3s", "Actor*", "PlayState*"]


def _sentence(rng: random.Random, words: int) -> str:
    parts = []
    for _ in range(words):
        roll = rng.random()
        if roll < 0.35:
            parts.append(rng.choice(FILLER))
        elif roll < 0.8:
            parts.append(rng.choice(NOUNS))
        elif roll < 0.9:
            parts.append(rng.choice(SUBJECTS))
        else:
            parts.append(rng.choice(PLACES))
    return " ".join(parts)


def synthetic_text(rng: random.Random) -> str:
    instruction = (
        f"{rng.choice(VERBS).capitalize()} how {rng.choice(SUBJECTS)} handles the {rng.choice(NOUNS)} "
        f"in {rng.choice(PLACES)}: {_sentence(rng, rng.randint(16, 22))}."
    )
    body = "; ".join(
        f"{rng.choice(TYPES)} {rng.choice(NOUNS).replace('-', '_')}{rng.randint(0, 99)} = "
        f"{rng.choice(SUBJECTS)}(play, 0x{rng.randint(0, 0xFFFF):04X})"
        for _ in range(rng.randint(2, 3))
    )
    return dedup_text(instruction, body)


def exact_variant(rng: random.Random, text: str) -> str:
    """Same normalised text: case, whitespace and punctuation changes only."""
    words = text.split()
    words = [w.upper() if rng.random() < 0.2 else w for w in words]
    return ("  " if rng.random() < 0.5 else "") + "   ".join(words) + rng.choice(["", "!", " ?", "..."])


def near_variant(rng: random.Random, text: str) -> str:
    """One word of the instruction replaced, dropped or doubled."""
    words = text.split(" ")
    index = rng.randrange(len(words) // 2)
    edit = rng.random()
    if edit < 0.6:
        words[index] = rng.choice(NOUNS + FILLER)
    elif edit < 0.8:
        del words[index]
    else:
        words.insert(index, words[index])
    return " ".join(words)


@dataclass
class Corpus:
    texts: list[str]
    injected: list[str | None]  # None, "exact" or "near" per text
    sources: list[int | None]  # index of the original an injected duplicate was made from


def build_corpus(n: int, dup_rate: float, seed: int) -> Corpus:
    rng = random.Random(seed)
    texts: list[str] = []
    injected: list[str | None] = []
    sources: list[int | None] = []
    originals: list[int] = []
    for _ in range(n):
        if originals and rng.random() < dup_rate:
            source = rng.choice(originals)
            kind = "exact" if rng.random() < 0.5 else "near"
            variant = exact_variant if kind == "exact" else near_variant
            texts.append(variant(rng, texts[source]))
            injected.append(kind)
            sources.append(source)
        else:
            originals.append(len(texts))
            texts.append(synthetic_text(rng))
            injected.append(None)
            sources.append(None)
    return Corpus(texts, injected, sources)


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def shingle_jaccard(a: str, b: str) -> float:
    def shingles(text: str) -> set[tuple[str, ...]]:
        words = normalise(text).split()
        return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dup-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--num-perm", type=int, default=64)
    parser.add_argument("--threshold", type=float, default=0.85)
    args = parser.parse_args()

    corpus = build_corpus(args.n, args.dup_rate, args.seed)
    mean_chars = sum(map(len, corpus.texts)) / len(corpus.texts)

    dedup = Deduplicator(near_threshold=args.threshold, num_perm=args.num_perm)
    found: list[str | None] = []
    start = time.perf_counter()
    for i, text in enumerate(corpus.texts):
        duplicate = dedup.add(f"ex{i}", text)
        found.append(duplicate.kind if duplicate else None)
    seconds = time.perf_counter() - start
    rss = peak_rss_mb()

    rows = [
        ("examples", f"{args.n:,}", "", ""),
        ("mean chars (instruction+input)", f"{mean_chars:.0f}", "", ""),
        ("num_perm, LSH bands x rows", f"{dedup.num_perm}, {dedup.bands} x {dedup.rows}", "", ""),
        ("seconds (add over all)", f"{seconds:.1f}", f"~{TARGET_SECONDS:.0f}", f"{seconds / TARGET_SECONDS:.2f}"),
        ("examples/s", f"{args.n / seconds:,.0f}", f"~{args.n / TARGET_SECONDS:,.0f}", ""),
        ("peak RSS MB", f"{rss:.0f}", f"<= {TARGET_RSS_MB:.0f}", f"{rss / TARGET_RSS_MB:.2f}"),
    ]
    for kind in ("exact", "near"):
        injected = [i for i, k in enumerate(corpus.injected) if k == kind]
        caught = sum(1 for i in injected if found[i] is not None)
        rows.append((f"{kind} dups found / injected", f"{caught:,} / {len(injected):,}", "",
                     f"recall {caught / max(len(injected), 1):.3f}"))
    near = [i for i, k in enumerate(corpus.injected) if k == "near"]
    missed_near = [i for i in near if found[i] is None]
    false_flags = sum(1 for k, f in zip(corpus.injected, found) if k is None and f is not None)
    rows.append(("flagged among non-injected", f"{false_flags:,}", "0", ""))
    # True 3-gram Jaccard to the original says whether LSH lost a pair or the threshold did.
    def mean_jaccard(indices: list[int]) -> str:
        if not indices:
            return "-"
        pairs = [(corpus.texts[i], corpus.texts[corpus.sources[i]]) for i in indices]
        return f"{sum(shingle_jaccard(a, b) for a, b in pairs) / len(pairs):.3f}"

    at_threshold = {i for i in near if shingle_jaccard(corpus.texts[i], corpus.texts[corpus.sources[i]])
                    >= dedup.near_threshold}
    caught = sum(1 for i in at_threshold if found[i] is not None)
    rows.append(("near dups with true Jaccard >= threshold", f"{caught:,} / {len(at_threshold):,}",
                 f">= {TARGET_NEAR_RECALL}", f"recall {caught / max(len(at_threshold), 1):.3f}"))
    # Candidates are verified by exact Jaccard, so nothing under the threshold may be reported.
    below = sum(1 for i in near if i not in at_threshold and found[i] is not None)
    rows.append(("near dups flagged with true Jaccard < threshold", f"{below:,}", "0", ""))
    rows.append(("mean true Jaccard, near dups injected", mean_jaccard(near), f">= {dedup.near_threshold}", ""))
    rows.append(("mean true Jaccard, near dups missed", mean_jaccard(missed_near), "", ""))

    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}}  {'measured':>16}  {'target':>10}  ratio")
    for name, value, target, ratio in rows:
        print(f"{name:<{width}}  {value:>16}  {target:>10}  {ratio}")


if __name__ == "__main__":
    main()
