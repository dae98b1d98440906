"""The bad-input suite: every broken file set fails before any request, as one line naming where and what.

Each case builds a broken project in tmp_path (from `project_dir`), runs the real CLI against the fake
Anthropic server with a key, and expects exit status 2, exactly one stderr line naming the file (and the
line and key where they mean something), no traceback, and no request received by the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli
from tests.test_load import cli_env, ready_project, type_data, type_names, write_yaml


@dataclass
class Case:
    args: list[str]
    file: str  # file name (or "--set ..." source) the message must name
    line: int | None = None  # the message must contain `file:line`
    key: str | None = None
    says: tuple[str, ...] = ()
    command: str = "run"


def _child(p: Path, text: str, name: str = "bad.yaml") -> Path:
    path = p / "configs" / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _preset(p: Path, text: str, **kw) -> Case:
    path = _child(p, text)
    return Case([str(path)], file=path.name, **kw)


def _base(p: Path) -> Path:
    return p / "configs" / "default.yaml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def _line_no(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _template_case(p: Path, inserted: str, *says: str) -> Case:
    template = p / "templates" / "generate.md.j2"
    lines = template.read_text().splitlines()
    lines.insert(3, inserted)  # becomes line 4
    template.write_text("\n".join(lines) + "\n")
    return Case([str(_base(p))], file="generate.md.j2", line=4, says=says)


def _context_case(p: Path, text: str, name: str = "broken_ctx", **kw) -> Case:
    path = p / "contexts" / f"{name}.md"
    path.write_text(text)
    return Case([str(_base(p))], file=path.name, **kw)


WORDS = " ".join(["The actor list is walked every frame by Actor_UpdateAll."] * 10)
FRONT = ("---\nid: broken_ctx\ntitle: A broken context\ntypes: ['*']\ntags: [x]\n"
         "topics: [{topic: one topic, types: [conversational]}, {topic: two topic, types: [conversational]}, {topic: three topic, types: [conversational]}]\n---\n")


def _all_weights_zero(p: Path) -> Case:
    names = sorted(type_names(p / "configs" / "types"))
    body = "".join(f"  {n}: 0\n" for n in names)
    return _preset(p, "extends: default.yaml\nmix:\n" + body, line=2, key="mix", says=("weight 0",))


def _type_file(p: Path, name: str, data: dict, folder: str = "types") -> Path:
    return write_yaml(p / "configs" / folder / f"{name}.yaml", data)


def _complexity_not_allowed(p: Path) -> Case:
    _type_file(p, "beginner_only", type_data("beginner_only", complexities=["beginner"]))
    return _preset(p, "extends: default.yaml\n\ncomplexities: [advanced]\n", line=3, key="complexities",
                   says=("beginner_only", "beginner"))


def _type_missing_key(p: Path) -> Case:
    data = type_data("no_answer")
    del data["answer_must"]
    path = _type_file(p, "no_answer", data)
    return Case([str(_base(p))], file=path.name, key="answer_must", says=("missing required key",))


def _type_unknown_context(p: Path) -> Case:
    path = _type_file(p, "lost", type_data("lost", contexts=["actor_system", "scene_sytem"]))
    return Case([str(_base(p))], file=path.name, line=_line_no(path, "scene_sytem"), key="contexts[1]",
                says=("unknown context 'scene_sytem'", "did you mean 'scene_system'"))


def _duplicate_type_same_folder(p: Path) -> Case:
    path = p / "configs" / "types" / "zz_copy.yaml"
    path.write_text("# a copy under another file name\n\n" + yaml.safe_dump(type_data("code_explanation"), sort_keys=False))
    return Case([str(_base(p))], file="zz_copy.yaml", line=3, key="name", says=("duplicate example type name",))


def _duplicate_type_extra_dir(p: Path) -> Case:
    path = _type_file(p, "code_explanation", type_data("code_explanation"), folder="more")
    cfg = _child(p, "extends: default.yaml\nextra_types_dirs: [more]\n")
    return Case([str(cfg)], file=f"more/{path.name}", line=1, key="name", says=("duplicate example type name",))


def _type_bad_complexity(p: Path) -> Case:
    path = _type_file(p, "expert", type_data("expert", complexities=["beginner", "expert"]))
    return Case([str(_base(p))], file=path.name, line=_line_no(path, "- expert"), key="complexities[1]",
                says=("beginner, intermediate, advanced",))


def _type_not_mapping(p: Path) -> Case:
    path = p / "configs" / "types" / "listy.yaml"
    path.write_text("- name: listy\n")
    return Case([str(_base(p))], file=path.name, line=1, says=("mapping",))


def _type_turns_inverted(p: Path) -> Case:
    path = _type_file(p, "chat", type_data("chat", turns={"min": 5, "max": 2}))
    return Case([str(_base(p))], file=path.name, line=_line_no(path, "turns:"), key="turns", says=("turns.min",))


def _context_id_mismatch(p: Path) -> Case:
    return _context_case(p, FRONT.replace("id: broken_ctx", "id: other_name") + WORDS, line=2, key="id",
                         says=("differs from the file name", "id: broken_ctx"))


TOPIC = "  - topic: how the actor list is walked\n    types: [{types}]\n    levels: [{levels}]\n"


def _context_topic_case(p: Path, context_types: str, types: str, levels: str, **kw) -> Case:
    topics = "topics:\n" + TOPIC.format(types="conversational", levels="beginner") * 2 + TOPIC.format(types=types, levels=levels)
    text = FRONT.replace("types: ['*']", f"types: [{context_types}]").replace(FRONT.splitlines(keepends=True)[5], topics)
    return _context_case(p, text + WORDS, **kw)


def _context_missing_topics(p: Path) -> Case:
    text = FRONT.replace(FRONT.splitlines(keepends=True)[5], "") + WORDS
    return _context_case(p, text, key="topics", says=("missing required key 'topics'",))


def _context_front_matter_yaml(p: Path) -> Case:
    text = FRONT.replace("tags: [x]", "tags: [x") + WORDS
    return _context_case(p, text, says=("YAML syntax error",))


def _models_negative_price(p: Path) -> Case:
    models = p / "configs" / "models.yaml"
    _edit(models, "input_per_mtok: 2.0", "input_per_mtok: -2.0")
    return Case([str(_base(p))], file="models.yaml", line=_line_no(models, "input_per_mtok: -2.0"),
                key="models[0].input_per_mtok", says=(">= 0",))


def _models_yaml_syntax(p: Path) -> Case:
    models = p / "configs" / "models.yaml"
    _edit(models, "    aliases: [sonnet, sonnet-5]", "    aliases: [sonnet, sonnet-5")
    return Case([str(_base(p))], file="models.yaml", says=("YAML syntax error",))


def _extends_cycle(p: Path) -> Case:
    _child(p, "extends: b.yaml\nseed: 1\n", "a.yaml")
    _child(p, "# b goes back to a\nextends: a.yaml\n", "b.yaml")
    return Case([str(p / "configs" / "a.yaml")], file="b.yaml", line=2, key="extends", says=("cycle", "a.yaml -> b.yaml -> a.yaml"))


def _huge(p: Path) -> Case:
    filler = ("# " + "x" * 98 + "\n") * 22_000  # 2.2 MB of comments
    return _preset(p, "extends: default.yaml\n" + filler, says=("larger than",))


def _alias_bomb(p: Path) -> Case:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return _preset(p, "\n".join(lines) + "\n", says=("alias",))


def _template_not_utf8(p: Path) -> Case:
    (p / "templates" / "judge.md.j2").write_bytes(b"Review \xff\xfe {{ candidates | length }}\n")
    return Case([str(_base(p))], file="judge.md.j2", says=("UTF-8",))


def _type_template_missing(p: Path) -> Case:
    path = p / "configs" / "types" / "code_explanation.yaml"
    path.write_text(path.read_text().rstrip("\n") + "\ngenerate_template: explain.md.j2\n")
    return Case([str(_base(p))], file=path.name, line=_line_no(path, "generate_template:"), key="generate_template",
                says=("explain.md.j2", "not found"))


def _checks_bad_value(p: Path) -> Case:
    checks = p / "configs" / "checks.yaml"
    old = next(line for line in checks.read_text().splitlines() if line.strip().startswith("C_SYNTAX:"))
    _edit(checks, old, old.replace("severity: error", "severity: fatal"))
    return Case([str(_base(p))], file="checks.yaml", line=_line_no(checks, "severity: fatal"),
                key="findings.C_SYNTAX.severity", says=("error, warning, info",))


def _checks_yaml_error(p: Path) -> Case:
    (p / "configs" / "checks.yaml").write_text("findings:\n  C_SYNTAX: {severity: error\n")
    return Case([str(_base(p))], file="checks.yaml", says=("YAML syntax error",))


def _symbols_not_an_index(p: Path) -> Case:
    (p / "configs" / "broken.json.gz").write_bytes(b"not gzip at all")
    path = _child(p, "extends: default.yaml\nsymbols: broken.json.gz\n")
    return Case([str(path)], file="broken.json.gz", says=("symbol index",))


def _retired_judge(p: Path) -> Case:
    return _preset(p, "extends: default.yaml\njudge:\n  model: claude-3-opus-20240229\n", line=3, says=("retired", "claude-opus-5-5"))


CASES: dict[str, Callable[[Path], Case]] = {
    "yaml_syntax_error": lambda p: _preset(p, "extends: default.yaml\nseed: 3\nmix: {code_explanation: 1\n", says=("YAML syntax error",)),
    "tab_indentation": lambda p: _preset(p, "extends: default.yaml\ngeneration:\n\texamples_per_call: 2\n", line=3, says=("tab",)),
    "python_object_tag": lambda p: _preset(p, "extends: default.yaml\nseed: !!python/object/apply:os.system ['touch PWNED']\n", line=2, says=("unsupported YAML tag",)),
    "alias_bomb": _alias_bomb,
    "non_utf8_bytes": lambda p: _preset(p, b"extends: default.yaml\nmodel: claude-\xff\xfe\n", line=2, says=("UTF-8",)),
    "empty_file": lambda p: _preset(p, "", says=("empty",)),
    "comments_only_file": lambda p: _preset(p, "# nothing here\n", says=("empty",)),
    "huge_file": _huge,
    "top_level_list": lambda p: _preset(p, "- model: claude-sonnet-5\n- seed: 1\n", line=1, says=("mapping",)),
    "top_level_scalar": lambda p: _preset(p, "just a string\n", line=1, says=("mapping",)),
    "duplicate_key": lambda p: _preset(p, "extends: default.yaml\nseed: 1\nmodel: claude-sonnet-5\nseed: 2\n", line=4, key="seed", says=("duplicate key", "line 2")),
    "wrong_type": lambda p: _preset(p, 'extends: default.yaml\nnum_examples: "many"\n', line=2, key="num_examples", says=("integer",)),
    "out_of_range": lambda p: _preset(p, "extends: default.yaml\nscoring:\n  threshold: 11\n", line=3, key="scoring.threshold", says=("<= 10",)),
    "negative_concurrency": lambda p: _preset(p, "extends: default.yaml\nconcurrency:\n  max: -3\n", line=3, key="concurrency.max", says=(">= 1",)),
    "unknown_key_did_you_mean": lambda p: _preset(p, "extends: default.yaml\n\nmodle: claude-sonnet-5\n", line=3, key="modle", says=("did you mean 'model'",)),
    "missing_required_key": lambda p: _preset(
        p, "".join(ln for ln in _base(p).read_text().splitlines(True) if not ln.startswith("num_examples:")),
        key="num_examples", says=("missing required key",)),
    "unknown_type_in_mix": lambda p: _preset(p, "extends: default.yaml\nmix:\n  code_explanaton: 2\n", line=3, key="mix.code_explanaton", says=("did you mean 'code_explanation'",)),
    "all_weights_zero": _all_weights_zero,
    "complexity_not_allowed": _complexity_not_allowed,
    "complexity_enum_in_config": lambda p: _preset(p, "extends: default.yaml\ncomplexities: [beginner, expert]\n", line=2, key="complexities[1]", says=("beginner, intermediate, advanced",)),
    "type_missing_required_key": _type_missing_key,
    "type_unknown_context": _type_unknown_context,
    "duplicate_type_names": _duplicate_type_same_folder,
    "duplicate_type_names_extra_dir": _duplicate_type_extra_dir,
    "type_bad_complexity_enum": _type_bad_complexity,
    "type_not_a_mapping": _type_not_mapping,
    "type_turns_min_gt_max": _type_turns_inverted,
    "context_without_front_matter": lambda p: _context_case(p, "# Just markdown\n\n" + WORDS, line=1, says=("front matter",)),
    "context_front_matter_unclosed": lambda p: _context_case(p, FRONT.rstrip("-\n") + "\n" + WORDS, line=1, says=("not closed",)),
    "context_id_not_filename": _context_id_mismatch,
    "context_empty_body": lambda p: _context_case(p, FRONT + "\n   \n", line=FRONT.count("\n") + 1, says=("empty",)),
    "context_missing_topics": _context_missing_topics,
    "context_topic_type_not_in_context": lambda p: _context_topic_case(
        p, "conversational, code_explanation", "code_explanation, feature_implementation", "beginner",
        line=14, key="topics[2].types[1]", says=("'feature_implementation' is not one of the context's types",)),
    "context_topic_unknown_type": lambda p: _context_topic_case(
        p, "'*'", "conversational, code_explanaton", "beginner",
        line=13, key="topics[2].types[1]", says=("unknown example type 'code_explanaton'", "did you mean 'code_explanation'")),
    "context_topic_unknown_level": lambda p: _context_topic_case(
        p, "'*'", "conversational", "beginner, expert",
        line=15, key="topics[2].levels[1]", says=("beginner, intermediate, advanced",)),
    "context_front_matter_yaml_error": _context_front_matter_yaml,
    "missing_template_file": lambda p: _preset(p, "extends: default.yaml\ntemplates:\n  generate: nope.md.j2\n", line=3, key="templates.generate", says=("nope.md.j2", "not found")),
    "template_syntax_error": lambda p: _template_case(p, "{{ count + }}", "template syntax error"),
    "template_undefined_variable": lambda p: _template_case(p, "{{ no_such_variable }}", "undefined", "no_such_variable"),
    "template_attribute_walking": lambda p: _template_case(p, "{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
    "template_include_traversal": lambda p: _template_case(p, '{% include "../../etc/passwd" %}', "not found"),
    "extends_cycle": _extends_cycle,
    "extends_self": lambda p: _preset(p, "extends: bad.yaml\n", line=1, key="extends", says=("cycle",)),
    "extends_escapes_folder": lambda p: _preset(p, "seed: 1\nextends: ../../x.yaml\n", line=2, key="extends", says=("leaves",)),
    "extends_missing_file": lambda p: _preset(p, "extends: nothere.yaml\n", line=1, key="extends", says=("no such preset",)),
    "extends_not_a_string": lambda p: _preset(p, "extends: [default]\n", line=1, key="extends", says=("preset name",)),
    "template_runtime_error": lambda p: _template_case(p, "{{ count / 0 }}", "ZeroDivisionError"),
    "template_range_too_big": lambda p: _template_case(p, "{{ range(10**9) | list | length }}", "range"),
    "template_not_utf8": _template_not_utf8,
    "type_generate_template_missing": _type_template_missing,
    "checks_file_bad_value": _checks_bad_value,
    "checks_file_yaml_error": _checks_yaml_error,
    "symbols_not_an_index": _symbols_not_an_index,
    "nan_threshold": lambda p: _preset(p, "extends: default.yaml\nscoring:\n  threshold: .nan\n", line=3, key="scoring.threshold", says=(".nan",)),
    "set_nan_weight": lambda p: Case([str(_base(p)), "--set", "mix.code_explanation=.nan"], file="--set mix.code_explanation=.nan", key="mix.code_explanation", says=(".nan",)),
    "retired_model": lambda p: _preset(p, "extends: default.yaml\nmodel: claude-3-5-sonnet-20241022\n", line=2, key="model", says=("retired", "claude-sonnet-5")),
    "retired_judge_model": _retired_judge,
    "models_table_negative_price": _models_negative_price,
    "models_table_yaml_error": _models_yaml_syntax,
    "models_table_missing": lambda p: _preset(p, "extends: default.yaml\nmodels_table: gone.yaml\n", line=2, key="models_table", says=("not found",)),
    "bad_output_path": lambda p: _preset(p, "extends: default.yaml\noutput: data.txt\n", line=2, key="output", says=("jsonl",)),
    "types_dir_missing": lambda p: _preset(p, "extends: default.yaml\ntypes_dirs: [no_types_here]\n", line=2, key="types_dirs[0]", says=("folder not found",)),
    "checks_file_missing": lambda p: _preset(p, "extends: default.yaml\nchecks: nochecks.yaml\n", line=2, key="checks", says=("not found",)),
    "set_without_equals": lambda p: Case([str(_base(p)), "--set", "seed"], file="--set seed", key="seed", says=("key.path=value",)),
    "set_bad_yaml_value": lambda p: Case([str(_base(p)), "--set", "complexities=[beginner,"], file="--set complexities=[beginner,", key="complexities", says=("not valid YAML",)),
    "set_type_error": lambda p: Case([str(_base(p)), "--set", "num_examples=many"], file="--set num_examples=many", key="num_examples", says=("integer",)),
    "set_unknown_key": lambda p: Case([str(_base(p)), "--set", "generation.max_tokns=100"], file="--set generation.max_tokns=100", key="generation.max_tokns", says=("did you mean 'max_tokens'",)),
    "set_into_a_scalar": lambda p: Case([str(_base(p)), "--set", "seed.x=1"], file="--set seed.x=1", key="seed.x", says=("not a mapping",)),
    "set_empty_key": lambda p: Case([str(_base(p)), "--set", "=3"], file="--set =3", says=("empty key",)),
    "config_not_found": lambda p: Case([str(p / "configs" / "absent.yaml")], file="absent.yaml", says=("not found", "default")),
    "config_is_a_folder": lambda p: Case([str(p / "configs" / "types")], file="types", says=("not a regular file",)),
    "validate_wrong_type": lambda p: Case(
        [str(_preset(p, "extends: default.yaml\nseed: -1\n").args[0])], file="bad.yaml", line=2, key="seed", says=(">= 0",), command="validate"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_no_request(name, project_dir, fake_anthropic):
    ready_project(project_dir)
    case = CASES[name](project_dir)
    args = [case.command, *case.args]
    if case.command == "run":
        args += ["--api-key", "test-key", "--progress", "quiet"]
    result = run_cli(*args, cwd=project_dir, env=cli_env(ANTHROPIC_BASE_URL=fake_anthropic.base_url), timeout=60)

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    message = lines[0]
    assert message.startswith("ootgen: error: ")
    assert case.file in message, (case.file, message)
    if case.line is not None:
        assert f"{case.file}:{case.line}:" in message, (case.line, message)
    if case.key is not None:
        assert f" {case.key}: " in message or f": {case.key}:" in message, (case.key, message)
    for text in case.says:
        assert text in message, (text, message)
    assert fake_anthropic.log == [] and sum(fake_anthropic.counts.values()) == 0
    assert not (project_dir / "oot_training_data.jsonl").exists()
    assert not (project_dir / "PWNED").exists()


def test_suite_covers_enough_cases():
    assert len(CASES) >= 35
