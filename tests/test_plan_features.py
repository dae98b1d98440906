"""Plan features beyond the mix: community questions, difficulty ladders, grounding in the user's decomp."""

from __future__ import annotations

import itertools
import json

import pytest

from ootgen.errors import ConfigError
from ootgen.index import build_index
from ootgen.load import load_project
from ootgen.plan import generation_vars, iter_plan
from ootgen.questions import classify, load_questions
from tests.test_index import _tree, _write

QUESTIONS = [
    "How do I make a custom actor that follows Link around?",
    "My game crashes when my actor spawns, what is wrong?",
    "How does the game decide which room to load?",
]


def _config(project_dir) -> str:
    return str(project_dir / "configs" / "default.yaml")


def test_questions_load_from_txt_jsonl_and_csv(tmp_path):
    (tmp_path / "q.txt").write_text("# a comment\n" + "\n".join(QUESTIONS) + "\n\n")
    (tmp_path / "q.jsonl").write_text("\n".join(json.dumps({"question": q}) for q in QUESTIONS) + "\n")
    (tmp_path / "q.csv").write_text("id,question\n" + "\n".join(f'{i},"{q}"' for i, q in enumerate(QUESTIONS)) + "\n")
    for name in ("q.txt", "q.jsonl", "q.csv"):
        assert load_questions(tmp_path / name) == QUESTIONS


def test_a_bad_jsonl_question_line_names_file_and_line(tmp_path):
    (tmp_path / "q.jsonl").write_text(json.dumps({"question": "ok?"}) + "\n{oops\n")
    with pytest.raises(ConfigError) as error:
        load_questions(tmp_path / "q.jsonl")
    assert "q.jsonl:2" in str(error.value)


def test_questions_go_to_the_best_fitting_type_and_context(project_dir):
    project = load_project(_config(project_dir))
    assert classify(QUESTIONS[1], project)[0] == "debugging_help"
    assert classify(QUESTIONS[0], project)[0] == "feature_implementation"
    kind, context = classify(QUESTIONS[2], project)
    assert kind == "architecture_question" and context == "scene_system"


def test_question_tasks_come_first_and_use_the_question_as_instruction(project_dir, tmp_path):
    (tmp_path / "q.txt").write_text("\n".join(QUESTIONS) + "\n")
    project = load_project(_config(project_dir), [f"questions={tmp_path / 'q.txt'}"])
    tasks = list(itertools.islice(iter_plan(project), 6))
    asked = [q for t in tasks for q in t.questions if q]
    assert sorted(asked) == sorted(QUESTIONS)
    assert all(t.questions for t in tasks[: len({(t.type, t.context) for t in tasks if t.questions})])
    prompt = project.renderer.generation_prompt(generation_vars(tasks[0], project, structured=True))
    assert tasks[0].questions[0] in prompt.user and "<question" in prompt.user


def test_ladder_tasks_rise_in_level_on_one_topic(project_dir):
    project = load_project(_config(project_dir), ["ladders.enabled=true", "ladders.types=[feature_implementation]"])
    ladders = [t for t in itertools.islice(iter_plan(project), 30) if t.type == "feature_implementation"]
    assert ladders and all(t.ladder for t in ladders)
    for task in ladders:
        assert len(set(task.topics)) == 1
        assert list(task.levels) == sorted(task.levels, key=["beginner", "intermediate", "advanced"].index)
        assert len(task.levels) >= 2
    others = [t for t in itertools.islice(iter_plan(project), 30) if t.type != "feature_implementation"]
    assert others and not any(t.ladder for t in others)


def test_ladder_option_naming_an_unknown_type_is_a_config_error(project_dir):
    with pytest.raises(ConfigError) as error:
        load_project(_config(project_dir), ["ladders.enabled=true", "ladders.types=[feature_implementaton]"])
    assert "did you mean 'feature_implementation'" in str(error.value)


def _decomp_with_index(tmp_path):
    root = _tree(tmp_path / "oot")
    _write(root, "src/overlays/actors/ovl_En_Test/z_en_test2.c", "\n".join([
        "void EnTest_Update(Actor* thisx, PlayState* play) {",
        "    EnTest* this = (EnTest*)thisx;",
        "    this->timer++;",
        "    if (this->timer > 20) {",
        "        Actor_Kill(&this->actor);",
        "    }",
        "}",
        "",
    ]))
    index_path = tmp_path / "oot_symbols.json.gz"
    build_index(root).save(index_path)
    return root, index_path


def test_grounded_tasks_carry_real_function_bodies_and_provenance(project_dir, tmp_path):
    root, index_path = _decomp_with_index(tmp_path)
    project = load_project(_config(project_dir), [
        f"symbols={index_path}", "grounding.enabled=true", f"grounding.decomp_dir={root}",
        "grounding.types=[code_explanation, debugging_help]", "grounding.min_lines=3",
    ])
    grounded = [t for t in itertools.islice(iter_plan(project), 24) if t.type in ("code_explanation", "debugging_help")]
    assert grounded and all(t.sources for t in grounded)
    source = grounded[0].sources[0]
    assert source["file"].startswith("src/overlays/") and source["commit"] == "a" * 40
    real = (root / source["file"]).read_text().splitlines()[source["line"] - 1 : source["end_line"]]
    assert source["body"] == "\n".join(real)
    prompt = project.renderer.generation_prompt(generation_vars(grounded[0], project, structured=True))
    assert source["body"] in prompt.user and f'name="{source["function"]}"' in prompt.user
    untouched = [t for t in itertools.islice(iter_plan(project), 24) if t.type == "architecture_question"]
    assert untouched and not any(t.sources for t in untouched)


def test_grounding_without_a_checkout_index_is_refused_before_any_request(project_dir, tmp_path):
    root, _ = _decomp_with_index(tmp_path)
    with pytest.raises(ConfigError) as error:
        load_project(_config(project_dir), ["grounding.enabled=true", f"grounding.decomp_dir={root}"])
    assert "grounding.index or symbols" in str(error.value)


def test_a_configured_checkout_grounds_the_three_code_input_types_by_default(project_dir, tmp_path):
    root, index_path = _decomp_with_index(tmp_path)
    settings = [f"symbols={index_path}", f"grounding.decomp_dir={root}", "grounding.min_lines=3"]  # no `enabled`, no `types`
    project = load_project(_config(project_dir), settings)
    tasks = list(itertools.islice(iter_plan(project), 60))
    code_input = [t for t in tasks if t.type in ("code_explanation", "debugging_help", "code_modification")]
    assert {t.type for t in code_input} == {"code_explanation", "debugging_help", "code_modification"}
    assert all(t.sources for t in code_input)
    assert not any(t.sources for t in tasks if t.type not in ("code_explanation", "debugging_help", "code_modification"))
    # A grounded slot asks about the real function by name (grounded_instruction_variants), not about "my actor".
    for task in code_input:
        for slot, style in enumerate(task.instructions):
            assert task.sources[slot]["function"] in style, style

    switched_off = load_project(_config(project_dir), [*settings, "grounding.enabled=false"])
    assert not any(t.sources for t in itertools.islice(iter_plan(switched_off), 60))


def test_a_grounded_ladder_stream_with_questions_restores_from_its_snapshot(project_dir, tmp_path):
    from ootgen.plan import type_streams

    root, index_path = _decomp_with_index(tmp_path)
    (tmp_path / "q.txt").write_text("\n".join(QUESTIONS) + "\n")
    project = load_project(_config(project_dir), [
        f"symbols={index_path}", "grounding.enabled=true", f"grounding.decomp_dir={root}", "grounding.min_lines=3",
        "grounding.types=[code_explanation, debugging_help]", f"questions={tmp_path / 'q.txt'}",
        "ladders.enabled=true", "ladders.types=[feature_implementation]",
    ])
    streams = type_streams(project)
    with_questions = [name for name, stream in streams.items() if next(stream).questions]
    assert with_questions and all(streams[name].snapshot() is None for name in with_questions)  # not while questions go out
    for stream in streams.values():
        for _ in range(12):
            next(stream)
    snapshots = {name: json.loads(json.dumps(stream.snapshot())) for name, stream in streams.items()}
    restored = type_streams(project)
    for name, stream in restored.items():
        stream.restore_from = snapshots[name]
    for name in ("code_explanation", "debugging_help", "feature_implementation"):
        assert [next(restored[name]) for _ in range(15)] == [next(streams[name]) for _ in range(15)], name
    assert any(t.sources for t in itertools.islice(restored["code_explanation"], 5))
