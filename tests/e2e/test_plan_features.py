"""End to end: grounded, laddered and question-seeded runs keep their provenance in the outputs."""

from __future__ import annotations

import json

from tests.e2e.conftest import Cli
from tests.test_plan_features import QUESTIONS, _decomp_with_index


def test_grounded_ladder_and_question_run_records_provenance(cli: Cli, tmp_path):
    root, index_path = _decomp_with_index(tmp_path)
    questions = tmp_path / "questions.txt"
    questions.write_text("\n".join(QUESTIONS) + "\n")
    result = cli.run_in_process(
        "--questions", str(questions),
        "--set", f"grounding.index={index_path}", "--set", "grounding.enabled=true", "--set", f"grounding.decomp_dir={root}",
        "--set", "grounding.types=[code_explanation]", "--set", "grounding.min_lines=3",
        "--set", "ladders.enabled=true", "--set", "ladders.types=[feature_implementation]",
        "--set", "mix={code_explanation: 2, feature_implementation: 1, debugging_help: 0, architecture_question: 0,"
                 " conversational: 0, code_modification: 0}",
        num=18,
    )
    assert result.returncode == 0, result.stderr
    out = cli.outputs()
    lines = out.lines()
    provenance = out.metadata()["example_provenance"]
    assert len(lines) == 18

    grounded = [p for p in provenance if "source" in p]
    assert grounded, "no grounded example was accepted"
    for item in grounded:
        source = item["source"]
        body = "\n".join((root / source["file"]).read_text().splitlines()[source["line"] - 1 : source["end_line"]])
        assert lines[item["line"] - 1]["input"] == body  # the real function, verbatim
        assert source["commit"] == "a" * 40

    asked = {p["question"] for p in provenance if "question" in p}
    assert asked <= set(QUESTIONS)
    planned = {q for row in out.db("SELECT extras FROM tasks") for q in json.loads(row["extras"]).get("questions", []) if q}
    assert planned == set(QUESTIONS)  # every question became a task
    judged = [json.loads(r["extras"])["question"] for r in out.db(
        "SELECT extras FROM candidates WHERE status != 'pending' AND extras LIKE '%question%'")]
    assert set(judged) == set(QUESTIONS), "question-seeded candidates were left unjudged"

    steps_by_ladder: dict[int, list[tuple[int, int]]] = {}
    for item in provenance:
        if "ladder" in item:
            steps_by_ladder.setdefault(item["ladder"]["task"], []).append((item["line"], item["ladder"]["step"]))
    assert steps_by_ladder, "no ladder example was accepted"
    for steps in steps_by_ladder.values():
        lines_in_order = [line for line, _ in sorted(steps, key=lambda s: s[1])]
        assert lines_in_order == sorted(lines_in_order)  # later steps come later in the dataset
        assert lines_in_order == list(range(lines_in_order[0], lines_in_order[0] + len(lines_in_order)))  # kept together
