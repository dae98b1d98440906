"""Compiler layer on a decomp checkout; prints `name: value` lines and `ROW` lines for bench/run_all.py.

1. The subtle-error set (tests/calibration/subtle_bad.jsonl / subtle_good.jsonl) checked as `ootgen check --decomp`
   does (static checks, then the compiler layer): bad answers rejected (target >= 95 %), good ones (target 0);
   and the good answers of the tuning and held-out sets, for information.
2. Real actor functions (8-60 lines, src/overlays/actors of the checkout) each wrapped as a good answer must
   compile with no COMPILE_ERROR (skipped with --calibration-only).

    python bench/bench_compile.py /tmp/oot [--limit N] [--show N] [--fragments N] [--calibration-only]

Without a checkout path (argument or OOTGEN_DECOMP) it prints why and exits 0: the checkout is not in the repo.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ootgen.check import check_examples, load_checks, load_example_types, load_scoring, read_examples
from ootgen.symbols import SymbolIndex
from ootgen.validate.compile import AnswerCode, CodeBlock, CompileChecker, Unavailable, compile_findings

_FUNC = re.compile(r"^(?![ \t#/])(?:[\w*]+[ \t]+)+\**[ \t]*(\w+)\([^;{}]*\)\s*\{[ \t]*$", re.M)
CALIBRATION = Path(__file__).resolve().parent.parent / "tests" / "calibration"
TARGET_SUBTLE = 0.95  # share of the subtle bad answers rejected with the compiler layer
PROSE = "Here is the function from the decomp, as it is in the actor's file:\n\n```c\n"
FIRST_LINE = PROSE.count("\n") + 1


def real_functions(checkout: Path, min_lines: int = 8, max_lines: int = 60) -> list[tuple[str, str]]:
    """(file, function text) of every actor function whose definition spans min..max lines."""
    out = []
    for path in sorted((checkout / "src" / "overlays" / "actors").rglob("*.c")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in _FUNC.finditer(text):
            end = text.find("\n}", m.end())
            if end < 0:
                continue
            body = text[m.start() : end + 2]
            if min_lines <= body.count("\n") + 1 <= max_lines and "#pragma GLOBAL_ASM" not in body:
                out.append((str(path.relative_to(checkout)), body))
    return out


def _body(function: str) -> str:
    """The statements of a function definition, without its header and closing brace."""
    return function[function.index("{\n") + 2 : function.rindex("}")]


def _timed(checker: CompileChecker, answers: list[AnswerCode], ground: bool = True) -> tuple[list, float, float]:
    """(results, wall seconds, CPU seconds of this process and its gcc children)."""
    before, started = os.times(), time.perf_counter()
    results = checker.check(answers, ground=ground)
    wall, after = time.perf_counter() - started, os.times()
    cpu = sum(getattr(after, k) - getattr(before, k) for k in ("user", "system", "children_user", "children_system"))
    return results, wall, cpu


def _calibration(checker: CompileChecker, name: str) -> tuple[int, int, int]:
    """(rejected, examples, examples with a COMPILE_ERROR) of one calibration file, checked as `ootgen check --decomp`
    does: the static checks, then the compiler layer."""
    examples = list(read_examples(CALIBRATION / name))
    checks = load_checks()
    compiled = compile_findings(checker, examples, checks)
    results = check_examples(examples, index=SymbolIndex.load("default"), checks=checks, scoring=load_scoring(),
                             example_types=load_example_types(), compiled=compiled)
    return (sum(not r.accepted for r in results), len(examples),
            sum(any(f.severity == "error" for f in found) for found in compiled))


def bench_calibration(checker: CompileChecker) -> None:
    """The subtle-error set with the compiler layer (issue 11's target), and the good answers of every set."""
    bad, n_bad, bad_gcc = _calibration(checker, "subtle_bad.jsonl")
    good, n_good, good_gcc = _calibration(checker, "subtle_good.jsonl")
    print(f"ROW subtle-error set: bad answers rejected, static + compiler layer | {bad}/{n_bad} = {bad / n_bad:.0%} | "
          f">= {TARGET_SUBTLE:.0%} | {'ok' if bad / n_bad >= TARGET_SUBTLE else 'MISS'}")
    print(f"ROW subtle-error set: good answers rejected, static + compiler layer | {good}/{n_good} | 0 | "
          f"{'ok' if good == 0 else 'MISS'}")
    print(f"ROW subtle-error set: answers with a COMPILE_ERROR (the compiler layer alone) | bad {bad_gcc}/{n_bad}, "
          f"good {good_gcc}/{n_good} |  | info")
    for name in ("good.jsonl", "heldout_good.jsonl"):
        rejected, n, by_gcc = _calibration(checker, name)
        print(f"ROW {name}: good answers rejected, static + compiler layer | {rejected}/{n}, {by_gcc} with a "
              f"COMPILE_ERROR |  | info")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", nargs="?", default=None)
    parser.add_argument("--decomp", default=None, help="the checkout (same as the positional argument)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N functions")
    parser.add_argument("--show", type=int, default=10, help="print the first N rejections")
    parser.add_argument("--fragments", type=int, default=1000, help="actor function bodies checked as fragments")
    parser.add_argument("--calibration-only", action="store_true", help="only the calibration sets, not the real functions")
    args = parser.parse_args()
    args.checkout = args.checkout or args.decomp or os.environ.get("OOTGEN_DECOMP")
    if not args.checkout:
        print("skipped: no decomp checkout given (argument or OOTGEN_DECOMP)")
        return 0
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        checker = CompileChecker.from_checkout(args.checkout, cache_dir=cache)
        if isinstance(checker, Unavailable):
            print(f"skipped: {checker.status}")
            return 0
        setup = time.perf_counter() - started
        print(f"checker: {checker.status}")
        bench_calibration(checker)
        if args.calibration_only:
            return 0
        functions = real_functions(Path(args.checkout))
        if args.limit:
            functions = functions[: args.limit]
        answers = [AnswerCode((CodeBlock(body, FIRST_LINE),)) for _, body in functions]
        results, wall, cpu = _timed(checker, answers)
        rejected = [(functions[i], r) for i, r in enumerate(results) if any(f.severity == "error" for f in r)]
        print(f"setup_seconds_first_use: {setup:.1f}")
        print(f"real_actor_functions: {len(answers)}")
        print(f"source_files: {len({f for f, _ in functions})}")
        print(f"rejected: {len(rejected)}")
        print(f"rejected_percent: {100 * len(rejected) / max(1, len(answers)):.2f}")
        print(f"answers_per_second_wall: {len(answers) / wall:.1f}")
        print(f"answers_per_cpu_second: {len(answers) / cpu:.1f}")
        # the same functions' bodies as free fragments (no file: the wrapper with thisx/play), for speed only
        fragments = [AnswerCode((CodeBlock(_body(text), FIRST_LINE),)) for _, text in functions[: args.fragments]]
        frag_results, frag_wall, frag_cpu = _timed(checker, fragments)
        print(f"fragments: {len(fragments)}")
        print(f"fragments_rejected: {sum(any(f.severity == 'error' for f in r) for r in frag_results)}")
        print(f"fragments_per_second_wall: {len(fragments) / frag_wall:.1f}")
        print(f"fragments_per_cpu_second: {len(fragments) / frag_cpu:.1f}")
        # the same bodies as free answers: compiled after the decomp headers (and the actor's own header) only,
        # never in their real file; rejections here are the file-local names a snippet cannot show
        free_results, free_wall, free_cpu = _timed(checker, fragments, ground=False)
        print(f"free_fragments: {len(fragments)}")
        print(f"free_fragments_rejected: {sum(any(f.severity == 'error' for f in r) for r in free_results)}")
        print(f"free_fragments_per_second_wall: {len(fragments) / free_wall:.1f}")
        print(f"free_fragments_per_cpu_second: {len(fragments) / free_cpu:.1f}")
        # rows for bench/run_all.py: `ROW name | measured | target | verdict`
        per_cpu = len(answers) / cpu
        print(f"ROW real actor functions rejected (in their file) | {len(rejected)} of {len(answers)} | 0 | "
              f"{'ok' if not rejected else 'MISS'}")
        print(f"ROW real functions answers/s per CPU second | {per_cpu:.0f} | >= 100 | "
              f"{per_cpu / 100:.2f} {'ok' if per_cpu >= 100 else 'MISS'}")
        free_per_cpu = len(fragments) / free_cpu if fragments else 0.0
        print(f"ROW free fragments answers/s per CPU second | {free_per_cpu:.0f} | >= 100 | "
              f"{free_per_cpu / 100:.2f} {'ok' if free_per_cpu >= 100 else 'MISS'}")
        causes = Counter(re.sub(r"'[^']*'", "'X'", f.message.split(": ", 1)[1]) for _, r in rejected for f in r[:1])
        for cause, n in causes.most_common(8):
            print(f"cause: {n} {cause}")
        for (file, body), r in rejected[: args.show]:
            print(f"--- {file}: {body.splitlines()[0]}", file=sys.stderr)
            for f in r:
                print(f"    {f.message}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
