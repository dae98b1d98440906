"""Offline commands' library side: validation summary, types table, prompt preview, `init`.

None of these needs a key or the network.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

from . import resources
from .errors import ConfigError
from .records import Example


def validation_summary(project) -> str:
    config = project.config
    model = project.models.resolve(config.model)
    judge_id = config.judge_model_id
    judge = project.models.resolve(judge_id)
    mix = project.mix
    total = sum(mix.values())
    lines = [
        f"OK  {config.file}",
        f"  model        {model.id}" + ("" if model.known else "  (unknown to the model table: cost cannot be estimated)"),
        f"  judge        {judge.id}" + ("" if judge.known else "  (unknown to the model table)"),
        f"  examples     {config.num_examples} accepted wanted -> {config.output}",
        f"  seed         {config.seed}",
        f"  types        {len(project.types)}: " + ", ".join(f"{n} {mix.get(n, 0) / total:.0%}" for n in sorted(project.types)),
        f"  contexts     {len(project.contexts)}: " + ", ".join(sorted(project.contexts)),
        f"  topics       {sum(len(c.topics) for c in project.contexts.values())}",
        "  templates    " + ", ".join(f"{role}={name}" for role, name in config.templates.items()) + " (all rendered once)",
        f"  threshold    {config.scoring.threshold}",
        f"  work hash    {project.work_hash}",
    ]
    return "\n".join(lines)


def types_table(project) -> str:
    mix = project.mix
    total = sum(mix.values()) or 1.0
    header = ("type", "weight", "share", "input", "contexts", "complexities", "file")
    rows = [header]
    for name in sorted(project.types):
        t = project.types[name]
        rows.append(
            (
                name,
                f"{mix.get(name, 0):g}",
                f"{mix.get(name, 0) / total:.0%}",
                t.input_kind if t.carries_input else "-",
                ", ".join(t.contexts),
                ", ".join(t.complexities),
                Path(t.file).name,
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def render_task(project, *, type_name: str | None = None, index: int = 0, judge: bool = False) -> str:
    from .plan import generation_vars, iter_plan, judge_vars

    if type_name is not None and type_name not in project.types:
        raise ConfigError(f"unknown example type '{type_name}'", key="--type", expected="one of: " + ", ".join(sorted(project.types)))
    if index < 0:
        raise ConfigError("must be >= 0", key="--index")
    stream = (t for t in iter_plan(project) if type_name is None or t.type == type_name)
    task = next(itertools.islice(stream, index, None))
    model = project.models.resolve(project.config.model)
    structured = model.structured
    if judge:
        candidates = [
            (Example(instruction=f"(candidate {n} for topic: {topic})", output="(the generated answer)", type=task.type, topic=topic), task.complexity)
            for n, topic in enumerate(task.topics, 1)
        ]
        prompt = project.renderer.judge_prompt(judge_vars(candidates, project, task.context, structured=structured))
    else:
        override = project.types[task.type].generate_template
        prompt = project.renderer.generation_prompt(generation_vars(task, project, structured=structured), override=override)
    head = f"# {task.key}: type={task.type} context={task.context} complexity={task.complexity} topics={list(task.topics)}"
    return "\n".join(
        [
            head,
            "=" * 30 + " system (cached prefix) " + "=" * 30,
            prompt.system.rstrip(),
            *(["=" * 30 + " system: rules (cached) " + "=" * 30, prompt.rules.rstrip()] if prompt.rules else []),
            *(["=" * 30 + " system: instructions (cached) " + "=" * 30, prompt.instructions.rstrip()] if prompt.instructions else []),
            "=" * 30 + " user " + "=" * 30,
            prompt.user.rstrip(),
        ]
    )


def init_project(directory: str, *, force: bool = False) -> list[str]:
    """Copy the built-in editable files into `directory`; refuse to overwrite unless forced."""
    target = Path(directory)
    source_root = resources.data_root()
    pairs = []
    for kind in resources.DATA_KINDS:
        for path in sorted((source_root / kind).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                pairs.append((path, target / kind / path.relative_to(source_root / kind)))
    linked = [path for _, dest in pairs for path in (dest, *dest.parents) if path.is_symlink() and target in (path, *path.parents)]
    if linked:  # --force included: never write through a link to somewhere else
        raise ConfigError(
            f"{linked[0]} is a symbolic link; nothing was copied",
            file=str(target),
            expected="a folder without symbolic links where the files go",
        )
    existing = [dest for _, dest in pairs if dest.exists()]
    if existing and not force:
        raise ConfigError(
            f"{len(existing)} file(s) already exist, e.g. {existing[0]}; nothing was copied",
            file=str(target),
            expected="an empty folder, or --force to overwrite",
        )
    for src, dest in pairs:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    return [f"copied {len(pairs)} files into {target}", f"next: ootgen validate {target / 'configs' / 'default.yaml'}"]
