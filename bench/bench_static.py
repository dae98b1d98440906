"""Static L1 figures, one `ROW name | measured | target | verdict` line each (the protocol bench/run_all.py reads).

1. Real decomp actor functions (8-60 lines, src/overlays/actors of a zeldaret/oot checkout given with --decomp DIR or
   $OOTGEN_DECOMP) wrapped as good answers: the share rejected with the shipped index (target <= 1 %), and with an
   index built from that checkout when --checkout-index is given. Skipped, saying so, without a checkout.
2. The subtle-error set (tests/calibration/subtle_bad.jsonl / subtle_good.jsonl): bad answers rejected (target
   >= 80 %) and good answers rejected (target 0), static-only, shipped index and type files.
3. Speed on one core: run_static_checks on ~3 KB answers stitched from the good corpora, parse cache off (every C
   block parsed again, as for a stream of distinct generated answers); target >= 2,000 answers/s, printed as a ratio.
   Beside it, the parser alone on the same answers (their C blocks through cstructure.parse_c: preprocessing and
   tree-sitter, no check), the rate no check layer on this parser can exceed.

Usage: python bench/bench_static.py [--decomp DIR] [--checkout-index]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ootgen.check import check_examples, load_checks, load_example_types, load_scoring, read_examples  # noqa: E402
from ootgen.symbols import SymbolIndex  # noqa: E402
from ootgen.validate import compile_policy, cstructure  # noqa: E402
from ootgen.validate.static import run_static_checks  # noqa: E402

TARGET_RATE = 2000.0  # answers per second, one core
TARGET_DECOMP = 0.01  # share of real decomp functions rejected
TARGET_SUBTLE = 0.80  # share of subtle bad answers rejected


def corpus(names: tuple[str, ...]) -> list:
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


def rejected(examples: list, index: SymbolIndex) -> int:
    results = check_examples(examples, index=index, checks=load_checks(), scoring=load_scoring(),
                             example_types=load_example_types())
    return sum(not r.accepted for r in results)


def row(name: str, measured: str, target: str = "", verdict: str = "") -> None:
    print(f"ROW {name} | {measured} | {target} | {verdict}", flush=True)


def bench_decomp(decomp: str | None, checkout_index: bool) -> None:
    name = "real decomp actor functions (8-60 lines) as good answers, rejected"
    if not decomp:
        row(name, "skipped: no checkout (pass --decomp DIR or set OOTGEN_DECOMP)", f"<= {TARGET_DECOMP:.0%}", "skipped")
        return
    root = Path(decomp)
    if not (root / "src" / "overlays" / "actors").is_dir():
        row(name, f"skipped: {root} has no src/overlays/actors", f"<= {TARGET_DECOMP:.0%}", "skipped")
        return
    answers = decomp_answers(root)
    n = rejected(answers, SymbolIndex.load("default"))
    row(f"{name}, shipped index", f"{n}/{len(answers)} = {n / len(answers):.2%}", f"<= {TARGET_DECOMP:.0%}",
        "met" if n / len(answers) <= TARGET_DECOMP else "MISSED")
    if checkout_index:
        from ootgen.index import build_index

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "checkout.json.gz"
            build_index(root).save(path)
            n = rejected(answers, SymbolIndex.load(path))
        row(f"{name}, index built from the checkout", f"{n}/{len(answers)} = {n / len(answers):.2%}")


def bench_subtle() -> None:
    index = SymbolIndex.load("default")
    bad, good = corpus(("subtle_bad.jsonl",)), corpus(("subtle_good.jsonl",))
    nb, ng = rejected(bad, index), rejected(good, index)
    row("subtle-error set: bad answers rejected, static-only", f"{nb}/{len(bad)} = {nb / len(bad):.0%}",
        f">= {TARGET_SUBTLE:.0%}", "met" if nb / len(bad) >= TARGET_SUBTLE else "MISSED")
    row("subtle-error set: good answers rejected, static-only", f"{ng}/{len(good)}", "0", "met" if ng == 0 else "MISSED")


def rate(examples: list, index: SymbolIndex, policy, n: int) -> float:
    runs = (examples * (n // len(examples) + 1))[:max(n, len(examples))]
    for ex in examples[:50]:  # warm up: parser and query creation are one-off costs
        run_static_checks(ex, index, policy)
    # CPU time of this process: the machine is shared, and wall time would count other processes' turns
    started = time.process_time()
    for ex in runs:
        run_static_checks(ex, index, policy)
    return len(runs) / (time.process_time() - started)


def parse_rate(examples: list, policy, n: int) -> float:
    """Answers per CPU second of parsing their C blocks alone (cstructure.parse_c), no check run."""
    from ootgen.validate.static import answer_code_blocks

    codes = [[b.code for b in answer_code_blocks(ex, policy) if b.lang == "c" and b.code.strip()] for ex in examples]
    runs = (codes * (n // len(codes) + 1))[:max(n, len(codes))]
    started = time.process_time()
    for blocks in runs:
        for code in blocks:
            cstructure.parse_c(code)
    return len(runs) / (time.process_time() - started)


def bench_speed() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    index = SymbolIndex.load("default")
    policy = compile_policy(load_checks())
    good = answers_3kb(corpus(("good.jsonl", "heldout_good.jsonl", "subtle_good.jsonl")))
    size = sum(len(e.output) for e in good) / len(good)
    cache = cstructure.PARSE_CACHE_SIZE[0]
    cstructure.PARSE_CACHE_SIZE[0] = 0
    cstructure.clear_parse_cache()
    try:
        per_s = rate(good, index, policy, 3000)
        parse_only = parse_rate(good, policy, 3000)
    finally:
        cstructure.PARSE_CACHE_SIZE[0] = cache
    row(f"static L1 answers per CPU second, one core, {size / 1024:.1f} KB good answers, parse cache off",
        f"{per_s:,.0f}/s (ratio {per_s / TARGET_RATE:.2f})", f">= {TARGET_RATE:,.0f}/s",
        "met" if per_s >= TARGET_RATE else "MISSED")
    row("the same answers, their C blocks parsed alone (preprocessing + tree-sitter, no check), per CPU second",
        f"{parse_only:,.0f}/s (checks included: {per_s / parse_only:.2f} of it)", "", "info")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decomp", default=os.environ.get("OOTGEN_DECOMP"), help="a zeldaret/oot checkout")
    parser.add_argument("--checkout-index", action="store_true", help="also measure with an index built from it")
    args = parser.parse_args(argv)
    bench_decomp(args.decomp, args.checkout_index)
    bench_subtle()
    bench_speed()


if __name__ == "__main__":
    main()
