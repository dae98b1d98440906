"""Calibration of the static checks with the SHIPPED type files (configs/types), counting rejections only (a
warning is not a catch): per defect class on bad.jsonl / heldout_bad.jsonl, false rejections on the good sets,
and the subtle-error set (subtle_bad/subtle_good.jsonl, written apart from the tuning sets).

Run with `-s` to see the figures (README "Calibration" quotes them).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from ootgen.check import check_examples, load_checks, load_example_types, load_scoring, read_examples
from ootgen.symbols import SymbolIndex

HERE = Path(__file__).parent / "calibration"

# Which finding codes (at severity error, in a rejected example) count as catching each labelled defect class.
CLASS_CODES = {
    "C_SYNTAX": {"C_SYNTAX"},
    "UNKNOWN_FUNCTION": {"UNKNOWN_FUNCTION"},
    "ARG_COUNT": {"ARG_COUNT"},
    "NAMING_ERA": {"NAMING_ERA_MIX", "OLD_NAME"},
    "UNKNOWN_FIELD": {"UNKNOWN_FIELD"},
    "BAD_RAM_ADDRESS": {"BAD_RAM_ADDRESS"},
    "ASM": {"ASM_BAD_MNEMONIC", "ASM_BAD_REGISTER", "ASM_DELAY_SLOT"},
    "MARKDOWN": {"UNCLOSED_FENCE", "TOO_SHORT", "MISSING_CODE", "EMPTY_OUTPUT", "MISSING_INPUT"},
}
SUBTLE_CODES = {
    "CONSTANT": {"UNKNOWN_CONSTANT", "OLD_NAME"},  # OLD_NAME: a constant that was renamed, reported with its new name
    "INCLUDE": {"UNKNOWN_INCLUDE"},
    "FIELD": {"UNKNOWN_FIELD"},
    "ASSET": {"ASSET_NOT_LOADED"},
    "REMOVED_API": {"OLD_NAME", "NAMING_ERA_MIX"},
    "ADDRESS": {"BAD_RAM_ADDRESS"},
    "DIFF": {"UNKNOWN_CONSTANT", "OLD_NAME", "UNKNOWN_INCLUDE", "UNKNOWN_FUNCTION", "ARG_COUNT", "UNKNOWN_FIELD"},
    "CALL": {"UNKNOWN_FUNCTION", "ARG_COUNT"},
}
# The good sets were written before the type files required an input and code for debugging_help. The inputs were
# added since (the broken code each question is about); three answers still give their fix as a checklist or an
# inline call, not the corrected code in a fence the type requires: MISSING_CODE is what rejects them (README).
SHAPE_CODES = {"MISSING_CODE"}


@pytest.fixture(scope="module")
def setup():
    return SymbolIndex.load("default"), load_checks(), load_scoring(), load_example_types()


def _labels(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _corpus_checks(good_name: str, bad_name: str, classes: dict, *, min_good: int, min_per_class: int) -> None:
    good = _labels(HERE / good_name)
    bad = _labels(HERE / bad_name)
    assert len(good) >= min_good
    per_class: dict[str, int] = defaultdict(int)
    for b in bad:
        per_class[b["defect"]] += 1
    assert set(per_class) == set(classes)
    assert min(per_class.values()) >= min_per_class


def test_corpus_is_large_enough():
    _corpus_checks("good.jsonl", "bad.jsonl", CLASS_CODES, min_good=60, min_per_class=8)


def test_heldout_corpus_is_large_enough():
    """The held-out set was written independently of good/bad.jsonl (not mutations of them)."""
    _corpus_checks("heldout_good.jsonl", "heldout_bad.jsonl", CLASS_CODES, min_good=60, min_per_class=8)


def test_subtle_corpus_is_large_enough():
    _corpus_checks("subtle_good.jsonl", "subtle_bad.jsonl", SUBTLE_CODES, min_good=20, min_per_class=2)
    assert len(_labels(HERE / "subtle_bad.jsonl")) >= 40


def _calibrate(setup, title: str, good_name: str, bad_name: str, classes: dict) -> tuple[dict, dict, list]:
    index, checks, scoring, types = setup
    bad_labels = _labels(HERE / bad_name)
    bad = check_examples(read_examples(HERE / bad_name), index=index, checks=checks, scoring=scoring, example_types=types)
    caught: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    missed = []
    for label, result in zip(bad_labels, bad, strict=True):
        cls = label["defect"]
        total[cls] += 1
        errors = {f.code for f in result.findings if f.severity == "error"}
        if not result.accepted and errors & classes[cls]:
            caught[cls] += 1
        else:
            missed.append((cls, label["instruction"][:50], sorted(f.code for f in result.findings)))
    good = check_examples(read_examples(HERE / good_name), index=index, checks=checks, scoring=scoring, example_types=types)
    rejected = [r for r in good if not r.accepted]

    print(f"\nstatic check calibration, {title} (shipped index and type files; rejections only)")
    print(f"{'class':<18}{'rejected':>9}{'total':>7}{'recall':>9}")
    for cls in classes:
        print(f"{cls:<18}{caught[cls]:>9}{total[cls]:>7}{caught[cls] / total[cls]:>9.0%}")
    print(f"bad rejected for their defect: {sum(caught.values())}/{len(bad_labels)}")
    print(f"false rejections on good examples: {len(rejected)}/{len(good)} = {len(rejected) / len(good):.1%}")
    for r in rejected:
        print("  rejected good", r.index, [(f.code, f.message) for f in r.findings if f.severity == "error"])
    for m in missed:
        print("  missed", m)
    return caught, total, rejected


def _shape_only(rejected) -> bool:
    return all({f.code for f in r.findings if f.severity == "error"} <= SHAPE_CODES for r in rejected)


def test_recall_per_defect_class_and_false_rejections(setup):
    caught, total, rejected = _calibrate(setup, "tuning corpus good/bad.jsonl", "good.jsonl", "bad.jsonl", CLASS_CODES)
    for cls in CLASS_CODES:
        assert caught[cls] / total[cls] >= 0.95, cls
    # 2/60 good examples are rejected, debugging_help answers without the code fence the shipped type requires
    assert len(rejected) <= 2 and _shape_only(rejected)


def test_heldout_recall_and_false_rejections(setup):
    """The same measures on the independent held-out set, which the checker was never tuned on."""
    caught, total, rejected = _calibrate(setup, "held-out corpus heldout_good/heldout_bad.jsonl", "heldout_good.jsonl",
                                         "heldout_bad.jsonl", CLASS_CODES)
    for cls in CLASS_CODES:
        assert caught[cls] / total[cls] >= 0.95, cls
    assert len(rejected) <= 1 and _shape_only(rejected)


def test_subtle_errors_are_rejected_and_good_answers_are_not(setup):
    """Issue 11's target: >= 80 % of the subtle bad answers rejected static-only, 0 good answers rejected."""
    caught, total, rejected = _calibrate(setup, "subtle errors subtle_good/subtle_bad.jsonl", "subtle_good.jsonl",
                                         "subtle_bad.jsonl", SUBTLE_CODES)
    assert sum(caught.values()) / sum(total.values()) >= 0.8
    assert rejected == []
