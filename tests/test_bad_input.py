"""The bad-input suite: every broken file set fails before any request, as one line naming where and what.

Each case builds a broken project in tmp_path (from `project_dir`), runs the real CLI in a child process against
the fake Anthropic server with a key, and expects exit status 2, exactly one stderr line naming the file (and the
line and key where they mean something), no traceback, no request received by the server and no file
written or changed. The child runs with its address space capped (RLIMIT_AS) and a timeout, so a
case that would hang or fill memory fails instead (a MemoryError is a traceback).

Count the cases: python -m pytest --collect-only -q tests/test_bad_input.py | grep -c '^tests/test_bad_input.py::test_bad_input'
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from ootgen.limits import LIMITS
from ootgen.symbols import SymbolIndex
from tests.forked_cli import run_forked
from tests.test_load import cli_env, ready_project, type_data, type_names, write_yaml

MEMORY_CAP = 1024 * 1024 * 1024  # address space of the CLI's child process: far above a normal run, far below the bombs
TIMEOUT = 60


@dataclass
class Case:
    args: list[str]
    file: str  # file name (or "--set ..." source) the message must name
    line: int | None = None  # the message must contain `file:line`
    key: str | None = None
    says: tuple[str, ...] = ()
    command: str = "run"
    cwd: Path | None = None


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


# --- round two (issue 15): files that leave their folder ---------------------------------------------------


def _outside(p: Path, name: str, data: bytes | str) -> Path:
    """A file outside every configured folder (but inside tmp_path, so the no-write check covers it)."""
    path = p / "outside" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _symlink(link: Path, target: Path) -> Path:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(target)
    return link


def _include_symlink(p: Path, tag: str, name: str = "p.j2") -> Case:
    _symlink(p / "templates" / name, Path("/etc/passwd"))
    return _template_case_where(p, tag, name, "symlink", "/etc/passwd")


def _template_case_where(p: Path, inserted: str, file: str, *says: str, line: int | None = None) -> Case:
    template = p / "templates" / "generate.md.j2"
    lines = template.read_text().splitlines()
    lines.insert(3, inserted)
    template.write_text("\n".join(lines) + "\n")
    return Case([str(_base(p))], file=file, line=line, says=says)


def _template_is_symlink(p: Path) -> Case:
    target = _outside(p, "generate.md.j2", (p / "templates" / "generate.md.j2").read_text())
    _symlink(p / "templates" / "generate.md.j2", target)
    return Case([str(_base(p))], file="generate.md.j2", says=("symlink", "outside/generate.md.j2"))


def _template_subfolder_symlink(p: Path) -> Case:
    _symlink(p / "templates" / "etc", Path("/etc"))
    return _template_case_where(p, "{% include 'etc/passwd' %}", "passwd", "leaves its folder")


def _template_unused_symlink(p: Path) -> Case:
    _symlink(p / "templates" / "notes.txt", _outside(p, "secret.txt", "do not send"))
    return Case([str(_base(p))], file="notes.txt", says=("symlink", "secret.txt"))


def _type_symlink(p: Path) -> Case:
    target = _outside(p, "evil.yaml", yaml.safe_dump(type_data("evil")))
    _symlink(p / "configs" / "types" / "evil.yaml", target)
    return Case([str(_base(p))], file="evil.yaml", says=("symlink", "outside/evil.yaml"))


def _context_symlink(p: Path) -> Case:
    target = _outside(p, "evil_ctx.md", FRONT.replace("broken_ctx", "evil_ctx") + WORDS)
    _symlink(p / "contexts" / "evil_ctx.md", target)
    return Case([str(_base(p))], file="evil_ctx.md", says=("symlink", "outside/evil_ctx.md"))


def _config_file_symlink(p: Path, name: str) -> Case:
    path = p / "configs" / name
    _symlink(path, _outside(p, name, path.read_text()))
    return Case([str(_base(p))], file=name, says=("symlink", f"outside/{name}"))


def _questions_symlink(p: Path) -> Case:
    _symlink(p / "configs" / "questions.txt", Path("/etc/passwd"))
    case = _preset(p, "extends: default.yaml\nquestions: questions.txt\n", says=("symlink", "/etc/passwd"))
    case.file = "questions.txt"
    return case


def _symbols_symlink(p: Path) -> Case:
    from ootgen.resources import default_symbol_index

    target = _outside(p, "symbols.json.gz", default_symbol_index().read_bytes())
    _symlink(p / "configs" / "symbols.json.gz", target)
    case = _preset(p, "extends: default.yaml\nsymbols: symbols.json.gz\n", says=("symlink", "outside/symbols.json.gz"))
    case.file = "symbols.json.gz"
    return case


def _extends_symlink(p: Path) -> Case:
    _symlink(p / "configs" / "base.yaml", _outside(p, "base.yaml", _base(p).read_text()))
    return _preset(p, "extends: base.yaml\n", line=1, key="extends", says=("leaves",))


def _index_with(p: Path, file: str) -> Path:
    data = SymbolIndex.load("default").to_dict()
    data["functions"] = {"EnTest_Update": [["void", [["Actor*", "thisx"], ["PlayState*", "play"]], 2, 0, "d", file, 1, 10]]}
    path = p / "configs" / "mine.json.gz"
    SymbolIndex(data).save(path)
    return path


def _grounding_preset(p: Path, file: str) -> Case:
    decomp = p / "decomp"
    (decomp / "src").mkdir(parents=True, exist_ok=True)
    _index_with(p, file)
    return _preset(p, "extends: default.yaml\nsymbols: mine.json.gz\ngrounding:\n  enabled: true\n  decomp_dir: ../decomp\n"
                      "  types: [code_explanation]\n", key="grounding", says=("leaves the decomp checkout",))


def _grounding_dotdot(p: Path) -> Case:
    case = _grounding_preset(p, "src/../../../../../../etc/passwd")
    case.file = "mine.json.gz"
    return case


def _grounding_symlink(p: Path) -> Case:
    case = _grounding_preset(p, "src/z_en_test.c")
    _symlink(p / "decomp" / "src" / "z_en_test.c", Path("/etc/passwd"))
    case.file, case.says = "mine.json.gz", ("resolves to /etc/passwd",)
    return case


# --- template bounds ---------------------------------------------------------------------------------------


def _template_bound(code: str, *says: str) -> Callable[[Path], Case]:
    return lambda p: _template_case(p, code, "template operation refused", *says)


def _judge_template_bound(p: Path) -> Case:
    template = p / "templates" / "judge.md.j2"
    template.write_text("Review.\n{{ 'x' * 3000000000 }}\n" + template.read_text())
    return Case([str(_base(p))], file="judge.md.j2", line=2, says=("'*'", "3000000000"))


def _long_int_literal(p: Path) -> Case:
    return _template_case(p, "{{ 1" + "1" * 5000 + " }}", "number literal too long")


# --- size caps ---------------------------------------------------------------------------------------------


def _template_too_big(p: Path) -> Case:
    template = p / "templates" / "generate.md.j2"
    template.write_text(template.read_text() + "{# " + "x" * LIMITS.template_file_bytes + " #}\n")
    return Case([str(_base(p))], file="generate.md.j2", says=("larger than", str(LIMITS.template_file_bytes)))


def _context_too_big(p: Path) -> Case:
    filler = (WORDS + "\n") * (LIMITS.context_file_bytes // len(WORDS) + 1)
    return _context_case(p, FRONT + filler, says=("larger than", str(LIMITS.context_file_bytes)))


def _type_too_big(p: Path) -> Case:
    path = _type_file(p, "big", type_data("big"))
    path.write_text(path.read_text() + ("# " + "y" * 98 + "\n") * (LIMITS.yaml_file_bytes // 100 + 1))
    return Case([str(_base(p))], file="big.yaml", says=("larger than",))


def _questions_file(p: Path, name: str, data: bytes | str, **kw) -> Case:
    path = p / "configs" / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return Case([str(_base(p)), "--questions", str(path)], file=name, **kw)


def _questions_too_big(p: Path) -> Case:
    line = "How does Actor_Kill free an actor at the end of the frame?\n"
    return _questions_file(p, "q.txt", line * (LIMITS.questions_file_bytes // len(line) + 1), says=("larger than",))


def _gzip_of_zeros(megabytes: int) -> bytes:
    """`megabytes` MB of zeros as concatenated gzip members (gzip readers read them all): ~1000:1."""
    member = gzip.compress(b"\0" * (1 << 20), compresslevel=9, mtime=0)
    return member * megabytes


def _symbols_bomb(p: Path) -> Case:
    path = p / "configs" / "bomb.json.gz"
    path.write_bytes(_gzip_of_zeros(1500))  # ~1.5 MB on disk, 1.5 GB decompressed
    assert path.stat().st_size < 2 * 1024 * 1024
    case = _preset(p, "extends: default.yaml\nsymbols: bomb.json.gz\n", says=("decompresses to more than",))
    case.file = "bomb.json.gz"
    return case


def _symbols_too_big(p: Path) -> Case:
    path = p / "configs" / "big.json.gz"
    with open(path, "wb") as fh:
        fh.truncate(LIMITS.symbols_file_bytes + 1)  # sparse: no disk used
    case = _preset(p, "extends: default.yaml\nsymbols: big.json.gz\n", says=("larger than",))
    case.file = "big.json.gz"
    return case


def _too_many_nodes(p: Path) -> Case:
    items = ",".join(["1"] * (LIMITS.yaml_nodes + 10))
    return _preset(p, f"extends: default.yaml\nseed: 1\nfiller: [{items}]\n", line=3, says=("more than", "nodes"))


def _context_too_many_nodes(p: Path) -> Case:
    items = ",".join(["x"] * (LIMITS.yaml_nodes + 10))
    return _context_case(p, FRONT.replace("tags: [x]", f"tags: [{items}]") + WORDS, line=5, says=("nodes",))


def _type_alias_bomb(p: Path) -> Case:
    bomb = Path(_alias_bomb(p).args[0])
    bomb.rename(p / "configs" / "types" / "bomb.yaml")
    return Case([str(_base(p))], file="bomb.yaml", says=("alias",))


def _type_not_utf8(p: Path) -> Case:
    (p / "configs" / "types" / "latin.yaml").write_bytes(b"name: latin\ndescription: caf\xe9\n")
    return Case([str(_base(p))], file="latin.yaml", line=2, says=("UTF-8",))


def _context_not_utf8(p: Path) -> Case:
    (p / "contexts" / "latin_ctx.md").write_bytes(b"---\nid: latin_ctx\ntitle: caf\xe9\n---\n")
    return Case([str(_base(p))], file="latin_ctx.md", line=3, says=("UTF-8",))


# --- pre-flight: models, outputs, placeholders, every context and level ------------------------------------


def _placeholder(p: Path, variant: str, says: tuple[str, ...]) -> Case:
    data = type_data("typo", instruction_variants=["Explain {topic}.", variant])
    path = _type_file(p, "typo", data)
    return Case([str(_base(p))], file=path.name, line=_line_no(path, variant), key="instruction_variants[1]",
                says=says)


def _grounded_placeholder(p: Path) -> Case:
    variant = "Explain what {functon} does with {topic}."
    data = type_data("typo", grounded_instruction_variants=["Explain {function}.", variant])
    path = _type_file(p, "typo", data)
    return Case([str(_base(p))], file=path.name, line=_line_no(path, variant), key="grounded_instruction_variants[1]",
                says=("unknown placeholder '{functon}'", "did you mean '{function}'", "{topic}, {function}"))


def _branch(p: Path, name: str, condition: str) -> Case:
    template = p / "templates" / name
    lines = template.read_text().splitlines()
    lines.insert(1, "{% if " + condition + " %}{{ only_on_that_branch }}{% endif %}")
    template.write_text("\n".join(lines) + "\n")
    return Case([str(_base(p))], file=name, line=2, says=("only_on_that_branch",) + tuple(condition.split("'")[1:2]))


def _output_case(p: Path, make: Callable[[Path], object], output: str, *says: str) -> Case:
    make(p)
    return _preset(p, f"extends: default.yaml\noutput: {output}\n", line=2, key="output", says=says)


def _fake_checkout(p: Path) -> Path:
    root = p / "oot"
    (root / "include").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "src" / "a.c").write_text("void A_Init(void) {\n}\n")
    return root


def _index_case(p: Path, output: str, *says: str) -> Case:
    root = _fake_checkout(p)
    return Case([str(root), "-o", output], file=output.split("/")[-1] or output, says=says, command="index")


def _check_case(p: Path, *args: str, file: str, says: tuple[str, ...]) -> Case:
    rows = p / "rows.jsonl"
    rows.write_text('{"instruction": "q", "output": "a"}\n')
    return Case([str(rows), *args], file=file, says=says, command="check")


def _output_flag_folder(p: Path) -> Case:
    (p / "outdir.jsonl").mkdir()
    return Case([str(_base(p)), "--output", "outdir.jsonl"], file="'--output'", says=("outdir.jsonl", "is a directory"))


def _output_set_folder(p: Path) -> Case:
    (p / "outdir.jsonl").mkdir()
    return Case([str(_base(p)), "--set", "output=outdir.jsonl"], file="--set output=outdir.jsonl", key="output", says=("existing folder",))


def _output_too_long(p: Path) -> Case:
    """Caught on the output stream, outside any one line: the message names the template only."""
    case = _template_case(p, "{% for i in range(10) %}{{ 'x' * 900000 }}{% endfor %}", "rendered prompt is longer than")
    case.line = None
    return case


ROUND_TWO: dict[str, Callable[[Path], Case]] = {
    # files that leave their folder
    "template_include_symlink_to_etc_passwd": lambda p: _include_symlink(p, "{% include 'p.j2' %}"),
    "template_import_symlink": lambda p: _include_symlink(p, "{% import 'm.j2' as m %}", "m.j2"),
    "template_from_import_symlink": lambda p: _include_symlink(p, "{% from 'f.j2' import x %}", "f.j2"),
    "template_itself_a_symlink_out": _template_is_symlink,
    "template_symlinked_subfolder": _template_subfolder_symlink,
    "template_folder_holds_unused_symlink_out": _template_unused_symlink,
    "type_file_symlink_out": _type_symlink,
    "context_file_symlink_out": _context_symlink,
    "checks_file_symlink_out": lambda p: _config_file_symlink(p, "checks.yaml"),
    "models_table_symlink_out": lambda p: _config_file_symlink(p, "models.yaml"),
    "questions_file_symlink_to_etc_passwd": _questions_symlink,
    "symbols_file_symlink_out": _symbols_symlink,
    "extends_symlink_out": _extends_symlink,
    "grounded_file_dotdot_leaves_checkout": _grounding_dotdot,
    "grounded_file_symlink_leaves_checkout": _grounding_symlink,
    # template bounds (evaluated at render time, never folded at compile time)
    "template_pow_huge": _template_bound("{{ 10 ** 100000000 }}", "'**'", "bits"),
    "template_str_times_huge": _template_bound("{{ 'x' * 3000000000 }}", "'*'", "3000000000 characters"),
    "template_list_times_huge": _template_bound("{{ [0] * 1000000000 }}", "'*'", "items"),
    "template_int_times_int_huge": _template_bound("{{ (7 ** 1000) * (7 ** 1000) * (7 ** 1000) * (7 ** 1000) }}", "'*'", "bits"),
    "template_concat_doubling": _template_bound(
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "'~'"),
    "template_plus_doubling": _template_bound(
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "'+'"),
    "template_center_filter_huge": _template_bound("{{ 'x'|center(1000000000) }}", "center"),
    "template_center_method_huge": _template_bound("{{ 'x'.center(1000000000) }}", "str.center()"),
    "template_percent_width_huge": _template_bound("{{ '%0999999999d' % 1 }}", "'%'", "width"),
    "template_format_filter_width_huge": _template_bound("{{ '%0999999999d'|format(1) }}", "format", "width"),
    "template_str_format_width_huge": _template_bound("{{ '{:>999999999}'.format(1) }}", "str.format()"),
    "template_replace_amplifies": _template_bound("{{ ('x' * 1000000)|replace('x', 'yyyyy') }}", "replace"),
    "template_join_amplifies": _template_bound("{{ (['a' * 900000] * 100000)|join }}", "join"),
    "template_nested_loops": _template_bound(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loops ran more than"),
    "template_indent_huge": _template_bound("{{ 'a'|indent(100000000) }}", "indent"),
    "template_batch_huge": _template_bound("{{ range(3)|batch(1000000000)|list }}", "batch"),
    "template_expandtabs_huge": _template_bound("{{ ('\\t' * 1000).expandtabs(100000) }}", "expandtabs"),
    "template_output_too_long": _output_too_long,
    "template_block_capture_huge": _template_bound(
        "{% set x %}{% for i in range(100) %}{{ 'x' * 900000 }}{% endfor %}{% endset %}", "a block's output"),
    "template_int_literal_too_long": _long_int_literal,
    "template_recursive_macro": lambda p: _template_case(
        p, "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "RecursionError"),
    "judge_template_str_times_huge": _judge_template_bound,
    # size caps
    "template_file_too_big": _template_too_big,
    "context_file_too_big": _context_too_big,
    "type_file_too_big": _type_too_big,
    "questions_file_too_big": _questions_too_big,
    "question_too_long": lambda p: _questions_file(p, "q.txt", "How?\n# note\n" + "why " * 1200 + "\n", line=3,
                                                   says=("longer than", str(LIMITS.question_chars))),
    "questions_jsonl_bad_line": lambda p: _questions_file(p, "q.jsonl", '{"question": "How?"}\n{nope\n', line=2, says=("JSON",)),
    "questions_not_utf8": lambda p: _questions_file(p, "q.txt", b"How?\nWhy \xff?\n", line=2, says=("UTF-8",)),
    "symbols_gzip_of_zeros": _symbols_bomb,
    "symbols_file_too_big": _symbols_too_big,
    "yaml_too_many_nodes": _too_many_nodes,
    "context_front_matter_too_many_nodes": _context_too_many_nodes,
    "type_file_alias_bomb": _type_alias_bomb,
    "type_file_not_utf8": _type_not_utf8,
    "context_file_not_utf8": _context_not_utf8,
    # pre-flight: every model named anywhere
    "model_typo": lambda p: _preset(p, "extends: default.yaml\nmodel: claude-sonet-5\n", line=2, key="model",
                                    says=("did you mean 'claude-sonnet-5'",)),
    "judge_model_typo": lambda p: _preset(p, "extends: default.yaml\njudge:\n  model: claude-opsu-5\n", line=3, key="judge.model",
                                          says=("did you mean 'claude-opus-5'",)),
    "judges_typo": lambda p: _preset(p, "extends: default.yaml\njudges: [claude-sonnet-5, claude-sonet-5]\n", line=2, key="judges[1]",
                                     says=("claude-sonet-5", "did you mean 'claude-sonnet-5'")),
    "judges_retired": lambda p: _preset(p, "extends: default.yaml\njudges:\n  - claude-sonnet-5\n  - claude-3-opus-20240229\n", line=4,
                                        says=("retired", "claude-opus-5-5")),
    "set_judges_typo": lambda p: Case([str(_base(p)), "--set", "judges=[claude-hiaku-4-5]"], file="--set judges=[claude-hiaku-4-5]",
                                      key="judges[0]", says=("did you mean 'claude-haiku-4-5'",)),
    "judge_model_flag_typo": lambda p: Case([str(_base(p)), "--judge-model", "claude-sonnett-5"], file="--judge-model claude-sonnett-5",
                                            key="judge.model", says=("did you mean 'claude-sonnet-5'",)),
    # pre-flight: outputs
    "output_is_a_folder": lambda p: _output_case(p, lambda p: (p / "out.jsonl").mkdir(), "out.jsonl", "existing folder"),
    "output_metadata_is_a_folder": lambda p: _output_case(p, lambda p: (p / "out_metadata.json").mkdir(), "out.jsonl",
                                                          "out_metadata.json", "existing folder"),
    "output_run_dir_is_a_file": lambda p: _output_case(p, lambda p: (p / "out.run").write_text("x"), "out.jsonl",
                                                       "out.run", "existing file"),
    "output_under_a_file": lambda p: _output_case(p, lambda p: (p / "afile").write_text("x"), "afile/out.jsonl",
                                                  "is a file, not a folder"),
    "output_flag_is_a_folder": _output_flag_folder,
    "output_set_is_a_folder": _output_set_folder,
    # pre-flight: placeholders
    "instruction_placeholder_typo": lambda p: _placeholder(p, "Walk me through {topik}.", ("unknown placeholder '{topik}'",
                                                                                         "did you mean '{topic}'")),
    "instruction_placeholder_unknown": lambda p: _placeholder(p, "At the {level} level, explain {topic}.", ("'{level}'", "only {topic}")),
    "instruction_placeholder_empty": lambda p: _placeholder(p, "Explain {} and {topic}.", ("'{}'",)),
    "grounded_instruction_placeholder_typo": _grounded_placeholder,
    # pre-flight: every context and level
    "template_branch_on_second_context": lambda p: _branch(p, "generate.md.j2", "context.id == 'scene_system'"),
    "template_branch_on_advanced_level": lambda p: _branch(p, "generate.md.j2", "complexity == 'advanced'"),
    "system_template_branch_on_context": lambda p: _branch(p, "system.md.j2", "context.id == 'player_system'"),
    "judge_template_branch_on_level": lambda p: _branch(p, "judge.md.j2", "candidates[0].complexity == 'advanced'"),
    # static commands
    "index_output_folder_missing": lambda p: _index_case(p, "/nonexistent/x.json.gz", "does not exist"),
    "index_output_is_a_folder": lambda p: _index_case(p, str(p / "configs"), "existing folder"),
    "check_file_missing": lambda p: Case([str(p / "nothere.jsonl")], file="nothere.jsonl", says=("cannot read",), command="check"),
    "check_symbols_gzip_of_zeros": lambda p: _check_case(
        p, "--symbols", str(_outside(p, "bomb.json.gz", _gzip_of_zeros(200))), file="bomb.json.gz", says=("decompresses",)),
    "check_checks_file_symlink_out": lambda p: _check_case(
        p, "--checks", str(_symlink(p / "configs" / "c.yaml", _outside(p, "c.yaml", "findings: {}\n"))), file="c.yaml",
        says=("symlink",)),
}


CASES.update(ROUND_TWO)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture(scope="session")
def forked():
    return run_forked  # the fork server is stopped at the end of the session (tests/conftest.py)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, project_dir, fake_anthropic, tmp_path_factory, forked):
    ready_project(project_dir)
    case = CASES[name](project_dir)
    args = [case.command, *case.args]
    if case.command == "run":
        args += ["--api-key", "test-key", "--progress", "quiet"]
    before = _snapshot(project_dir)
    result = forked(args, cwd=case.cwd or project_dir, env=cli_env(ANTHROPIC_BASE_URL=fake_anthropic.base_url),
                    out_dir=tmp_path_factory.mktemp("cli-output"), timeout=TIMEOUT, memory_cap=MEMORY_CAP)

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
    assert _snapshot(project_dir) == before  # nothing written, created or changed anywhere in the project
    assert not (project_dir / "PWNED").exists()


def test_suite_covers_enough_cases():
    assert len(CASES) >= 100


def test_memory_cap_is_low_enough_to_catch_the_bombs():
    """The cap must be below what the unguarded cases allocate, or it would prove nothing."""
    assert MEMORY_CAP < 3_000_000_000 and MEMORY_CAP < 1500 * 1024 * 1024
