"""Human verdicts in the run store: appended, the latest in force, an edit carried forward, the model's own kept."""

from __future__ import annotations

import pytest

from ootgen.store import ACCEPTED, PENDING, REJECTED, RunStore
from tests.report_fixture import build_run


@pytest.fixture
def store(tmp_path):
    build_run(tmp_path / "run")
    store = RunStore.open_run_dir(tmp_path / "run")
    yield store
    store.close()


def test_latest_decision_counts_and_an_edit_is_carried_forward(store):
    cid = next(store.candidates(ACCEPTED)).id
    original = store.candidate(cid)
    edit = {"instruction": "Fixed question?", "input": "", "output": "Fixed answer."}
    store.record_human_verdict(cid, ACCEPTED, edit=edit)
    store.record_human_verdict(cid, REJECTED, reason="still wrong")
    store.record_human_verdict(cid, ACCEPTED)

    [curated] = [c for c in store.curated_candidates() if c.id == cid]
    assert curated.status == ACCEPTED and curated.example.output == "Fixed answer."
    assert [v.status for v in store.human_history(cid)] == [ACCEPTED, REJECTED, ACCEPTED]
    assert store.candidate(cid) == original  # the model's text, verdict and score are untouched


def test_rejection_reason_and_counts_after_review(store):
    accepted_before = sum(1 for _ in store.curated_candidates(ACCEPTED))
    rejected = next(store.candidates(REJECTED)).id
    accepted = next(store.candidates(ACCEPTED)).id
    store.record_human_verdict(accepted, REJECTED, reason="wrong flag")
    store.record_human_verdict(rejected, ACCEPTED)

    curated = {c.id: c for c in store.curated_candidates()}
    assert curated[accepted].reason == "human: wrong flag" and curated[accepted].status == REJECTED
    assert curated[rejected].status == ACCEPTED and curated[rejected].reason is None
    assert sum(1 for _ in store.curated_candidates(ACCEPTED)) == accepted_before
    assert store.count(ACCEPTED) == accepted_before  # the run's own counts do not move


def test_dialogue_edit_replaces_first_user_and_last_assistant_turn(store):
    dialogue = next(c for c in store.candidates(ACCEPTED) if c.example.turns)
    store.record_human_verdict(dialogue.id, ACCEPTED, edit={"instruction": "Q?", "input": "", "output": "A."})
    [curated] = [c for c in store.curated_candidates() if c.id == dialogue.id]
    turns = curated.example.turns
    assert turns[0].content == "Q?" and turns[-1].content == "A." and len(turns) == len(dialogue.example.turns)
    assert turns[1:-1] == dialogue.example.turns[1:-1]


def test_unknown_candidate_and_status_are_refused(store):
    with pytest.raises(KeyError):
        store.record_human_verdict(10_000, ACCEPTED)
    with pytest.raises(ValueError):
        store.record_human_verdict(next(store.candidates()).id, PENDING)
    assert store.human_verdicts() == {}


def test_read_only_store_of_an_older_run_has_no_human_verdicts(tmp_path):
    build_run(tmp_path / "run")
    db = RunStore.open_run_dir(tmp_path / "run")
    db.db.execute("DROP TABLE human_verdicts")  # a run made before the table existed
    db.close()
    readonly = RunStore.open_run_dir(tmp_path / "run", readonly=True)
    assert readonly.human_verdicts() == {} and len(list(readonly.curated_candidates())) == len(list(readonly.candidates()))
    readonly.close()


def test_force_reset_forgets_human_verdicts(store):
    store.record_human_verdict(next(store.candidates()).id, REJECTED, reason="x")
    store.reset()
    assert store.human_verdicts() == {}
