"""Each finding code fires on a bad example and stays quiet on a good one."""

from __future__ import annotations

import pytest

from ootgen.check import load_checks
from ootgen.records import Example, Turn
from ootgen.symbols import SymbolIndex
from ootgen.validate.static import run_static_checks

GOOD_C = """Kill the actor once its timer runs out:

```c
void EnFoo_Update(Actor* thisx, PlayState* play) {
    EnFoo* this = (EnFoo*)thisx;
    Player* player = GET_PLAYER(play);

    if (DECR(this->timer) == 0) {
        Actor_PlaySfx(&this->actor, NA_SE_EN_NUTS_DAMAGE);
        Actor_Kill(&this->actor);
    }
    this->actor.world.pos.y = player->actor.world.pos.y;
    osSyncPrintf("%d\\n", gSaveContext.save.dayTime);
}
```

`DECR` returns the decremented timer, so this fires once."""

FEATURE = {"name": "feature_implementation", "requires_code_in_output": True, "carries_input": False}
EXPLAIN = {"name": "code_explanation", "requires_code_in_output": False, "carries_input": True}


@pytest.fixture(scope="module")
def env():
    return SymbolIndex.load("default"), load_checks()


def codes(env, output, instruction="Write it.", input="", example_type=None, turns=()):
    index, checks = env
    ex = Example(instruction=instruction, output=output, input=input, turns=tuple(turns))
    return {f.code for f in run_static_checks(ex, index, checks, example_type=example_type)}


def _c(body: str) -> str:
    return f"Here is the code for that change, with the reasoning below.\n\n```c\n{body}\n```\n\nThat is the whole change, nothing else is needed."


def test_good_example_has_no_findings(env):
    assert codes(env, GOOD_C, example_type=FEATURE) == set()


@pytest.mark.parametrize("body, code", [
    ("void f(void) {\n    Actor_Kill(&this->actor;\n}", "C_SYNTAX"),
    ("Actor_Despawn(&this->actor);", "UNKNOWN_FUNCTION"),
    ("Actor_Kill(&this->actor, play);", "ARG_COUNT"),
    ("void f(GlobalContext* globalCtx, PlayState* play) {}", "NAMING_ERA_MIX"),
    ("Actor_MoveForward(&this->actor);", "OLD_NAME"),
    ("this->actor.posRot.pos.x = 0.0f;", "UNKNOWN_FIELD"),
    ("play->actorContext.total = 0;", "UNKNOWN_FIELD"),
    ("gSaveContext.rupees = 5;", "UNKNOWN_FIELD"),
    ("u8* p = (u8*)0x80912345;", "BAD_RAM_ADDRESS"),
])
def test_c_findings(env, body, code):
    assert code in codes(env, _c(body))


@pytest.mark.parametrize("body", [
    "this->actor.world.pos.x += 1.0f;\n...\nActor_Kill(&this->actor);",
    "BAD_RETURN(s32) EnFoo_Helper(EnFoo* this, PlayState* play) {\n    return 0;\n}",
    "typedef struct EnFoo {\n    Actor actor;\n    s16 timer;\n} EnFoo;",
    "void EnFoo_Idle(EnFoo* this, PlayState* play);",
    "this->actionFunc(this, play);",
    "EnFoo* this = (EnFoo*)thisx;\nthis->timer = 3;\nthis->dyna.actor.flags |= 1;",
    "u32 mask = 0x8000;\nu32 top = 0x80000000;\nvoid* ram = (void*)0x803FFFF0;",
    "osSyncPrintf(\"a %d %d\", 1, 2);\nmemcpy(dst, src, 4);\ngSPDisplayList(POLY_OPA_DISP++, gFooDL);",
    "void Local_Helper(s32 a) {}\nvoid g(void) { Local_Helper(1); }",
])
def test_c_good_fragments_are_quiet(env, body):
    assert codes(env, _c(body)) == set()


def test_old_names_in_history_prose_are_fine(env):
    out = "GlobalContext was renamed to PlayState in 2022; `globalCtx` became `play`.\n\n" + _c("void f(PlayState* play) {}")
    assert codes(env, out) == set()


def test_asm_findings(env):
    out = "Change the call:\n\n```mips\njal     MyHook\nmove    $a0, $s0\nmovx    $t10, $a0\n```\n\nDone, rebuild and test it in an emulator."
    found = codes(env, out, instruction="Replace the jal with my hook")
    assert {"ASM_BAD_MNEMONIC", "ASM_BAD_REGISTER", "ASM_DELAY_SLOT"} <= found
    fixed = "Change the call; the `move` stays in the delay slot:\n\n```mips\njal     MyHook\nmove    $a0, $s0\n```\n\nRebuild and test it in an emulator before trying it on console."
    assert codes(env, fixed, instruction="Replace the jal with my hook") == set()


def test_markdown_findings(env):
    assert "UNCLOSED_FENCE" in codes(env, "Here you go:\n\n```c\nActor_Kill(&this->actor);\n" + "x" * 200)
    assert "EMPTY_OUTPUT" in codes(env, "   ")
    assert "TOO_SHORT" in codes(env, "Use Actor_Kill.")
    assert "MISSING_CODE" in codes(env, "Just call the kill function from update. " * 5, example_type=FEATURE)
    assert "MISSING_INPUT" in codes(env, GOOD_C, example_type=EXPLAIN)
    assert codes(env, GOOD_C, input="Actor_Kill(&this->actor);", example_type=EXPLAIN) == set()


def test_input_findings_are_capped_and_debugging_input_is_not_checked(env):
    index, checks = env
    ex = Example("Fix this", GOOD_C, input="Actor_Kill(&this->actor, play);")
    found = run_static_checks(ex, index, checks, example_type=EXPLAIN)
    assert [(f.code, f.severity) for f in found] == [("ARG_COUNT", "warning")]
    assert run_static_checks(ex, index, checks, example_type={"name": "debugging_help"}) == []


def test_dialogue_checks_every_assistant_turn(env):
    turns = [Turn("user", "how do I remove an actor?"), Turn("assistant", "Call `Actor_Kill` on it; it is freed later."),
             Turn("user", "code?"), Turn("assistant", _c("Actor_Kill(&this->actor, play);"))]
    assert "ARG_COUNT" in codes(env, "", turns=turns)


def test_answer_may_call_the_users_own_function(env):
    """A function the user's code calls is theirs: the answer repeating the call is not an unknown function,
    while the user's own unknown calls are still reported (capped) and an unrelated invented name still fails."""
    DEBUG = {"name": "debugging_help", "requires_code_in_output": False, "carries_input": False}
    user = "if (ABS(diff) < 0x2000) {\n    EnDoorman_Greet(this, play);\n}"
    out = "Compare the wrapped difference:\n\n```c\ns16 diff = this->actor.shape.rot.y;\n\nif (ABS(diff) < 0x2000) {\n" \
          "    EnDoorman_Greet(this, play);\n}\n```\n\nThe subtraction wraps into an s16, which is what makes it work."
    assert "UNKNOWN_FUNCTION" not in codes(env, out, input=user, example_type=DEBUG)
    assert "UNKNOWN_FUNCTION" in codes(env, out, example_type=DEBUG)
    assert "UNKNOWN_FUNCTION" in codes(env, out.replace("EnDoorman_Greet", "Actor_GreetPlayer"), input=user, example_type=DEBUG)


def test_assembly_input_of_a_c_type_is_checked_as_assembly(env):
    asm = "lui     $at, 0x4040\nmtc1    $at, $f4\njr      $ra\nswc1    $f4, 0x6C($a0)"
    typ = {"name": "code_explanation", "requires_code_in_output": False, "carries_input": True, "input_kind": "c_code"}
    out = "It stores 3.0 into the float at offset 0x6C; the store runs in the delay slot of the return, before control leaves."
    assert "C_SYNTAX" not in codes(env, out, input=asm, example_type=typ)
    assert "ASM_BAD_MNEMONIC" in codes(env, out, input=asm.replace("mtc1", "movc1"), example_type=typ)


@pytest.mark.parametrize(("line", "last"), [
    ("Here is the fix. The wrong version was:", "The wrong version was:"),
    ("The old code was wrong!  Fixed:", "Fixed:"),
    ("Call Actor_Kill(this), e.g. from Update.", "from Update."),  # (an abbreviation ends a sentence too)
    ("Version 1.5 is what you have? Use\u00a0this:", "Use\u00a0this:"),
    ("no sentence end here", "no sentence end here"),
    ("  ", ""),
])
def test_the_sentence_introducing_a_fence_is_the_last_one_of_its_line(line, last):
    from ootgen.validate.markdown import last_sentence

    assert last_sentence(line) == last


def test_a_member_the_answer_declares_in_its_text_is_not_an_unknown_field(env):
    """`this->actor.spinTimer` is no Actor field, but an answer that says to add `s16 spinTimer;` declares it: only
    a declaration of that very name counts (not the name used elsewhere, nor a longer name holding it)."""
    code = _c("void EnFoo_Spin(EnFoo* this) {\n    this->actor.spinTimer = 20;\n}")
    assert "UNKNOWN_FIELD" in codes(env, code)
    assert "UNKNOWN_FIELD" not in codes(env, code + "\n\nAdd `s16 spinTimer;` to your struct first.")
    assert "UNKNOWN_FIELD" in codes(env, code + "\n\nAdd `s16 spinTimerMax;` and count spinTimer down later.")
    assert "UNKNOWN_FIELD" not in codes(env, code + "\n\nDeclare it as\n\n    s16 *\n    spinTimer[4];\n")
