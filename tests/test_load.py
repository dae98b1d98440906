"""Stage 1, load: presets, `extends:`, path resolution, `--set`, schema errors, type folders, hashes.

Also holds the small file-tree helpers the other load/render/plan/CLI tests share.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from ootgen.errors import ConfigError
from ootgen.load import load_project, load_run_config, recorded_settings
from ootgen.plan import plan_tasks
from ootgen.settings import Settings
from tests.conftest import REPO, clean_env, run_cli

DEFAULT_MIX = tuple(yaml.safe_load((REPO / "configs" / "default.yaml").read_text())["mix"])
SOME_CONTEXTS = ("actor_system", "player_system", "scene_system")


# --- helpers shared by test_render, test_plan, test_offline_cli and test_bad_input ---


def cli_env(**extra: str) -> dict:
    """A scrubbed environment in which the CLI subprocess can import ootgen from any cwd."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return clean_env(PYTHONPATH=path, **extra)


def type_data(name: str, **changes) -> dict:
    """A valid example type definition that draws on contexts that exist."""
    data = {
        "name": name,
        "description": f"Stub example type {name} used by the tests.",
        "weight": 1.0,
        "carries_input": False,
        "contexts": list(SOME_CONTEXTS),
        "complexities": ["beginner", "intermediate", "advanced"],
        "instruction_variants": [f"Tell me about {{topic}} ({name}).", "How does {topic} work in the decomp?"],
        "answer_must": ["a clear explanation of the topic"],
    }
    if name == "conversational":
        data["turns"] = {"min": 2, "max": 3}
    data.update(changes)
    return data


def write_yaml(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def type_names(folder: Path) -> set[str]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present, as ootgen reads them
    return {yaml.load(p.read_text(), Loader=loader)["name"] for p in folder.glob("*.y*ml")}


def complete_types(types_dir: Path) -> list[str]:
    """Write a stub for every type of the default mix not (yet) defined in `types_dir`."""
    defined = type_names(types_dir)
    missing = [name for name in DEFAULT_MIX if name not in defined]
    for name in missing:
        write_yaml(types_dir / f"{name}.yaml", type_data(name))
    return missing


def ready_project(project_dir: Path) -> Path:
    """project_dir with every type of the default mix defined; returns its configs/default.yaml."""
    complete_types(project_dir / "configs" / "types")
    return project_dir / "configs" / "default.yaml"


def builtin_stub_dir(tmp_path: Path) -> Path:
    """Stubs for the built-in preset's types that the repo does not define yet (empty when complete)."""
    stubs = tmp_path / "stub_types"
    stubs.mkdir(exist_ok=True)
    for name in DEFAULT_MIX:
        if name not in type_names(REPO / "configs" / "types"):
            write_yaml(stubs / f"{name}.yaml", type_data(name))
    return stubs


def load_error(ref, overrides=()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_project(ref, overrides)
    return info.value


# --- tests ---


def test_builtin_default_validates(tmp_path):
    project = load_project("default", [f"extra_types_dirs=[{builtin_stub_dir(tmp_path)}]"])
    assert set(DEFAULT_MIX) <= set(project.types)
    assert project.config.model == "claude-sonnet-5"
    assert Path(project.config.file) == REPO / "configs" / "default.yaml"
    assert project.contexts and all(c.body for c in project.contexts.values())


def test_extends_relative_path_child_overrides_dicts_merge_lists_replace(project_dir):
    ready_project(project_dir)
    child = project_dir / "configs" / "small.yaml"
    child.write_text(
        "extends: default.yaml\n"
        "seed: 99\n"
        "complexities: [beginner]\n"
        "generation:\n"
        "  examples_per_call: 2\n"
    )
    config = load_run_config(child)
    assert config.seed == 99
    assert config.complexities == ("beginner",)  # list replaced, not appended
    assert config.generation.examples_per_call == 2
    assert config.generation.max_tokens == 12000  # sibling key kept by the deep merge
    assert config.model == "claude-sonnet-5"
    assert "extends" not in config.raw


def test_extends_builtin_name(tmp_path):
    child = tmp_path / "mine.yaml"
    child.write_text("extends: default\nnum_examples: 5\njudge:\n  effort: medium\n")
    config = load_run_config(child)
    assert config.num_examples == 5
    assert config.judge.effort == "medium"
    assert config.judge.max_tokens == 3000
    # paths set by the built-in preset resolve next to the built-in preset, not next to the child
    assert config.types_dirs == (str(REPO / "configs" / "types"),)


def test_path_keys_resolve_relative_to_the_file_that_sets_them(project_dir):
    ready_project(project_dir)
    (project_dir / "tables").mkdir()
    (project_dir / "tables" / "models.yaml").write_text((REPO / "configs" / "models.yaml").read_text())
    child = project_dir / "top.yaml"
    child.write_text("extends: configs/default.yaml\nmodels_table: tables/models.yaml\n")
    project = load_project(child)
    assert project.config.models_table == str(project_dir / "tables" / "models.yaml")
    assert project.config.types_dirs == (str(project_dir / "configs" / "types"),)
    assert project.config.context_dirs == (str(project_dir / "contexts"),)


def test_set_override_parsed_as_yaml(project_dir):
    cfg = ready_project(project_dir)
    config = load_run_config(cfg, ["generation.examples_per_call=2", "complexities=[advanced, beginner]", "judge.model=null"])
    assert config.generation.examples_per_call == 2
    assert config.complexities == ("advanced", "beginner")
    assert config.judge.model is None


def test_set_override_bad_value_names_the_override(project_dir):
    cfg = ready_project(project_dir)
    error = load_error(cfg, ["concurrency.max=0"])
    assert "--set concurrency.max=0" in str(error)
    assert "concurrency.max" in str(error) and ">= 1" in str(error)


def test_unknown_key_names_file_line_and_did_you_mean(project_dir):
    ready_project(project_dir)
    child = project_dir / "configs" / "typo.yaml"
    child.write_text("extends: default.yaml\n# a comment\nseed: 3\nmodle: claude-sonnet-5\n")
    error = load_error(child)
    assert (error.file, error.line, error.key) == (str(child), 4, "modle")
    assert "did you mean 'model'" in str(error)
    assert str(error).startswith(f"{child}:4: modle: unknown key")


def test_nested_unknown_key_line(project_dir):
    ready_project(project_dir)
    child = project_dir / "configs" / "typo.yaml"
    child.write_text("extends: default.yaml\nscoring:\n  threshold: 5\n  bonuses:\n    code_exampel: 1\n")
    error = load_error(child)
    assert (error.line, error.key) == (5, "scoring.bonuses.code_exampel")
    assert "did you mean 'code_example'" in str(error)


@pytest.mark.parametrize(
    ("text", "line", "key", "expected"),
    [
        ("num_examples: many\n", 2, "num_examples", "type integer"),
        ("scoring:\n  threshold: 11\n", 3, "scoring.threshold", "<= 10"),
        ("concurrency:\n  max: -4\n", 3, "concurrency.max", ">= 1"),
        ("output: data.txt\n", 2, "output", "jsonl"),
    ],
)
def test_bad_values_name_line_key_and_expectation(project_dir, text, line, key, expected):
    ready_project(project_dir)
    child = project_dir / "configs" / "bad.yaml"
    child.write_text("extends: default.yaml\n" + text)
    error = load_error(child)
    assert (error.file, error.line, error.key) == (str(child), line, key)
    assert expected in str(error)


def _leaves(data: dict, prefix: tuple = ()):
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("mix", "templates"):
            yield from _leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), value


def _typed(config, key_path: tuple):
    value = config
    for key in key_path:
        value = value[key] if isinstance(value, Mapping) else getattr(value, key)
    return value


def test_settings_of_the_builtin_preset_are_the_values_in_default_yaml():
    """Every typed setting is the value default.yaml writes (paths resolved next to it): no default held in code
    drifts from it, and default.yaml names every field (build() refuses a mismatch either way)."""
    data = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    config = load_run_config("default")
    path_keys = {("models_table",), ("checks",), ("types_dirs",), ("extra_types_dirs",), ("template_dirs",), ("context_dirs",)}
    compared = 0
    for key_path, expected in _leaves(data):
        if key_path in path_keys:
            resolve = lambda p: os.path.normpath(REPO / "configs" / p)  # noqa: E731
            expected = [resolve(p) for p in expected] if isinstance(expected, list) else resolve(expected)
        actual = _typed(config, key_path)
        if isinstance(expected, list):
            expected = tuple(expected)
        elif isinstance(expected, dict):
            actual = dict(actual)
        assert actual == expected, key_path
        compared += 1
    assert compared >= 60
    assert {f.name for f in dataclasses.fields(Settings)} == set(data)


def test_preset_without_extends_gets_every_default_from_default_yaml(project_dir):
    ready_project(project_dir)
    full = yaml.safe_load((project_dir / "configs" / "default.yaml").read_text())
    minimal = {key: full[key] for key in ("model", "num_examples", "output", "seed", "types_dirs", "template_dirs",
                                           "context_dirs", "models_table", "scoring")}
    minimal |= {"templates": {"system": "system.md.j2", "generate": "generate.md.j2", "judge": "judge.md.j2"},
                "generation": {"examples_per_call": 2, "max_tokens": 4000}, "judge": {"max_tokens": 2000},
                "concurrency": {"max": 3}}
    alone = write_yaml(project_dir / "configs" / "alone.yaml", minimal)
    config = load_project(alone).config
    builtin = load_run_config("default")
    assert (config.generation.examples_per_call, config.judge.max_tokens, config.concurrency.max) == (2, 2000, 3)
    assert config.generation.effort == builtin.generation.effort == "high"
    assert config.concurrency.timeout_seconds == builtin.concurrency.timeout_seconds
    for section in ("dedup", "batch", "grounding", "budget", "export", "compiler", "ladders", "cross_validation"):
        assert getattr(config, section) == getattr(builtin, section), section
    assert config.checks == builtin.checks and config.symbols == "default"
    assert config.mix == {}  # no `mix:`: every type weighs its own `weight`, not the built-in preset's mix
    assert set(config.templates) == {"system", "generate", "judge"}  # a preset states its templates whole
    assert config.source.locate(("dedup", "num_perm"))[0] == str(REPO / "configs" / "default.yaml")


def test_recorded_settings_fill_what_an_older_run_did_not_record():
    builtin = load_run_config("default")
    stored = {k: v for k, v in builtin.raw.items() if k not in ("cross_validation", "ladders", "judges")}
    stored |= {"mix": {"code_explanation": 2.0}, "export": {"empty_input": "omit"}}
    recorded = recorded_settings(stored)
    assert recorded.cross_validation == builtin.cross_validation and recorded.judges is None
    assert recorded.mix == {"code_explanation": 2.0}  # the recorded mix whole, not merged with the built-in one
    assert recorded.export.empty_input == "omit" and recorded.export.hf == builtin.export.hf


def test_missing_required_key(project_dir):
    cfg = ready_project(project_dir)
    text = "".join(ln for ln in cfg.read_text().splitlines(True) if not ln.startswith("seed:"))
    alone = project_dir / "configs" / "noseed.yaml"
    alone.write_text(text)
    error = load_error(alone)
    assert error.key == "seed" and error.file == str(alone)
    assert "missing required key 'seed'" in str(error)


def test_duplicate_type_names_across_type_folders(project_dir):
    cfg = ready_project(project_dir)
    other = project_dir / "more_types"
    path = other / "again.yaml"
    path.parent.mkdir()
    path.write_text("# the same name as a built-in type\n" + yaml.safe_dump(type_data("code_explanation"), sort_keys=False))
    error = load_error(cfg, [f"extra_types_dirs=[{other}]"])
    assert error.file == str(path) and error.key == "name"
    assert error.line == 2
    assert "duplicate example type name 'code_explanation'" in str(error)
    assert "code_explanation.yaml" in str(error)


NEW_TYPE = "rom_layout_question"


def _seventh_type(project_dir: Path) -> Path:
    ready_project(project_dir)
    write_yaml(
        project_dir / "more_types" / f"{NEW_TYPE}.yaml",
        type_data(
            NEW_TYPE,
            description="Questions about where things live in the ROM and how the build lays them out.",
            weight=3.0,
            contexts=["scene_system"],
            instruction_variants=["Where in the ROM does {topic} end up, and why?"],
            topics_like="architecture_question",  # no context lists the new type: borrow a built-in type's topics
        ),
    )
    child = project_dir / "configs" / "seven.yaml"
    child.write_text("extends: default.yaml\nextra_types_dirs: [../more_types]\n")
    return child


def test_seventh_type_from_a_dropped_file_needs_no_code(project_dir):
    child = _seventh_type(project_dir)
    project = load_project(child)
    assert NEW_TYPE in project.types and len(project.types) >= 7
    assert project.mix[NEW_TYPE] == 3.0  # not in `mix:`, so its own weight applies
    tasks = plan_tasks(project, 400)
    share = sum(t.type == NEW_TYPE for t in tasks) / len(tasks)
    assert share == pytest.approx(3.0 / sum(project.mix.values()), abs=0.01)
    assert all(t.context == "scene_system" for t in tasks if t.type == NEW_TYPE)

    env = cli_env()
    listed = run_cli("types", str(child), cwd=project_dir, env=env)
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:2] == [NEW_TYPE, "3"] for line in listed.stdout.splitlines())

    shown = run_cli("render", str(child), "--type", NEW_TYPE, "--seed", "5", cwd=project_dir, env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"type={NEW_TYPE}" in shown.stdout
    assert "Where in the ROM does" in shown.stdout
    assert "Questions about where things live in the ROM" in shown.stdout


def test_work_hash_stable_changes_with_templates_not_with_num_examples(project_dir):
    cfg = ready_project(project_dir)
    first, again = load_project(cfg), load_project(cfg)
    assert first.work_hash == again.work_hash and first.config_hash == again.config_hash

    more = load_project(cfg, ["num_examples=500"])
    assert more.work_hash == first.work_hash
    assert more.config_hash != first.config_hash

    template = project_dir / "templates" / "generate.md.j2"
    template.write_text(template.read_text() + "\nBe concise.\n")
    assert load_project(cfg).work_hash != first.work_hash


def test_type_folder_listed_twice_is_read_once(project_dir):
    cfg = ready_project(project_dir)
    project = load_project(cfg, [f"extra_types_dirs=[{project_dir / 'configs' / 'types'}]"])
    assert set(project.types) == type_names(project_dir / "configs" / "types")


def test_nan_is_refused_like_any_bad_number(project_dir):
    cfg = ready_project(project_dir)
    error = load_error(cfg, ["scoring.threshold=.nan"])
    assert error.key == "scoring.threshold" and error.file == "--set scoring.threshold=.nan"


def test_unknown_models_anywhere_are_warned_in_validate_and_near_misses_refused(project_dir):
    config = ready_project(project_dir)
    result = run_cli("validate", str(config), "--set", "judges=[claude-sonnet-5, claude-unknown-9]", "--set", "model=claude-sonnet-6",
                     cwd=project_dir, env=cli_env())
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("ootgen: warning:")]
    assert len(warnings) == 2
    assert "'claude-sonnet-6' (model)" in warnings[0] and "'claude-unknown-9' (judges[1])" in warnings[1]
    error = load_error(config, ["judges=[claude-sonnet-5, claude-sonet-5]"])
    assert "did you mean 'claude-sonnet-5'" in str(error) and error.key == "judges[1]"


def test_output_in_folders_still_to_create_is_fine(project_dir):
    config = ready_project(project_dir)
    project = load_project(config, [f"output={project_dir / 'new' / 'deeper' / 'data.jsonl'}"])
    assert project.config.output.endswith("data.jsonl")
    assert not (project_dir / "new").exists()  # checking writes nothing


def test_every_context_and_level_of_a_type_is_rendered_at_load(project_dir):
    config = ready_project(project_dir)
    template = project_dir / "templates" / "generate.md.j2"
    template.write_text("{% if context.id == 'scene_system' and complexity == 'advanced' %}{{ missing_var }}{% endif %}\n"
                        + template.read_text())
    error = load_error(config)
    assert "missing_var" in str(error) and "context 'scene_system', level 'advanced'" in str(error)
    load_project(config, ["complexities=[beginner, intermediate]"])  # that level is never planned: nothing to refuse


def test_paths_are_kept_as_written_so_a_symlinked_file_is_judged_by_its_own_folder(project_dir):
    config = ready_project(project_dir)
    (project_dir / "configs" / "checks_alias.yaml").symlink_to(project_dir / "configs" / "checks.yaml")
    project = load_project(config, [f"checks={project_dir / 'configs' / 'checks_alias.yaml'}"])
    assert project.config.checks.endswith("checks_alias.yaml")
