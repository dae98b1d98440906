"""The run store: one SQLite file, transactional commits, counts the scheduler can ask for on every event."""

from __future__ import annotations

import sqlite3

import pytest

from ootgen.errors import ConfigError
from ootgen.models import Usage
from ootgen.plan import Task
from ootgen.records import Example
from ootgen.store import ACCEPTED, PENDING, REJECTED, ResponseCache, RunStore


def _task(index: int) -> Task:
    return Task(index, "code_explanation", "actor_system", "beginner", ("t1", "t2"), ("s1", "s2"))


def _rows(task_idx: int, statuses=(PENDING, PENDING)) -> list[dict]:
    return [{"task_idx": task_idx, "slot": slot, "example": Example(instruction=f"q{task_idx}-{slot}", output="a", type="code_explanation"),
             "context": "actor_system", "complexity": "beginner", "findings": [], "status": status}
            for slot, status in enumerate(statuses)]


def _response(key: str) -> dict:
    return dict(key=key, kind="generate", model="m", task_idx=0, text="{}", stop_reason="end_turn", usage=Usage(10, 5),
                cost=0.001, batch=False, valid=True, error=None, from_cache=False)


def _db_count(store: RunStore, status: str) -> int:
    return store.db.execute("SELECT COUNT(*) FROM candidates WHERE status=?", (status,)).fetchone()[0]


def test_counts_follow_commits_and_match_the_database(tmp_path):
    store = RunStore.open_run_dir(tmp_path)
    store.save_tasks([_task(0), _task(1)])
    store.commit_generation(_response("g0"), _rows(0), 0)
    store.commit_generation(_response("g1"), _rows(1, (PENDING, REJECTED)), 1)
    ids = [c.id for c in store.candidates(PENDING)]
    seqs = store.commit_judgement([], [dict(cid=ids[0], status=ACCEPTED, reason=None, verdict={"x": 1}, score=8.0, breakdown=None),
                                       dict(cid=ids[1], status=REJECTED, reason="low_score", verdict=None, score=2.0, breakdown=None)])
    assert seqs == [1]
    for status in (PENDING, ACCEPTED, REJECTED):
        assert store.count(status) == _db_count(store, status)
    assert store.count() == 4
    reopened = RunStore.open_run_dir(tmp_path)
    assert [reopened.count(s) for s in (PENDING, ACCEPTED, REJECTED)] == [1, 1, 2]


def test_a_candidate_is_never_decided_twice_and_sequences_grow(tmp_path):
    store = RunStore.open_run_dir(tmp_path)
    store.commit_generation(None, _rows(0), 0)
    first, second = [c.id for c in store.candidates(PENDING)]
    accept = lambda cid: dict(cid=cid, status=ACCEPTED, reason=None, verdict=None, score=9.0, breakdown=None)  # noqa: E731
    assert store.commit_judgement([], [accept(first)]) == [1]
    assert store.commit_judgement([], [accept(first)]) == []  # already decided
    assert store.commit_judgement([], [accept(second)]) == [2]
    assert store.count(ACCEPTED) == 2 and store.count(PENDING) == 0


def test_a_failed_transaction_leaves_counts_and_rows_unchanged(tmp_path):
    store = RunStore.open_run_dir(tmp_path)
    bad = _rows(0)
    bad[1]["example"] = None  # fails inside the transaction, after the first row was inserted
    with pytest.raises(AttributeError):
        store.commit_generation(_response("g0"), bad, 0)
    assert store.count() == 0 and _db_count(store, PENDING) == 0
    assert store.get_response("g0") is None  # the response is stored only together with its candidates


def test_a_store_bound_to_other_work_is_refused_unless_forced(tmp_path):
    store = RunStore.open_run_dir(tmp_path)
    assert store.bind(work_hash="a", config_hash="c", settings={}, force=False) is False
    store.commit_generation(None, _rows(0), 0)
    assert store.bind(work_hash="a", config_hash="c2", settings={}, force=False) is True
    with pytest.raises(ConfigError):
        store.bind(work_hash="b", config_hash="c", settings={}, force=False)
    assert store.bind(work_hash="b", config_hash="c", settings={}, force=True) is False
    assert store.count() == 0 and _db_count(store, PENDING) == 0


def test_the_response_cache_round_trips_and_survives_reopening(tmp_path):
    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put("k", "text", "end_turn", Usage(1, 2, 3, 4))
    cache.close()
    again = ResponseCache(tmp_path / "cache.sqlite")
    assert again.get("k") == ("text", "end_turn", Usage(1, 2, 3, 4))
    assert again.get("missing") is None


def test_readers_see_the_writers_commits(tmp_path):
    writer = RunStore.open_run_dir(tmp_path)
    writer.commit_generation(None, _rows(0), 0)
    reader = RunStore.open_run_dir(tmp_path, readonly=True)
    assert reader.count(PENDING) == 2 and reader.count() == 2
    with pytest.raises(sqlite3.OperationalError):
        reader.db.execute("DELETE FROM candidates")


def test_a_changed_setting_is_refused_naming_it_with_exit_2(tmp_path):
    from ootgen.errors import ConfigError

    store = RunStore.open_run_dir(tmp_path)
    settings = {"seed": 1, "model": "claude-sonnet-5", "judge": {"model": None}, "num_examples": 10}
    assert store.bind(work_hash="a", config_hash="a", settings=settings, force=False) is False
    changed = {**settings, "seed": 2, "judge": {"model": "claude-haiku-4-5"}, "num_examples": 20}
    with pytest.raises(ConfigError) as refused:
        store.bind(work_hash="b", config_hash="b", settings=changed, force=False)
    assert refused.value.exit_code == 2
    assert "the setting judge.model, seed changed" in str(refused.value) and "num_examples" not in str(refused.value)
    with pytest.raises(ConfigError, match="a template, context, example type"):
        store.bind(work_hash="b", config_hash="b", settings=settings, force=False)
    assert store.get_meta("work_hash") == "a"  # nothing of the old run was touched


def test_a_resumed_cursor_starts_at_the_plan_checkpoint_and_gives_what_a_full_replay_gives(project_dir, tmp_path, monkeypatch):
    from ootgen import scheduler
    from ootgen.load import load_project
    from ootgen.plan import plan_tasks
    from tests.test_load import ready_project

    monkeypatch.setattr(scheduler, "CHECKPOINT_EVERY", 8)
    project = load_project(ready_project(project_dir))
    store = RunStore.open_run_dir(tmp_path / "run")
    cursor = scheduler.PlanCursor(project, store)
    drawn = [cursor.next() for _ in range(30)]
    done = {task.index for task in drawn[::3]}
    for index in done:
        store.commit_generation(None, [], index)
    assert store.get_meta(scheduler.PLAN_CHECKPOINT)["position"] == 24

    resumed = scheduler.PlanCursor(project, store)
    assert resumed._plan.position == 24  # the 24 tasks before the checkpoint are not planned again
    expected = [t for t in plan_tasks(project, 60) if t.index not in done][:30]
    assert [resumed.next() for _ in range(30)] == expected

    store.set_meta(scheduler.PLAN_CHECKPOINT, {"version": -1})  # another ootgen's checkpoint: replay from the start
    assert [scheduler.PlanCursor(project, store).next() for _ in range(1)] == expected[:1]
