"""Throughput of run_static_checks on one core over the calibration corpus, repeated to >= 5,000 examples.

Prints one table row: name, measured, target, ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ootgen.check import load_checks, read_examples  # noqa: E402
from ootgen.symbols import SymbolIndex  # noqa: E402
from ootgen.validate.static import run_static_checks  # noqa: E402

TARGET = 2000.0  # examples per second


def main() -> None:
    index = SymbolIndex.load("default")
    checks = load_checks()
    corpus = [ex for name in ("good.jsonl", "bad.jsonl") for ex in read_examples(ROOT / "tests" / "calibration" / name)]
    examples = (corpus * (5000 // len(corpus) + 1))[:max(5000, len(corpus))]
    for ex in corpus:  # warm up: parser, policy and query creation are one-off costs
        run_static_checks(ex, index, checks)
    started = time.perf_counter()
    for ex in examples:
        run_static_checks(ex, index, checks)
    elapsed = time.perf_counter() - started
    rate = len(examples) / elapsed
    size = sum(len(e.output) + len(e.input) for e in corpus) / len(corpus)
    print(f"{'name':<32}{'measured':>14}{'target':>10}{'ratio':>8}")
    print(f"{'static checks (ex/s, ' + format(size / 1024, '.1f') + ' KB avg)':<32}{rate:>14.0f}{TARGET:>10.0f}{rate / TARGET:>8.2f}")


if __name__ == "__main__":
    main()
