"""Throughput of run_static_checks on one core over the calibration corpus, repeated to >= 5,000 examples, and
over ~3 KB answers stitched together from the corpus outputs, with the parse cache on and off: with it off every
C block is parsed again, as it is for a stream of distinct generated answers.

Prints one table row per case: name, measured, target, ratio.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ootgen.check import load_checks, read_examples  # noqa: E402
from ootgen.symbols import SymbolIndex  # noqa: E402
from ootgen.validate import cstructure  # noqa: E402
from ootgen.validate.static import run_static_checks  # noqa: E402

TARGET = 2000.0  # examples per second


def corpus(names=("good.jsonl", "bad.jsonl")) -> list:
    return [ex for name in names for ex in read_examples(ROOT / "tests" / "calibration" / name)]


def answers_3kb(examples: list, size: int = 2700) -> list:
    """Single-turn examples whose output is several corpus outputs joined until it reaches ~`size` characters."""
    single = [ex for ex in examples if not ex.turns and ex.output.strip()]
    out = []
    for i, ex in enumerate(single):
        parts, j = [ex.output], 1
        while sum(len(p) + 2 for p in parts) < size:
            parts.append(single[(i + 7 * j) % len(single)].output)
            j += 1
        out.append(dataclasses.replace(ex, output="\n\n".join(parts)))
    return out


def decomp_functions(root: Path, min_lines: int = 8, max_lines: int = 60) -> list[tuple[str, str, str]]:
    """(file, function name, source) of every top-level function of 8-60 lines in src/overlays/actors of a checkout."""
    import tree_sitter
    import tree_sitter_c

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_c.language()))
    found = []
    for path in sorted((root / "src" / "overlays" / "actors").rglob("*.c")):
        src = path.read_bytes()
        for node in parser.parse(src).root_node.children:
            if node.type != "function_definition":
                continue
            lines = node.end_point[0] - node.start_point[0] + 1
            if min_lines <= lines <= max_lines:
                text = src[node.start_byte:node.end_byte].decode("utf-8", "replace")
                declarator = node.child_by_field_name("declarator")
                name = declarator.text.decode().split("(")[0].split()[-1].lstrip("*") if declarator is not None else "?"
                found.append((path.relative_to(root).as_posix(), name, text))
    return found


def decomp_answers(root: Path) -> list:
    """Each real decomp function wrapped as a good answer: a short prose line and the function in a ```c fence."""
    from ootgen.records import Example

    return [Example(instruction=f"How does `{name}` work?", type="feature_implementation",
                    output=f"This is `{name}` as the decomp has it in `{rel}`:\n\n```c\n{code}\n```\n\n"
                           "It runs as part of the actor's update cycle and only uses the decomp's own helpers.")
            for rel, name, code in decomp_functions(root)]


def rate(examples: list, index, checks, n: int = 5000) -> tuple[float, float]:
    runs = (examples * (n // len(examples) + 1))[:max(n, len(examples))]
    for ex in examples:  # warm up: parser, policy and query creation are one-off costs
        run_static_checks(ex, index, checks)
    started = time.perf_counter()
    for ex in runs:
        run_static_checks(ex, index, checks)
    elapsed = time.perf_counter() - started
    size = sum(len(e.output) + len(e.input) + sum(len(t.content) for t in e.turns) for e in examples) / len(examples)
    return len(runs) / elapsed, size


def main() -> None:
    index = SymbolIndex.load("default")
    checks = load_checks()
    base = corpus()
    print(f"{'name':<52}{'measured':>10}{'target':>10}{'ratio':>8}")
    big = answers_3kb(base)
    # Typical answers: the held-out good set (written as real answers, 0.6-3.3 KB) and ~3 KB answers stitched
    # from good outputs only. The rows above mix in the bad corpus, so most of their 3 KB answers hold a C block
    # with a syntax error, which tree-sitter parses several times slower: a worst case, not a typical one.
    good = corpus(("good.jsonl", "heldout_good.jsonl"))
    heldout = corpus(("heldout_good.jsonl",))
    good_big = answers_3kb(good)
    cache_size = cstructure.PARSE_CACHE_SIZE[0]
    for label, examples, cached in (("calibration", base, True), ("3 KB answers", big, True),
                                    ("calibration, no cache", base, False), ("3 KB, no cache", big, False),
                                    ("held-out good answers, no cache", heldout, False),
                                    ("3 KB good answers, no cache", good_big, False)):
        cstructure.clear_parse_cache()
        cstructure.PARSE_CACHE_SIZE[0] = cache_size if cached else 0
        try:
            r, size = rate(examples, index, checks, n=5000 if cached else 1500)
        finally:
            cstructure.PARSE_CACHE_SIZE[0] = cache_size
        name = f"static {label} (ex/s, {size / 1024:.1f} KB)"
        print(f"{name:<52}{r:>10.0f}{TARGET:>10.0f}{r / TARGET:>8.2f}")
    # `ootgen check` spreads a large file over one worker process per CPU (parse cache off, as above).
    import json
    import os
    import tempfile

    from ootgen.check import check_file, load_scoring

    jobs = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "answers.jsonl"
        rows = (good_big * (6000 // len(good_big) + 1))[:6000]
        path.write_text("".join(json.dumps({"instruction": e.instruction, "input": e.input, "output": e.output}) + "\n"
                                for e in rows))
        cstructure.clear_parse_cache()
        cstructure.PARSE_CACHE_SIZE[0] = 0
        try:
            started = time.perf_counter()
            check_file(path, index=index, checks=checks, scoring=load_scoring(), jobs=jobs)
            elapsed = time.perf_counter() - started
        finally:
            cstructure.PARSE_CACHE_SIZE[0] = cache_size
    name = f"ootgen check --jobs {jobs}, 3 KB good answers (ex/s)"
    print(f"{name:<52}{len(rows) / elapsed:>10.0f}{'':>10}{'':>8}")


if __name__ == "__main__":
    main()
