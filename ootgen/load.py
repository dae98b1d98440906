"""Pipeline stage 1, load: presets (+ `extends:`) and `--set` overrides -> validated, immutable project.

Nothing is sent to the API before everything here has loaded and every template has rendered once.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import resources
from .errors import ConfigError
from .limits import LIMITS
from .models import ModelTable, load_model_table
from .plan import sample_generation_vars, sample_judge_vars
from .records import LEVELS, Topic
from .render import PromptRenderer
from .schemas import validate_file_data
from .settings import Settings, build
from .yamlfile import SourceMap, confine, format_key, load_yaml_file, parse_yaml, read_text

# Keys whose values are paths, resolved relative to the preset file that sets them.
_PATH_KEYS = ("models_table", "checks", "questions")
_PATH_LIST_KEYS = ("types_dirs", "extra_types_dirs", "template_dirs", "context_dirs")
# Keys a preset states whole: the built-in default's entries are not merged into them (a preset's own `mix`
# without every built-in type, a standalone preset's templates without the optional second blocks).
_STATED_WHOLE = ("mix", "templates")
# Keys that do not change the work a run does (so changing them is fine on resume).
_NON_WORK_KEYS = ("num_examples", "output", "concurrency", "budget", "batch")
# The placeholders the planner fills (plan.py replaces `{topic}`, and `{function}` in a grounded slot's style).
INSTRUCTION_PLACEHOLDERS = ("topic",)
GROUNDED_PLACEHOLDERS = ("topic", "function")
_PLACEHOLDER = re.compile(r"\{(\w*)\}")


@dataclass(frozen=True)
class ExampleType:
    name: str
    description: str
    weight: float
    instruction_variants: tuple[str, ...]
    contexts: tuple[str, ...]
    complexities: tuple[str, ...]
    carries_input: bool
    input_kind: str
    requires_code_in_output: bool
    answer_must: tuple[str, ...]
    turns: tuple[int, int] | None
    generate_template: str | None
    file: str
    question_cues: tuple[str, ...] = ()
    grounded_input: str = "verbatim"
    topics_like: str = ""  # plan with the topics that list this type instead (a drop-in type no context names)
    grounded_instruction_variants: tuple[str, ...] = ()  # styles for a slot with a real decomp function

    @property
    def topic_type(self) -> str:
        """The type name a context topic must list to be planned with this type."""
        return self.topics_like or self.name

    def as_template_vars(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "carries_input": self.carries_input,
            "input_kind": self.input_kind,
            "requires_code_in_output": self.requires_code_in_output,
            "answer_must": list(self.answer_must),
            "turns": {"min": self.turns[0], "max": self.turns[1]} if self.turns else None,
            "multi_turn": self.turns is not None,
            "grounded_input": self.grounded_input,
        }


@dataclass(frozen=True)
class Context:
    id: str
    title: str
    types: tuple[str, ...]
    tags: tuple[str, ...]
    topics: tuple[Topic, ...]
    body: str
    file: str
    sources: tuple[str, ...] = ()

    @property
    def topic_names(self) -> tuple[str, ...]:
        return tuple(t.topic for t in self.topics)

    def topics_for(self, type_name: str, level: str | None = None) -> tuple[Topic, ...]:
        """The topics that list `type_name` (and `level`, when given)."""
        return tuple(t for t in self.topics if t.suits(type_name, level))

    def as_template_vars(self) -> dict:
        return {"id": self.id, "title": self.title, "tags": list(self.tags), "body": self.body}


@dataclass(frozen=True, slots=True)
class RunConfig(Settings):
    """The resolved run settings (after extends, --set and the built-in defaults), typed, and where each came from."""

    file: str
    source: SourceMap
    raw: Mapping[str, Any]  # the same settings as plain data: what the run directory records and the hashes cover


@dataclass(frozen=True)
class Project:
    """Everything a run needs, loaded and checked: config, types, contexts, models, templates."""

    config: RunConfig
    types: dict[str, ExampleType]
    contexts: dict[str, Context]
    models: ModelTable
    renderer: PromptRenderer
    work_hash: str
    config_hash: str
    checks: dict  # the static L1 policy (checks.yaml), validated
    warnings: tuple[str, ...] = ()  # things worth saying before a run that do not stop it (unknown model ids)

    @property
    def mix(self) -> dict[str, float]:
        weights = {name: t.weight for name, t in self.types.items()}
        weights.update(self.config.mix)
        return {name: w for name, w in weights.items() if w > 0}


def resolve_config_path(ref: str | Path) -> Path:
    """A path to a preset file, or the name of a built-in preset (`default`)."""
    path = Path(ref)
    if path.exists():
        return path.resolve()
    builtin = resources.builtin_preset(str(ref))
    if builtin is not None:
        return builtin
    available = sorted(p.stem for p in (resources.data_root() / "configs").glob("*.yaml") if p.stem != "models")
    raise ConfigError(
        "config file not found",
        file=str(ref),
        expected="a path to a preset YAML file or a built-in preset name: " + ", ".join(available),
    )


Override = str | tuple[str, str]  # "key.path=value", or (that, what the user typed: "--model X") for errors


def load_project(ref: str | Path, overrides: tuple[Override, ...] | list[Override] = ()) -> Project:
    """Load, merge, override, validate and pre-render everything a run needs."""
    config = load_run_config(ref, overrides)
    _check_output_paths(config)
    types = load_types(config)
    contexts = load_contexts(config)
    _check_cross_references(config, types, contexts)
    models = load_model_table(Path(config.models_table))
    warnings = _check_model_names(config, models)
    _check_plan_options(config, types)
    checks = load_checks(config.checks)  # the run needs it only after the first replies: check it now
    if config.symbols != "default":
        from .symbols import SymbolIndex

        SymbolIndex.load(confine(Path(config.symbols), what="symbol index"))  # same reason: fail before any request
    renderer = PromptRenderer([Path(d) for d in config.template_dirs], dict(config.templates), source=config.source)
    renderer.check_all(types, contexts, sample_generation_vars, sample_judge_vars)
    _render_every_combination(renderer, config, types, contexts)
    work_hash, config_hash = _hashes(config, types, contexts, renderer)
    return Project(config, types, contexts, models, renderer, work_hash, config_hash, checks, warnings)


def _render_every_combination(renderer, config: RunConfig, types: dict[str, ExampleType], contexts: dict[str, Context]) -> None:
    """Render each type with every context and level the planner can give it, so a branch that only one
    context or level takes fails here and not after money is spent (check_all renders the first only)."""
    for context_id, context in contexts.items():
        try:
            renderer.system_prompt(context.as_template_vars())
        except ConfigError as error:
            raise ConfigError(f"{error.message} (rendering context '{context_id}')", file=error.file, line=error.line) from None
    levels = config.complexities
    for example_type in types.values():
        first = contexts[example_type.contexts[0]]
        for structured in (True, False):
            # Built once per type (the reply schema text is the costly part), then pointed at each context and level.
            base_generation = sample_generation_vars(example_type, first, structured=structured)
            base_judge = sample_judge_vars(example_type, first, structured=structured)
            for context_id in example_type.contexts:
                context = contexts[context_id]
                for level in (lv for lv in levels if lv in example_type.complexities):
                    variables = {**base_generation, "context": context.as_template_vars(), "complexity": level,
                                 "requests": [{**request, "level": level, "topic": topic}
                                              for request, topic in zip(base_generation["requests"], _sample_topics(context, example_type, level))]}
                    judge_variables = {**base_judge, "context": context.as_template_vars(),
                                       "candidates": [{**candidate, "complexity": level, "topic": _sample_topics(context, example_type, level)[0]}
                                                      for candidate in base_judge["candidates"]]}
                    try:  # the fixed instruction blocks see no context or level: check_all rendered them
                        renderer.render("generate", variables, override=example_type.generate_template)
                        renderer.render("judge", judge_variables)
                    except ConfigError as error:
                        raise ConfigError(
                            f"{error.message} (rendering type '{example_type.name}' with context '{context_id}', level '{level}')",
                            file=error.file, line=error.line, key=error.key, expected=error.expected,
                        ) from None


def _sample_topics(context: Context, example_type: ExampleType, level: str) -> tuple[str, ...]:
    """Topics the planner would pair with this type and level, else any of the context's (community questions
    may land on a combination no topic lists)."""
    suited = tuple(t.topic for t in context.topics_for(example_type.topic_type, level))
    return (suited + context.topic_names)[:2] if suited else context.topic_names[:2]


def _check_output_paths(config: RunConfig) -> None:
    """The dataset, its side files and the default run directory can be written (checked before any request)."""
    output = Path(config.output)
    file, line = config.source.locate(("output",))
    stem = output.with_suffix("")
    for path in (output, Path(f"{stem}_metadata.json"), Path(f"{stem}_rejected.jsonl")):
        if path.is_dir():
            raise ConfigError(f"output {path} is an existing folder", file=file, line=line, key="output",
                              expected="a path for a .jsonl file (its _metadata.json and _rejected.jsonl go next to it)")
    run_dir = output.with_name(output.stem + ".run")
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"the run directory {run_dir} is an existing file", file=file, line=line, key="output",
                          expected="an output whose <stem>.run is free or a run directory")
    check_writable(output, creates_folders=True, file=file, line=line, key="output")


def check_writable(path: Path, *, creates_folders: bool = False, file: str | None = None, line: int | None = None,
                   key: str | None = None) -> None:
    """`path` can be written as a file: not a folder, in a folder that exists (or, with `creates_folders`, whose
    nearest existing ancestor is) and is writable. Checked before the work whose result it will hold."""
    def refuse(message: str, expected: str) -> ConfigError:
        return ConfigError(message, file=file or str(path), line=line, key=key, expected=expected)

    if path.is_dir():
        raise refuse(f"output {path} is an existing folder", "a file path")
    folder = path.absolute().parent
    while creates_folders and not folder.exists() and folder != folder.parent:
        folder = folder.parent  # missing folders are created: the nearest existing one must be writable
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise refuse(f"cannot write {path}: {folder} {problem}", "an output path in an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise refuse(f"cannot write {path}: folder {folder} is not writable", "an output path in a folder you can write")


def _check_model_names(config: RunConfig, models: ModelTable) -> tuple[str, ...]:
    """Every model the run will call (`model`, `judge.model`, `judges`) against the model table.

    Retired ids and near-misses of a known id (`claude-sonet-5`: one or two letters off) are refused; an
    unknown id that is no near-miss is most likely a newer model: it is allowed, with a warning (cost unknown).
    """
    warnings: list[str] = []
    for name, key in config.named_models:
        file, line = config.source.locate(key)
        info = models.resolve(name, source=f"{file}:{line}" if line else (file or config.file))
        if info.known:
            continue
        typo_of = _near_miss(name, models)
        if typo_of is not None:
            raise ConfigError(f"model '{name}' is not in the model table; did you mean '{typo_of}'?", file=file, line=line,
                              key=format_key(key), expected=f"a model id or alias from {models.file} (add new models there)")
        hint = models.suggestion(name)
        warning = f"model '{name}' ({format_key(key)}) is not in the model table; cost is unknown"
        warnings.append(warning + (f" (did you mean '{hint}'?)" if hint else ""))
    return tuple(dict.fromkeys(warnings))


def _near_miss(name: str, models: ModelTable) -> str | None:
    """A known id or alias whose letters differ from `name`'s by one or two edits (digits are versions, not typos)."""
    letters = re.sub(r"[^a-z]", "", name.lower())
    best: tuple[int, str] | None = None
    for known in models.names:
        distance = _edit_distance(letters, re.sub(r"[^a-z]", "", known.lower()))
        if 0 < distance <= 2 and (best is None or distance < best[0]):
            best = (distance, known)
    return best[1] if best else None


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def load_checks(path: str | Path | None = None) -> dict:
    """The static L1 policy (the built-in configs/checks.yaml by default), validated with line-mapped errors."""
    path = Path(path) if path else resources.data_root() / "configs" / "checks.yaml"
    checks, source = load_yaml_file(path, "checks file")
    if not isinstance(checks, dict):
        raise ConfigError("a checks file must be a YAML mapping", file=str(path), line=1)
    validate_file_data(checks, "checks", source, str(path), "checks file")
    return checks


def load_run_config(ref: str | Path, overrides: tuple[Override, ...] | list[Override] = ()) -> RunConfig:
    path = resolve_config_path(ref)
    data, source = _load_preset_chain(path, ())
    for override in overrides:
        text, typed = override if isinstance(override, tuple) else (override, f"--set {override}")
        _apply_override(data, source, text, typed)
        _resolve_paths(data, Path.cwd(), only_keys_from=text)
    data.pop("extends", None)
    validate_file_data(data, "run_config", source, str(path), "run config")
    data, source = _with_defaults(data, source)
    _check_paths_exist(data, source)
    return build(RunConfig, data, file=str(path), source=source, raw=data)


def _over_builtin(data: dict) -> tuple[dict, dict, SourceMap]:
    """`data` merged over the built-in default preset (less the keys a preset states whole), that preset (shared:
    read only) and its source map. The built-in preset is the one place that holds defaults."""
    path = resources.data_root() / "configs" / "default.yaml"
    builtin, lines = _builtin_preset(path, path.stat().st_mtime_ns)
    merged = _deep_merge({key: value for key, value in builtin.items() if key not in _STATED_WHOLE}, data)  # copies
    return merged, builtin, SourceMap(dict(lines))


@functools.lru_cache(maxsize=2)
def _builtin_preset(path: Path, _mtime_ns: int) -> tuple[dict, dict]:
    """The built-in preset, parsed once per version of the file (callers copy what they change)."""
    data, source = _load_preset_chain(path, ())
    return data, source.lines


def _with_defaults(data: dict, source: SourceMap) -> tuple[dict, SourceMap]:
    """Every key the (validated) preset chain leaves out, from the built-in default preset, so a preset without
    `extends:` gets the same defaults. A missing `mix:` overrides no type's weight."""
    merged, _, builtin_source = _over_builtin(data)
    merged.setdefault("mix", {})
    builtin_source.update(source)
    return merged, builtin_source


def recorded_settings(stored: Mapping[str, Any]) -> Settings:
    """The settings a run directory recorded, typed; a key that an older ootgen did not record takes its
    built-in default."""
    merged, builtin, _ = _over_builtin(dict(stored))
    for key in _STATED_WHOLE:
        merged.setdefault(key, copy.deepcopy(builtin[key]))
    return build(Settings, merged)


def _where(config: RunConfig, key: tuple) -> str:
    file, line = config.source.locate(key)
    return f"{file}:{line}" if line else str(file or config.file)


def _load_preset_chain(path: Path, seen: tuple[Path, ...]) -> tuple[dict, SourceMap]:
    data, source = load_yaml_file(path, "config file")
    if data is None:
        raise ConfigError("config file is empty", file=str(path), expected="a YAML mapping of run settings")
    if not isinstance(data, dict):
        raise ConfigError("a preset must be a YAML mapping", file=str(path), line=1, expected="key: value pairs")
    _resolve_paths(data, path.parent)
    base_ref = data.pop("extends", None)
    if base_ref is None:
        return data, source
    line = source.locate(("extends",))[1]
    if not isinstance(base_ref, str):
        raise ConfigError("bad value", file=str(path), line=line, key="extends", expected="a preset name or path")
    base = _resolve_extends(base_ref, path, line)
    if base in seen or base == path:
        chain = " -> ".join(p.name for p in (*seen, path, base))
        raise ConfigError(f"extends cycle: {chain}", file=str(path), line=line, key="extends")
    base_data, base_source = _load_preset_chain(base, (*seen, path))
    merged = _deep_merge(base_data, data)
    base_source.update(source)
    return merged, base_source


def _resolve_extends(ref: str, path: Path, line: int | None) -> Path:
    builtin = resources.builtin_preset(ref)
    if builtin is not None:
        return builtin
    tree = path.parent.resolve()
    target = (tree / ref).resolve()
    if tree != target.parent and tree not in target.parents:
        raise ConfigError(
            f"extends '{ref}' leaves the preset's own folder {tree}",
            file=str(path),
            line=line,
            key="extends",
            expected="a built-in preset name or a path inside the preset's folder",
        )
    if not target.is_file():
        raise ConfigError(f"extends '{ref}': no such preset", file=str(path), line=line, key="extends")
    return target


def _resolve_paths(data: dict, base: Path, only_keys_from: str | None = None) -> None:
    """Make path-valued keys absolute relative to `base` (the folder of the file that set them)."""
    keys_set = None
    if only_keys_from is not None:
        keys_set = {only_keys_from.split("=", 1)[0].strip().split(".")[0]}
    def absolute(value: str) -> str:
        # Lexical (symlinks kept), so the loaders can tell a file that a symlink takes out of its folder.
        return os.path.normpath(os.path.join(base.absolute(), value))

    for key in _PATH_KEYS:
        if (keys_set is None or key in keys_set) and isinstance(data.get(key), str):
            data[key] = absolute(data[key])
    if isinstance(data.get("symbols"), str) and data["symbols"] != "default" and (keys_set is None or "symbols" in keys_set):
        data["symbols"] = absolute(data["symbols"])
    for section, keys in (("grounding", ("decomp_dir", "index")), ("compiler", ("checkout",))):
        sub = data.get(section)
        if (keys_set is None or section in keys_set) and isinstance(sub, dict):
            for key in keys:
                if isinstance(sub.get(key), str):
                    sub[key] = absolute(sub[key])
    for key in _PATH_LIST_KEYS:
        if (keys_set is None or key in keys_set) and isinstance(data.get(key), list):
            data[key] = [absolute(item) if isinstance(item, str) else item for item in data[key]]


def _deep_merge(base: dict, top: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _apply_override(data: dict, source: SourceMap, override: str, where: str) -> None:
    if "=" not in override:
        raise ConfigError("expected key.path=value", file=where, key=override.strip() or "(empty)")
    key_path, _, raw = override.partition("=")
    parts = [p for p in key_path.strip().split(".")]
    if not key_path.strip() or any(not p for p in parts):
        raise ConfigError("empty key in key path", file=where, key=key_path, expected="key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError(f"value is not valid YAML: {str(error).splitlines()[0]}", file=where, key=key_path) from None
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(
                f"'{format_key(tuple(parts[: depth + 1]))}' is not a mapping, cannot set '{parts[-1]}' inside it",
                file=where,
                key=key_path,
            )
        node = child
    node[parts[-1]] = value
    for depth in range(len(parts)):
        source.lines[tuple(parts[: depth + 1])] = (where, None)
    if isinstance(value, (dict, list)):
        _, sub = parse_yaml(raw, where)
        for sub_path in sub.lines:
            source.lines[tuple(parts) + tuple(sub_path)] = (where, None)


def _check_paths_exist(data: dict, source: SourceMap) -> None:
    def missing(key_path: tuple, value: str, what: str, want_dir: bool) -> None:
        path = Path(value)
        ok = path.is_dir() if want_dir else path.is_file()
        if not ok:
            file, line = source.locate(key_path)
            raise ConfigError(f"{what} not found: {value}", file=file, line=line, key=format_key(key_path))

    for key in _PATH_LIST_KEYS:
        for index, value in enumerate(data.get(key) or []):
            missing((key, index), value, "folder", True)
    for key in _PATH_KEYS:
        if data.get(key):
            missing((key,), data[key], "file", False)
    if data.get("symbols") not in (None, "default"):
        missing(("symbols",), data["symbols"], "symbol index", False)


def load_types(config: RunConfig) -> dict[str, ExampleType]:
    dirs = list(dict.fromkeys([*config.types_dirs, *config.extra_types_dirs]))  # a folder listed twice is read once
    types: dict[str, ExampleType] = {}
    for folder in dirs:
        for path in sorted(Path(folder).glob("*.y*ml")):
            example_type = load_example_type(path, Path(folder))
            if example_type.name in types:
                raise ConfigError(
                    f"duplicate example type name '{example_type.name}' (also defined in {types[example_type.name].file})",
                    file=str(path),
                    line=load_yaml_file(path)[1].locate(("name",))[1],  # re-read only on this error path
                    key="name",
                    expected="a unique type name",
                )
            types[example_type.name] = example_type
    if not types:
        raise ConfigError("no example types found", file=config.file, key="types_dirs", expected="*.yaml files in the types folders")
    return types


def load_example_type(path: Path, folder: Path | None = None) -> ExampleType:
    data, source = load_yaml_file(path, "example type file", folder=folder)
    if not isinstance(data, dict):
        raise ConfigError("an example type must be a YAML mapping", file=str(path), line=1)
    validate_file_data(data, "example_type", source, str(path), "example type")
    _check_placeholders("instruction_variants", data["instruction_variants"], INSTRUCTION_PLACEHOLDERS, source, path)
    _check_placeholders("grounded_instruction_variants", data.get("grounded_instruction_variants") or [], GROUNDED_PLACEHOLDERS,
                        source, path)
    turns = data.get("turns")
    turn_range = None
    if turns is not None:
        turn_range = (turns.get("min", 2), turns.get("max", max(turns.get("min", 2), 4)))
        if turn_range[0] > turn_range[1]:
            raise ConfigError("turns.min is larger than turns.max", file=str(path), line=source.locate(("turns",))[1], key="turns")
    return ExampleType(
        name=data["name"],
        description=data["description"],
        weight=float(data.get("weight", 1.0)),
        instruction_variants=tuple(data["instruction_variants"]),
        contexts=tuple(data["contexts"]),
        complexities=tuple(data["complexities"]),
        carries_input=bool(data["carries_input"]),
        input_kind=data.get("input_kind", "c_code" if data["carries_input"] else "none"),
        requires_code_in_output=bool(data.get("requires_code_in_output", False)),
        answer_must=tuple(data["answer_must"]),
        turns=turn_range,
        generate_template=data.get("generate_template"),
        file=str(path),
        question_cues=tuple(cue.lower() for cue in data.get("question_cues", [])),
        grounded_input=data.get("grounded_input", "verbatim"),
        topics_like=data.get("topics_like", ""),
        grounded_instruction_variants=tuple(data.get("grounded_instruction_variants", ())),
    )


def _check_placeholders(key: str, variants: list[str], allowed: tuple[str, ...], source: SourceMap, path: Path) -> None:
    """`{name}` in an instruction variant must be a placeholder the planner fills, or it reaches the API verbatim."""
    for index, variant in enumerate(variants):
        for name in _PLACEHOLDER.findall(variant):
            if name not in allowed:
                hint = difflib.get_close_matches(name, allowed, n=1)
                raise ConfigError(
                    f"unknown placeholder '{{{name}}}'" + (f"; did you mean '{{{hint[0]}}}'?" if hint else ""),
                    file=str(path), line=source.locate((key, index))[1], key=f"{key}[{index}]",
                    expected="only " + ", ".join(f"{{{p}}}" for p in allowed),
                )


def load_contexts(config: RunConfig) -> dict[str, Context]:
    contexts: dict[str, Context] = {}
    for folder in config.context_dirs:
        for path in sorted(Path(folder).glob("*.md")):
            context = load_context(path, Path(folder))
            if context.id in contexts:
                raise ConfigError(
                    f"duplicate context id '{context.id}' (also in {contexts[context.id].file})", file=str(path), line=2, key="id"
                )
            contexts[context.id] = context
    if not contexts:
        raise ConfigError("no contexts found", file=config.file, key="context_dirs", expected="*.md files with YAML front matter")
    return contexts


def load_context(path: Path, folder: Path | None = None) -> Context:
    text = read_text(path, "context file", max_bytes=LIMITS.context_file_bytes, folder=folder)
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise ConfigError("missing YAML front matter", file=str(path), line=1, expected="a first line '---', then id/title/types/tags/topics, then '---'")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        raise ConfigError("front matter is not closed", file=str(path), line=1, expected="a closing '---' line") from None
    data, source = parse_yaml("\n".join(lines[1:end]), str(path), line_offset=1)
    if not isinstance(data, dict):
        raise ConfigError("front matter must be a YAML mapping", file=str(path), line=2)
    validate_file_data(data, "context", source, str(path), "context front matter")
    if data["id"] != path.stem:
        raise ConfigError(f"id '{data['id']}' differs from the file name", file=str(path), line=source.locate(("id",))[1], key="id", expected=f"id: {path.stem}")
    body = "\n".join(lines[end + 1 :]).strip()
    if len(body.split()) < 50:
        raise ConfigError("context body is almost empty", file=str(path), line=end + 2, expected="at least 50 words of knowledge")
    return Context(
        id=data["id"],
        title=data["title"],
        types=tuple(data["types"]),
        tags=tuple(data["tags"]),
        topics=_topics(data, source, path),
        body=body,
        file=str(path),
        sources=tuple(data.get("sources") or ()),
    )


def _topics(data: dict, source: SourceMap, path: Path) -> tuple[Topic, ...]:
    """Topic objects; a topic's types must be among the context's types ('*' allows every type)."""
    context_types = tuple(data["types"])
    topics = []
    for index, item in enumerate(data["topics"]):
        line = source.locate(("topics", index))[1]
        if "*" not in context_types:
            for position, name in enumerate(item["types"]):
                if name not in context_types:
                    raise ConfigError(
                        f"topic type '{name}' is not one of the context's types",
                        file=str(path),
                        line=source.locate(("topics", index, "types", position))[1] or line,
                        key=f"topics[{index}].types[{position}]",
                        expected="one of: " + ", ".join(context_types),
                    )
        topics.append(Topic(item["topic"], tuple(item["types"]), tuple(item.get("levels") or LEVELS), tuple(item.get("angles") or ()), line))
    return tuple(topics)


def unknown_name(what: str, name: str, choices) -> str:
    """"unknown <what> 'name'", with the closest of `choices` as a "did you mean" when there is one."""
    hint = difflib.get_close_matches(name, list(choices), n=1)
    return f"unknown {what} '{name}'" + (f"; did you mean '{hint[0]}'?" if hint else "")


def _check_cross_references(config: RunConfig, types: dict[str, ExampleType], contexts: dict[str, Context]) -> None:
    for example_type in types.values():
        for index, context_id in enumerate(example_type.contexts):
            if context_id not in contexts:
                raise ConfigError(
                    unknown_name("context", context_id, contexts),
                    file=example_type.file,
                    key=f"contexts[{index}]",
                    line=_line_of(example_type.file, context_id),
                    expected="one of: " + ", ".join(sorted(contexts)),
                )
    for context in contexts.values():
        for index, topic in enumerate(context.topics):
            for position, name in enumerate(topic.types):
                if name not in types:
                    raise ConfigError(
                        unknown_name("example type", name, types),
                        file=context.file,
                        line=topic.line,
                        key=f"topics[{index}].types[{position}]",
                        expected="one of: " + ", ".join(sorted(types)),
                    )
    for name in config.mix:
        if name not in types:
            file, line = config.source.locate(("mix", name))
            raise ConfigError(
                unknown_name("example type", name, types),
                file=file,
                line=line,
                key=f"mix.{name}",
                expected="one of: " + ", ".join(sorted(types)),
            )
    mix = {name: t.weight for name, t in types.items()}
    mix.update(config.mix)
    if not any(weight > 0 for weight in mix.values()):
        file, line = config.source.locate(("mix",))
        raise ConfigError("every example type has weight 0", file=file or config.file, line=line, key="mix", expected="at least one weight > 0")
    wanted = set(config.complexities)
    for name, weight in mix.items():
        if weight > 0 and not wanted.intersection(types[name].complexities):
            file, line = config.source.locate(("complexities",))
            raise ConfigError(
                f"example type '{name}' allows none of the configured complexities",
                file=file,
                line=line,
                key="complexities",
                expected="one of: " + ", ".join(types[name].complexities),
            )
    for name, weight in mix.items():
        example_type = types[name]
        if example_type.topics_like and example_type.topics_like not in types:
            raise ConfigError(
                unknown_name("example type", example_type.topics_like, types),
                file=example_type.file,
                key="topics_like",
                line=_line_of(example_type.file, "topics_like:"),
                expected="one of: " + ", ".join(sorted(types)),
            )
        levels = [lv for lv in config.complexities if lv in example_type.complexities]
        if weight > 0 and not any(contexts[c].topics_for(example_type.topic_type, lv) for c in example_type.contexts for lv in levels):
            raise ConfigError(
                f"no topic of the contexts of example type '{name}' lists '{example_type.topic_type}' at "
                + "/".join(levels),
                file=example_type.file,
                key="contexts",
                line=_line_of(example_type.file, "contexts:"),
                expected=f"a context topic with '{example_type.topic_type}' in its types, or `topics_like: <a built-in type>`",
            )


def _check_plan_options(config: RunConfig, types: dict[str, ExampleType]) -> None:
    """ladders, grounding and questions name types and files that exist (checked before any request)."""
    for section, names in (("ladders", config.ladders.types), ("grounding", config.grounding.types)):
        for index, name in enumerate(names):
            if name not in types:
                file, line = config.source.locate((section, "types", index))
                raise ConfigError(unknown_name("example type", name, types),
                                  file=file, line=line, key=f"{section}.types[{index}]", expected="one of: " + ", ".join(sorted(types)))
    grounding = config.grounding
    if grounding.on:
        file, line = config.source.locate(("grounding",))
        if not grounding.decomp_dir or not Path(grounding.decomp_dir).is_dir():
            raise ConfigError("grounding needs your decomp checkout", file=file, line=line, key="grounding.decomp_dir",
                              expected="the folder of a zeldaret/oot checkout")
        index_file = grounding.index or config.symbols
        if index_file == "default" or not Path(index_file).is_file():
            raise ConfigError("grounding needs an index of your checkout (the shipped one has no line ranges)",
                              file=file, line=line, key="grounding.index or symbols",
                              expected="the file written by `ootgen index DECOMP_DIR`")
        from .grounding import FunctionPool
        from .symbols import SymbolIndex

        FunctionPool(grounding, SymbolIndex.load(confine(Path(index_file), what="symbol index")), seed=0, index_file=index_file)  # every file it may read
    if config.questions:
        from .questions import load_questions

        load_questions(config.questions)


def _line_of(file: str, needle: str) -> int | None:
    try:
        for number, line in enumerate(Path(file).read_text(encoding="utf-8").splitlines(), 1):
            if needle in line:
                return number
    except OSError:
        pass
    return None


def _hashes(config: RunConfig, types, contexts, renderer) -> tuple[str, str]:
    """work_hash covers what changes the work (prompts, models, scoring); config_hash covers everything."""
    # Paths are replaced by the digests of what they point at, so moving a project keeps its hash.
    settings = {k: v for k, v in config.raw.items() if k not in _PATH_KEYS + _PATH_LIST_KEYS + ("symbols",)}
    work = {k: v for k, v in settings.items() if k not in _NON_WORK_KEYS}
    symbols = config.symbols
    files = {
        "types": {name: _file_digest(t.file) for name, t in sorted(types.items())},
        "contexts": {cid: _file_digest(c.file) for cid, c in sorted(contexts.items())},
        "templates": renderer.digest(),
        "checks": _file_digest(config.checks),
        "symbols": _file_digest(str(resources.default_symbol_index() if symbols == "default" else symbols)),
        "models": _file_digest(config.models_table),
        "questions": _file_digest(config.questions) if config.questions else None,
        "grounding_index": _file_digest(config.grounding.index) if config.grounding.index else None,
    }

    def digest(obj: Any) -> str:
        return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]

    return digest({"work": work, "files": files}), digest({"settings": settings, "files": files})


def _file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
