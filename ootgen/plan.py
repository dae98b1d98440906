"""Pipeline stage 2, plan: a deterministic stream of generation tasks from the config and its seed.

Types follow the configured mix exactly (smooth weighted round-robin, not random draws); each type
cycles through its contexts x complexities, and each context's topics are used before any repeats.
Same config + seed -> same plan.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Iterator

from .records import Example


@dataclass(frozen=True)
class Task:
    """One generation call: `len(topics)` candidates of one type, context and complexity."""

    index: int
    type: str
    context: str
    complexity: str
    topics: tuple[str, ...]
    instructions: tuple[str, ...]  # the instruction style chosen for each candidate

    @property
    def key(self) -> str:
        return f"task-{self.index:06d}"

    @property
    def count(self) -> int:
        return len(self.topics)


def iter_plan(project, *, examples_per_call: int | None = None) -> Iterator[Task]:
    """The infinite, deterministic task stream of a project (take as many as the run needs)."""
    config = project.config
    per_call = examples_per_call or config["generation"]["examples_per_call"]
    rng = random.Random(config["seed"])
    mix = project.mix
    names = sorted(mix)
    rng.shuffle(names)
    complexities = [c for c in config["complexities"]]

    slots: dict[str, Iterator[tuple[str, str]]] = {}
    variants: dict[str, Iterator[str]] = {}
    for name in names:
        example_type = project.types[name]
        combos = [
            (ctx, level)
            for ctx in example_type.contexts
            for level in complexities
            if level in example_type.complexities
        ]
        rng.shuffle(combos)
        slots[name] = itertools.cycle(combos)
        styles = list(example_type.instruction_variants)
        rng.shuffle(styles)
        variants[name] = itertools.cycle(styles)
    topic_queues: dict[tuple[str, str], list[str]] = {}

    def next_topic(type_name: str, context_id: str) -> str:
        queue = topic_queues.setdefault((type_name, context_id), [])
        if not queue:
            topics = list(project.contexts[context_id].topics)
            rng.shuffle(topics)
            queue.extend(topics)
        return queue.pop(0)

    current = {name: 0.0 for name in names}
    total = sum(mix.values())
    for index in itertools.count():
        for name in names:  # smooth weighted round-robin: deterministic and proportional to the mix
            current[name] += mix[name]
        chosen = max(names, key=lambda n: current[n])
        current[chosen] -= total
        context_id, level = next(slots[chosen])
        topics = tuple(next_topic(chosen, context_id) for _ in range(per_call))
        styles = tuple(next(variants[chosen]).replace("{topic}", topic) for topic in topics)
        yield Task(index, chosen, context_id, level, topics, styles)


def plan_tasks(project, count: int, *, start: int = 0) -> list[Task]:
    return list(itertools.islice(iter_plan(project), start, start + count))


def order_for_cache(tasks: list[Task]) -> list[Task]:
    """Group tasks by context (stable), so calls sharing a cached system prefix run back to back."""
    first_seen: dict[str, int] = {}
    for task in tasks:
        first_seen.setdefault(task.context, task.index)
    return sorted(tasks, key=lambda t: (first_seen[t.context], t.index))


def generation_vars(task: Task, project, *, structured: bool) -> dict:
    return _generation_vars(
        project.types[task.type], project.contexts[task.context], task.complexity, task.topics, task.instructions, structured
    )


def _generation_vars(example_type, context, complexity: str, topics, styles, structured: bool) -> dict:
    from .render import schema_text

    return {
        "context": context.as_template_vars(),
        "example_type": example_type.as_template_vars(),
        "complexity": complexity,
        "count": len(topics),
        "requests": [{"topic": t, "instruction_style": s} for t, s in zip(topics, styles)],
        "structured": structured,
        "reply_schema": None if structured else schema_text("generation_reply"),
    }


def judge_vars(candidates: list[tuple[Example, str]], project, context_id: str, *, structured: bool) -> dict:
    """`candidates` pairs each Example with its complexity; indexes in the prompt start at 1."""
    from .render import schema_text

    items = []
    for number, (example, complexity) in enumerate(candidates, 1):
        items.append(
            {
                "index": number,
                "type": project.types[example.type].as_template_vars(),
                "complexity": complexity,
                "topic": example.topic or "",
                "instruction": example.instruction,
                "input": example.input,
                "output": example.output,
                "turns": [{"role": t.role, "content": t.content} for t in example.turns],
            }
        )
    return {
        "context": project.contexts[context_id].as_template_vars(),
        "candidates": items,
        "structured": structured,
        "reply_schema": None if structured else schema_text("judge_reply"),
    }


def sample_generation_vars(example_type, context, *, structured: bool) -> dict:
    """Variables of the same shape as a real task, used to test-render templates at load time."""
    topics = context.topics[:2]
    styles = [example_type.instruction_variants[0].replace("{topic}", t) for t in topics]
    return _generation_vars(example_type, context, example_type.complexities[0], topics, styles, structured)


def sample_judge_vars(example_type, context, *, structured: bool) -> dict:
    from .render import schema_text

    candidate = {
        "index": 1,
        "type": example_type.as_template_vars(),
        "complexity": example_type.complexities[0],
        "topic": context.topics[0],
        "instruction": "How does Actor_Kill work?",
        "input": "",
        "output": "It marks the actor for deletion.",
        "turns": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
    }
    return {
        "context": context.as_template_vars(),
        "candidates": [candidate],
        "structured": structured,
        "reply_schema": None if structured else schema_text("judge_reply"),
    }
