"""`ootgen check --jobs`: a large file checked in worker processes gives exactly the one-process report."""

from __future__ import annotations

import json

from ootgen.check import PARALLEL_MIN_EXAMPLES, check_file, load_checks, load_scoring, read_examples
from ootgen.symbols import SymbolIndex
from tests.conftest import REPO


def test_parallel_check_matches_the_sequential_report_in_order(tmp_path):
    corpus = [line for name in ("good.jsonl", "bad.jsonl")
              for line in (REPO / "tests" / "calibration" / name).read_text().splitlines() if line.strip()]
    rows = (corpus * (PARALLEL_MIN_EXAMPLES // len(corpus) + 1))[:PARALLEL_MIN_EXAMPLES + 7]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(rows) + "\n")
    common = dict(index=SymbolIndex.load("default"), checks=load_checks(), scoring=load_scoring())
    one = check_file(path, jobs=1, **common)
    two = check_file(path, jobs=2, **common)
    assert len(two.results) == len(rows) == len(list(read_examples(path)))
    assert [r.as_dict() for r in two.results] == [r.as_dict() for r in one.results]
    assert two.by_code == one.by_code and two.failed == one.failed > 0
    assert [json.loads(line)["index"] for line in [json.dumps(r.as_dict()) for r in two.results]] == list(range(len(rows)))
