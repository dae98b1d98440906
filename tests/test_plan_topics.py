"""Topics that fit their types: every (type, context, level) the shipped plan can produce renders to a sensible request.

The plan of the built-in preset is walked until it has produced every reachable (type, context, level); each of
those tasks is rendered with the same functions `ootgen render` uses, and every request in it is checked: no
unfilled placeholder, a topic that lists the type and the level, the topic's angle, the index's real declaration
for each function the topic names, and — for code types without a checkout — no claim that the input is decomp code.
"""

from __future__ import annotations

import itertools
import re
from functools import cache

import pytest

from ootgen.load import load_project
from ootgen.plan import generation_vars, iter_plan
from ootgen.symbols import SymbolIndex
from tests.conftest import REPO

# Wordings that present the input as the decomp's own code.
DECOMP_CLAIM = re.compile(
    r"from the (?:oot |zeldaret/oot )?decomp\b|in the zeldaret/oot source|this (?:oot )?decomp code|"
    r"decomp's own code|from zeldaret/oot\b",
    re.I,
)
PLACEHOLDER = re.compile(r"\{topic\}|\{function\}|\{\{|\}\}|\{%|%\}|\bNone\b|Undefined")
# Topics about tables, memory layout, conventions or history: no request to write or modify code fits them.
# ("adding a new actor end to end: ... actor table row" is about writing code, so a table named later is fine.)
LAYOUT_TOPIC = re.compile(r"^the\b[^:,]*\btables?\b|memory map|calling convention|\boffsets\b|\bhistory\b|^why\b|mismatching", re.I)
CODE_WRITING = {"feature_implementation", "code_modification"}
INPUT_TYPES = ("code_explanation", "debugging_help", "code_modification")


@cache
def shipped_project():
    return load_project(REPO / "configs" / "default.yaml")


def reachable(project) -> set[tuple[str, str, str]]:
    """(type, context, level) triples the configuration allows and some topic suits."""
    found = set()
    for name in project.mix:
        example_type = project.types[name]
        for context_id in example_type.contexts:
            for level in project.config.complexities:
                if level in example_type.complexities and project.contexts[context_id].topics_for(example_type.topic_type, level):
                    found.add((name, context_id, level))
    return found


@cache
def tasks_covering_everything():
    project = shipped_project()
    wanted = reachable(project)
    seen: dict[tuple[str, str, str], object] = {}
    for task in itertools.islice(iter_plan(project), 5000):
        for slot in range(task.count):
            seen.setdefault((task.type, task.context, task.level(slot)), task)
        if wanted <= set(seen):
            break
    return wanted, seen


def test_the_plan_produces_every_reachable_type_context_level_and_nothing_else():
    wanted, seen = tasks_covering_everything()
    assert len(wanted) >= 60  # 6 types over 8 contexts and 3 levels, minus pairs no topic suits
    assert set(seen) == wanted


def _requests():
    _, seen = tasks_covering_everything()
    return [(key, seen[key]) for key in sorted(seen)]


@pytest.mark.parametrize(("key", "task"), _requests(), ids=lambda v: "-".join(v) if isinstance(v, tuple) else "")
def test_every_planned_request_renders_to_a_sensible_request(key, task):
    project = shipped_project()
    structured = project.models.resolve(project.config.model).structured
    variables = generation_vars(task, project, structured=structured)
    prompt = project.renderer.generation_prompt(variables, override=project.types[task.type].generate_template)
    example_type = project.types[task.type]
    context = project.contexts[task.context]
    by_name = {t.topic: t for t in context.topics}
    index = SymbolIndex.load("default")

    for text in (prompt.system, prompt.instructions, prompt.user):
        assert not PLACEHOLDER.search(text), PLACEHOLDER.search(text)
    assert context.body.strip() in prompt.system
    for slot, request in enumerate(variables["requests"]):
        topic = by_name[request["topic"]]  # a topic of this context, not free text
        assert topic.suits(example_type.topic_type, task.level(slot)), (topic, task.type, task.level(slot))
        assert request["topic"] in request["instruction_style"]
        assert f">{request['topic']}</topic>" in prompt.user
        assert f'<instruction_style index="{slot + 1}">{request["instruction_style"]}</instruction_style>' in prompt.user
        if topic.angles:
            assert request["angle"] in topic.angles
            assert f'<angle index="{slot + 1}">{request["angle"]}</angle>' in prompt.user
        for word in re.findall(r"\b[A-Z][A-Za-z0-9]*_[A-Za-z0-9_]+\b", request["topic"] + " " + request["angle"]):
            if index.has_function(word):  # a function the topic names: its real declaration is in the request
                assert any(re.search(rf"\s{word}\(", fact) for fact in request["facts"]), (word, request["facts"])
        if task.type in INPUT_TYPES and not request["source"]:
            assert not DECOMP_CLAIM.search(request["instruction_style"]), request["instruction_style"]
    lines = prompt.user.splitlines()
    assert variables["facts"] == list(dict.fromkeys(f for r in variables["requests"] for f in r["facts"]))
    for fact in variables["facts"]:
        assert lines.count(fact) == 1, fact  # each declaration once, however many requests name it
    if example_type.carries_input:
        assert "the user's OWN code" in prompt.instructions
        assert "Never\npresent it as code from the decomp" in prompt.instructions


def test_no_code_writing_type_is_paired_with_a_table_or_layout_topic():
    project = shipped_project()
    checked = 0
    for context in project.contexts.values():
        for topic in context.topics:
            if LAYOUT_TOPIC.search(topic.topic):
                checked += 1
                assert not CODE_WRITING & set(topic.types), (context.id, topic.topic, topic.types)
    assert checked >= 5


def test_instruction_styles_of_input_types_never_call_the_users_code_decomp_code():
    project = shipped_project()
    for name in INPUT_TYPES:
        example_type = project.types[name]
        for style in example_type.instruction_variants:
            assert not DECOMP_CLAIM.search(style), (name, style)
        assert example_type.grounded_instruction_variants, name
        assert all("{function}" in style for style in example_type.grounded_instruction_variants)


def test_angles_rotate_so_a_repeated_topic_asks_a_different_thing():
    project = shipped_project()
    uses: dict[tuple[str, str, str], list[str]] = {}
    for task in itertools.islice(iter_plan(project), 1500):
        for slot, topic in enumerate(task.topics):
            uses.setdefault((task.type, task.context, topic), []).append(task.angle(slot))
    repeated = {key: angles for key, angles in uses.items() if len(angles) >= 2}
    assert len(repeated) >= 50
    for (_, context_id, topic), angles in repeated.items():
        pool = next(t.angles for t in project.contexts[context_id].topics if t.topic == topic)
        window = angles[: len(pool)]
        assert len(set(window)) == len(window), (topic, angles)  # no angle repeats before all were used


def test_a_small_run_spreads_over_levels_and_contexts():
    """The first tasks of every type's stream (what a 20- or 40-example run asks for) cover the levels evenly
    and never repeat a type's context (issue 13: the spread follows the mix on small runs too)."""
    from collections import Counter

    from ootgen.plan import type_streams

    project = shipped_project()
    for tasks_per_type in (1, 2):
        levels: Counter = Counter()
        for name, stream in type_streams(project).items():
            tasks = list(itertools.islice(stream, tasks_per_type))
            levels.update(task.complexity for task in tasks)
            assert len({task.context for task in tasks}) == len(tasks), name
        assert set(levels.values()) == {2 * tasks_per_type}, levels  # 6 types, 3 levels


def test_the_types_walk_one_context_order_so_their_calls_meet_on_few_contexts():
    """Type number r starts r places along the run's one context order: the first k tasks of all six types use
    at most k + 5 contexts (each written to the prompt cache once, then read by the other types' calls), where a
    seeded order per type spread them over up to 6k; each type still takes k different contexts."""
    from ootgen.plan import type_streams

    project = shipped_project()
    for k in (2, 4):
        firsts = {name: [task.context for task in itertools.islice(stream, k)] for name, stream in type_streams(project).items()}
        used = {c for contexts in firsts.values() for c in contexts}
        assert len(used) <= k + len(firsts) - 1, (k, sorted(used))
        assert all(len(set(contexts)) == k for contexts in firsts.values())
    from ootgen.plan import context_order

    order = context_order(project)
    first = {name: next(iter(stream)).context for name, stream in type_streams(project).items()}
    for rank, name in enumerate(sorted(first)):
        assert first[name] in order[rank:rank + 4], (name, first[name])  # its place, or the next ones it can use


def test_top_ups_share_the_contexts_most_types_use_in_the_run_context_order():
    """The waves' shared top-up contexts: those most types can use first, and among equals the run's context order
    (where the types' first calls are, so a top-up reads a prefix they wrote rather than writing a new one)."""
    from ootgen.plan import _usable_levels, context_order, shared_contexts

    project = shipped_project()
    order = context_order(project)
    users = {c: sum(1 for name in project.mix if _usable_levels(project, project.types[name], c)) for c in order}
    shared = shared_contexts(project)
    assert shared == sorted((c for c in order if users[c]), key=lambda c: (-users[c], order.index(c)))
    assert shared[0] == next(c for c in order if users[c] == max(users.values()))


def test_the_dry_run_shows_the_quotas_and_the_first_wave_the_run_sends():
    """--dry-run plans as the run does: every type's quota (at 8 examples, conversational too) and each type's
    first wave (a quota of at most one call's size is one call asking for exactly the quota)."""
    from ootgen.estimate import dry_run_report, first_wave
    from ootgen.plan import type_quotas

    project = shipped_project()
    quotas = type_quotas(project.mix, 8)
    tasks = first_wave(project, 8)
    assert sorted((t.type, t.count) for t in tasks) == sorted(quotas.items())
    report = dry_run_report(project, 8)
    assert "type quotas (accepted examples): " + ", ".join(f"{k} {v}" for k, v in sorted(quotas.items())) in report
    assert f"first wave: {len(tasks)} generation calls" in report and "conversational 1" in report
