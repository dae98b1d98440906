"""A judge that can fail an answer: the technical-accuracy floor and what the judge prompt carries, through the CLI.

The fake judge below scores every candidate "accuracy 5, usefulness 9" with one technical issue: a score of 7.0
(above the 6.0 threshold), so only the floor (`scoring.min_technical_accuracy`, default 7) can reject it.
"""

from __future__ import annotations

import re

from tests.e2e.conftest import Cli, posts, request_text, schema_title
from tests.fake_anthropic import FakeAnthropic
from tests.fake_anthropic.oot_responder import OotResponder

ISSUE = "Says ACTOR_FLAG_FRIENDLY sets the targeting colour; the colour comes from the actor's category."


class _PlausibleButWrong(OotResponder):
    """Judges every candidate readable and useful, but technically wrong in one place."""

    def judge(self, prompt: str) -> dict:
        reply = super().judge(prompt)
        for verdict in reply["verdicts"]:
            verdict.update(technical_accuracy=5, technical_issues=[ISSUE], uses_correct_terminology=True,
                           usefulness=dict.fromkeys(verdict["usefulness"], 9))
        return reply


def _judge_prompts(fake: FakeAnthropic) -> list[str]:
    return [request_text(e["body"]) for e in posts(fake) if schema_title(e["body"]) == "judge_reply"]


def test_accuracy_5_usefulness_9_is_rejected_by_the_floor_with_its_own_reason(project_dir, preset):
    with FakeAnthropic(api_key="test-key", responder=_PlausibleButWrong()) as fake:
        cli = Cli(project_dir, preset, fake)
        result = cli.run_in_process("--set", "generation.max_attempts_factor=1.0", num=3)
        prompts = _judge_prompts(fake)
    assert result.returncode == 1, result.stderr  # incomplete: nothing could be accepted
    out = cli.outputs()
    judged = [r for r in out.rejected() if r.get("judge")]
    assert judged, "setup: no candidate reached the judge"
    for record in judged:
        assert record["reason"] == "low_technical_accuracy (5 < 7)", record["reason"]
    assert out.lines() == []
    assert out.metadata()["rejection_reasons"]["low_technical_accuracy"] == len(judged)

    # The judge saw, per candidate, the static findings, and for the call the index's real declarations of what
    # the candidates use.
    assert prompts
    for prompt in prompts:
        blocks = re.findall(r"<candidate index=\"\d+\">(.*?)</candidate>", prompt, re.S)
        assert blocks
        facts = re.findall(r"<decomp_facts>(.*?)</decomp_facts>", prompt, re.S)
        assert len(facts) == 1
        for block in blocks:
            assert "<static_findings>" in block
            if "Actor_SetScale(" in block.split("<static_findings>")[0]:
                assert "void Actor_SetScale(Actor* actor, f32 scale);  // include/actor.h" in facts[0]


def test_the_same_verdicts_pass_when_the_floor_is_lowered(project_dir, preset):
    with FakeAnthropic(api_key="test-key", responder=_PlausibleButWrong()) as fake:
        cli = Cli(project_dir, preset, fake)
        result = cli.run_in_process("--set", "scoring.min_technical_accuracy=5", num=3)
    assert result.returncode == 0, result.stderr
    out = cli.outputs()
    assert len(out.lines()) == 3
    assert not any(r["reason"].startswith("low_technical_accuracy") for r in out.rejected())

    # Diversity you can see: in the metadata, over the accepted instructions, and in the report.
    diversity = out.metadata()["diversity"]
    assert diversity["instructions"] == 3
    assert all(0 < diversity[f"distinct_{n}"] <= 1 for n in (1, 2, 3))
    assert sum(diversity["nearest_neighbour_similarity"]["histogram"].values()) == 3
    from ootgen.report import build_report

    html = build_report(out.run_dir)
    assert 'id="diversity"' in html and "nearest-neighbour similarity" in html
