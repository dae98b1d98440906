"""Each filter of the review list against the fixture run (Flask's test client over the real store)."""

from __future__ import annotations

import re

import pytest

from ootgen.review import create_app
from ootgen.store import RunStore
from tests.report_fixture import build_run

TOKEN = "t0ken"


@pytest.fixture
def run(tmp_path):
    build_run(tmp_path / "run")
    store = RunStore.open_run_dir(tmp_path / "run")
    # One candidate with a cross-judge disagreement, as a cross-validation run stores it.
    target = next(store.candidates("accepted"))
    store.db.execute("UPDATE candidates SET breakdown=? WHERE id=?",
                     ('{"score": 7, "disagreement": true, "judges": [{"model": "a", "score": 7, "accepted": true}]}', target.id))
    decided = [c for c in store.candidates() if c.status != "pending"]
    store.close()
    return tmp_path / "run", decided, target.id


def _ids(client, query: str) -> set[int]:
    page = client.get(f"/{TOKEN}/?{query}")
    assert page.status_code == 200
    return {int(i) for i in re.findall(r'data-id="(\d+)"', page.get_data(as_text=True))}


def test_each_filter_keeps_exactly_the_matching_examples(run):
    run_dir, decided, disagreeing = run
    client = create_app(run_dir, TOKEN).test_client()
    level = decided[0].complexity
    code = "OLD_NAME"

    everything = {c.id for c in decided}
    assert _ids(client, "") == everything

    def matches(query: str, expected: set[int]) -> None:
        assert expected and expected < everything, query  # a filter that could keep or drop too much
        assert _ids(client, query) == expected, query

    matches("status=rejected", {c.id for c in decided if c.status == "rejected"})
    matches(f"level={level}", {c.id for c in decided if c.complexity == level})
    matches("min_score=7&max_score=8.5", {c.id for c in decided if c.score is not None and 7 <= c.score <= 8.5})
    matches(f"finding={code}", {c.id for c in decided if any(f["code"] == code for f in c.findings)})
    matches("disagreement=1", {disagreeing})
    matches("q=PLAYER_UPDATECOMMON", {c.id for c in decided if "Player_UpdateCommon" in c.example.instruction + c.example.output})
    last = decided[-1]
    matches(f"type={last.example.type}&level={last.complexity}", {
        c.id for c in decided if c.example.type == last.example.type and c.complexity == last.complexity})


def test_unknown_example_is_404_and_bad_action_400(run):
    run_dir, decided, _ = run
    client = create_app(run_dir, TOKEN).test_client()
    assert client.get(f"/{TOKEN}/example/99999").status_code == 404
    assert client.post(f"/{TOKEN}/example/{decided[0].id}/decision", data={"action": "delete"}).status_code == 400
    assert client.post(f"/{TOKEN}/example/{decided[0].id}/decision",
                       data={"action": "edit", "instruction": "", "output": "x"}).status_code == 400
    assert client.get("/").status_code == 403
