"""Calibration of the static checks: recall per defect class on bad.jsonl, false rejections on good.jsonl.

Run with `-s` to see the figures.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from ootgen.check import check_examples, load_checks, load_scoring, read_examples
from ootgen.symbols import SymbolIndex

HERE = Path(__file__).parent / "calibration"

# Which finding codes count as catching each labelled defect class.
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

# The six example types as the static checks see them (the full type files live in configs/types/).
TYPES = {
    "code_explanation": {"name": "code_explanation", "carries_input": True, "input_kind": "c_code", "requires_code_in_output": False},
    "feature_implementation": {"name": "feature_implementation", "carries_input": False, "requires_code_in_output": True},
    "debugging_help": {"name": "debugging_help", "carries_input": False, "requires_code_in_output": False},
    "architecture_question": {"name": "architecture_question", "carries_input": False, "requires_code_in_output": False},
    "conversational": {"name": "conversational", "carries_input": False, "requires_code_in_output": False},
    "code_modification": {"name": "code_modification", "carries_input": False, "requires_code_in_output": True},
}


@pytest.fixture(scope="module")
def setup():
    return SymbolIndex.load("default"), load_checks(), load_scoring()


def _labels(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _corpus_checks(good_name: str, bad_name: str) -> None:
    good = _labels(HERE / good_name)
    bad = _labels(HERE / bad_name)
    assert len(good) >= 60
    assert {g["type"] for g in good} == set(TYPES)
    per_class = defaultdict(int)
    for b in bad:
        per_class[b["defect"]] += 1
    assert set(per_class) == set(CLASS_CODES)
    assert min(per_class.values()) >= 8


def test_corpus_is_large_enough():
    _corpus_checks("good.jsonl", "bad.jsonl")


def test_heldout_corpus_is_large_enough():
    """The held-out set was written independently of good/bad.jsonl (not mutations of them)."""
    _corpus_checks("heldout_good.jsonl", "heldout_bad.jsonl")


def _calibrate(setup, title: str, good_name: str, bad_name: str) -> None:
    index, checks, scoring = setup
    bad_labels = _labels(HERE / bad_name)
    bad = check_examples(read_examples(HERE / bad_name), index=index, checks=checks, scoring=scoring, example_types=TYPES)
    caught, total, missed = defaultdict(int), defaultdict(int), []
    for label, result in zip(bad_labels, bad):
        cls = label["defect"]
        total[cls] += 1
        if {f.code for f in result.findings} & CLASS_CODES[cls]:
            caught[cls] += 1
        else:
            missed.append((cls, label["instruction"][:50]))
    good = check_examples(read_examples(HERE / good_name), index=index, checks=checks, scoring=scoring, example_types=TYPES)
    rejected = [r for r in good if not r.accepted]

    print(f"\nstatic check calibration, {title} (default index)")
    print(f"{'class':<18}{'caught':>8}{'total':>7}{'recall':>9}")
    for cls in CLASS_CODES:
        print(f"{cls:<18}{caught[cls]:>8}{total[cls]:>7}{caught[cls] / total[cls]:>9.0%}")
    print(f"false rejections on good examples: {len(rejected)}/{len(good)} = {len(rejected) / len(good):.1%}")
    for r in rejected:
        print("  rejected good", r.index, [(f.code, f.message) for f in r.findings if f.severity == "error"])
    for m in missed:
        print("  missed", m)

    for cls in CLASS_CODES:
        assert caught[cls] / total[cls] >= 0.95, (cls, missed)
    assert len(rejected) / len(good) <= 0.03


def test_recall_per_defect_class_and_false_rejections(setup):
    _calibrate(setup, "tuning corpus good/bad.jsonl", "good.jsonl", "bad.jsonl")


def test_heldout_recall_and_false_rejections(setup):
    """The same targets on the independent held-out set, which the checker was never tuned on."""
    _calibrate(setup, "held-out corpus heldout_good/heldout_bad.jsonl", "heldout_good.jsonl", "heldout_bad.jsonl")
