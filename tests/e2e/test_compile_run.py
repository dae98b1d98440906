"""The compiler layer inside a run (`compiler.checkout`, here tests/decomp_tree): each reply's C is compiled (gcc in
a worker thread, off the event loop) and an answer gcc rejects is rejected before the judge, slot by slot."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli
from tests.fake_anthropic import FakeAnthropic
from tests.fake_anthropic.oot_responder import OotResponder

TREE = Path(__file__).resolve().parent.parent / "decomp_tree"
GOOD = "Actor_SetScale(thisx, 0.01f);\nActor_MoveXZGravity(thisx);"
# passes the static checks (known functions, right argument counts) but not gcc: PlayState* where Actor* is expected
NOT_COMPILING = "Actor_SetScale(thisx, 0.01f);\nActor_Kill(play);"


class _EveryOtherDoesNotCompile(OotResponder):
    """Answers in the few names tests/decomp_tree declares; every other one passes `play` where an Actor* goes."""

    def _example(self, n: int, example_type: str, topic: str, bad: str | None) -> dict:
        example = super()._example(n, example_type, topic, None)
        code = NOT_COMPILING if n % 2 else GOOD
        example["output"] = (f"For {topic}, set the scale and then act on the `Actor*` the engine passes to the "
                             f"update function (case {n}):\n\n```c\n{code}\n```\n\nBoth calls run once per frame.\n")
        return example


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this host")
def test_a_run_compiles_each_reply_and_rejects_the_answers_gcc_rejects(project_dir, preset):
    with FakeAnthropic(api_key="test-key", responder=_EveryOtherDoesNotCompile()) as fake:
        cli = Cli(project_dir, preset, fake)
        result = cli.run_in_process("--set", f"compiler.checkout={TREE}",
                         "--set", "mix={feature_implementation: 1, code_explanation: 0, debugging_help: 0,"
                                  " architecture_question: 0, conversational: 0, code_modification: 0}", num=3)
    assert result.returncode == 0, result.stderr
    out = cli.outputs()
    assert len(out.lines()) == 3
    assert not any("Actor_Kill(play)" in line["output"] for line in out.lines())
    assert all("Actor_MoveXZGravity(thisx)" in line["output"] for line in out.lines())
    by_gcc = [r for r in out.rejected() if "COMPILE_ERROR" in r["reason"]]
    assert by_gcc, "no answer was rejected by the compiler layer"
    for record in by_gcc:
        assert "Actor_Kill(play)" in record["output"] and record["reason"] == "static: COMPILE_ERROR", record
