"""Stage 2, plan: deterministic per seed, types follow the mix, topics cover their list, complexities kept."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import replace

import pytest

from ootgen.load import load_project
from ootgen.plan import iter_plan, order_for_cache, plan_tasks, type_streams
from tests.test_load import ready_project, write_yaml


@pytest.fixture
def project(ready_loaded_project):
    return ready_loaded_project


def test_same_seed_same_plan(project_dir):
    cfg = ready_project(project_dir)
    assert plan_tasks(load_project(cfg), 60) == plan_tasks(load_project(cfg), 60)


def test_different_seed_different_plan(project_dir):
    cfg = ready_project(project_dir)
    assert plan_tasks(load_project(cfg, ["seed=1"]), 60) != plan_tasks(load_project(cfg, ["seed=2"]), 60)


def test_start_offset_continues_the_same_stream(project):
    assert plan_tasks(project, 10, start=20) == plan_tasks(project, 30)[20:]
    indexes = [t.index for t in plan_tasks(project, 300)]
    assert len(set(indexes)) == len(indexes)


def test_each_type_stream_is_its_own_and_indexes_are_unique_across_streams(project):
    streams = type_streams(project)
    assert set(streams) == set(project.mix)
    names = sorted(streams)
    first = {name: list(itertools.islice(streams[name], 20)) for name in names}
    # Taking one type's stream far ahead changes nothing in another's: quotas may take them unevenly.
    again = type_streams(project)
    list(itertools.islice(again[names[0]], 200))
    assert list(itertools.islice(again[names[1]], 20)) == first[names[1]]
    for name, tasks in first.items():
        assert {t.type for t in tasks} == {name}
        assert [t.index for t in tasks] == [names.index(name) + k * len(names) for k in range(20)]
    merged = [t for t, _ in zip(iter_plan(project), range(60))]  # the overview: each type's stream, in order
    for name in names:
        of_type = [t for t in merged if t.type == name]
        assert of_type and of_type == first[name][: len(of_type)]


def test_a_cut_task_keeps_its_first_slots_and_ladders_stay_whole(project):
    task = next(t for t in plan_tasks(project, 10) if t.count == 3)
    cut = task.cut(2)
    assert cut.index == task.index and cut.topics == task.topics[:2] and cut.instructions == task.instructions[:2]
    assert task.cut(3) is task and task.cut(5) is task
    ladder = replace(task, ladder=True, levels=("beginner", "intermediate", "advanced"))
    assert ladder.cut(1) is ladder


@pytest.mark.parametrize("count", [1, 7, 53, 600])
def test_type_shares_follow_the_mix_within_one_task(project, count):
    mix = project.mix
    total = sum(mix.values())
    seen = Counter(t.type for t in plan_tasks(project, count))
    for name, weight in mix.items():
        assert abs(seen[name] - count * weight / total) <= 1, (name, seen[name], count * weight / total)
    assert set(seen) <= set(mix)


def test_uneven_mix_and_zero_weight(project_dir):
    cfg = ready_project(project_dir)
    names = sorted(load_project(cfg).types)
    weights = {name: 0 for name in names}
    weights[names[0]], weights[names[1]] = 3, 0.5
    child = write_yaml(project_dir / "configs" / "uneven.yaml", {"extends": "default.yaml", "mix": weights})
    project = load_project(child)
    assert set(project.mix) == {names[0], names[1]}
    for count in (10, 35, 71):
        seen = Counter(t.type for t in plan_tasks(project, count))
        assert set(seen) <= {names[0], names[1]}
        assert abs(seen[names[0]] - count * 3 / 3.5) <= 1
        assert abs(seen[names[1]] - count * 0.5 / 3.5) <= 1


def test_topics_do_not_repeat_before_the_list_is_exhausted(project_dir):
    # One level, so every draw of a (type, context) pair comes from the same pool of suitable topics.
    project = load_project(ready_project(project_dir), ["complexities=[intermediate]"])
    by_pair: dict[tuple[str, str], list[str]] = defaultdict(list)
    for task in plan_tasks(project, 400):
        assert len(task.topics) == project.config.generation.examples_per_call
        by_pair[(task.type, task.context)].extend(task.topics)
    assert by_pair
    for (type_name, context_id), topics in by_pair.items():
        pool = [t.topic for t in project.contexts[context_id].topics_for(project.types[type_name].topic_type, "intermediate")]
        n = len(pool)
        for start in range(0, len(topics), n):
            cycle = topics[start : start + n]
            assert len(set(cycle)) == len(cycle), (type_name, context_id, cycle)
            assert set(cycle) <= set(pool)


def test_contexts_and_complexities_respected(project_dir):
    cfg = ready_project(project_dir)
    project = load_project(cfg, ["complexities=[beginner, advanced]"])
    tasks = plan_tasks(project, 300)
    assert {t.complexity for t in tasks} == {"beginner", "advanced"}
    for task in tasks:
        example_type = project.types[task.type]
        assert task.complexity in example_type.complexities
        assert task.context in example_type.contexts
        assert len(task.instructions) == len(task.topics)
        for _topic, instruction in zip(task.topics, task.instructions):
            assert "{topic}" not in instruction


def test_type_limited_to_one_complexity(project_dir):
    cfg = ready_project(project_dir)
    path = project_dir / "configs" / "types" / "code_explanation.yaml"
    text = path.read_text().replace("complexities: [beginner, intermediate, advanced]", "complexities: [advanced]")
    assert "complexities: [advanced]" in text
    path.write_text(text)
    tasks = plan_tasks(load_project(cfg), 200)
    levels = {t.complexity for t in tasks if t.type == "code_explanation"}
    assert levels == {"advanced"}


def test_iter_plan_examples_per_call_and_cache_order(project):
    tasks = [t for t, _ in zip(iter_plan(project, examples_per_call=1), range(30))]
    assert all(t.count == 1 for t in tasks)
    ordered = order_for_cache(tasks)
    assert sorted(t.index for t in ordered) == sorted(t.index for t in tasks)
    contexts = [t.context for t in ordered]
    # each context forms one contiguous run
    runs = [c for i, c in enumerate(contexts) if i == 0 or contexts[i - 1] != c]
    assert len(runs) == len(set(contexts))
