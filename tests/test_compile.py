"""The L1 compiler layer against tests/decomp_tree, a small decomp-shaped checkout written for these tests.

Real gcc runs in every test that needs it (skipped where the host has none).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from ootgen.records import Example
from ootgen.validate._makefile import evaluate_makefile, read_cc_check
from ootgen.validate.compile import (
    CODE,
    AnswerCode,
    CodeBlock,
    CompileChecker,
    Unavailable,
    answer_code,
    checkout_from_config,
    open_compiler,
)
from tests.conftest import clean_env, run_cli

TREE = Path(__file__).parent / "decomp_tree"
ACTOR_FILE = TREE / "src/overlays/actors/ovl_En_Test/z_en_test.c"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this host")


@pytest.fixture(scope="module")
def checker(tmp_path_factory) -> CompileChecker:
    made = CompileChecker.from_checkout(TREE, cache_dir=tmp_path_factory.mktemp("compile-cache"))
    assert isinstance(made, CompileChecker), made
    return made


def answer(*codes: str, first_line: int = 3) -> AnswerCode:
    return AnswerCode(tuple(CodeBlock(code, first_line) for code in codes))


def tree_functions() -> list[str]:
    text = ACTOR_FILE.read_text()
    return [m.group(0) for m in re.finditer(r"^\w[^\n;]*\([^;{]*\) \{\n.*?^\}", text, re.M | re.S)]


def errors(findings) -> list[str]:
    return [f.message for f in findings if f.code == CODE and f.severity == "error"]


# --- the first test: real-shaped decomp code compiles in the wrapper ------------------------------------------

@needs_gcc
def test_decomp_functions_compile_in_the_wrapper_with_no_finding(checker):
    functions = tree_functions()
    assert len(functions) == 7
    results = checker.check([answer(f) for f in functions])
    assert results == [[] for _ in functions]


@needs_gcc
def test_free_snippets_with_decomp_types_and_fragments_compile(checker):
    free_function = """void EnTest_Wobble(EnTest* this, PlayState* play) {
    this->actor.shape_scale = 0;
}""".replace("this->actor.shape_scale = 0;", "this->actor.scale.y = Math_SinS(play->gameplayFrames) * 0.01f;")
    fragment = "Actor_SetScale(thisx, 0.02f);\nthisx->flags |= ACTOR_FLAG_FRIENDLY;"
    own_struct = ("typedef struct EnMine {\n    Actor actor;\n    ColliderCylinder collider;\n    s16 timer;\n} EnMine;",
                  "this->timer = 4;\nCollider_UpdateCylinder(&this->actor, &this->collider);")
    draw = "Gfx_DrawDListOpa(play, gTestBodyDL);\nAnimation_PlayLoop(NULL, &gTestIdleAnim);"
    results = checker.check([answer(free_function), answer(fragment), answer(*own_struct), answer(draw)])
    assert results == [[], [], [], []]


# --- what the compiler attributes -----------------------------------------------------------------------------

@needs_gcc
def test_wrong_member_is_a_compile_error_on_its_answer_line(checker):
    bad = tree_functions()[2].replace("this->actor.speed = 0.0f;", "this->actor.speedXZ = 0.0f;")
    [found] = checker.check([answer(bad, first_line=5)])
    [message] = errors(found)
    line = 5 + bad.split("\n").index("    this->actor.speedXZ = 0.0f;")
    assert message.startswith(f"line {line} of output:") and "no member named 'speedXZ'" in message


@needs_gcc
def test_wrong_argument_count_is_a_compile_error(checker):
    [found] = checker.check([answer("Actor_SetScale(thisx);", first_line=7)])
    [message] = errors(found)
    assert message.startswith("line 7 of output:") and "too few arguments to function 'Actor_SetScale'" in message


@needs_gcc
def test_incompatible_pointer_is_a_compile_error(checker):
    [found] = checker.check([answer("Collider_InitCylinder(play, thisx);")])
    assert any("incompatible pointer type" in m for m in errors(found))


@needs_gcc
def test_removed_header_is_a_compile_error_and_the_users_own_header_is_not(checker):
    [removed, own] = checker.check([
        answer('#include "z64actor.h"\n#include "actor.h"\n\nvoid F(Actor* a) {\n    Actor_Kill(a);\n}'),
        answer('#include "z_en_mine.h"\n#include "actor.h"\n\nvoid G(Actor* a) {\n    Actor_Kill(a);\n}'),
    ])
    [message] = errors(removed)
    assert message.startswith("line 3 of output:") and "z64actor.h" in message
    assert own == []


@needs_gcc
def test_near_miss_and_decomp_family_names_are_errors_and_a_users_helper_is_not(checker):
    near, family, constant, helper = checker.check([
        answer("Actor_SetScal(thisx, 0.01f);"),
        answer("Actor_MoveForward(thisx);"),
        answer("thisx->flags |= ACTOR_FLAG_TARGETABLE;"),
        answer("typedef struct EnMine {\n    Actor actor;\n} EnMine;",
               "void EnMine_Init(Actor* thisx, PlayState* play) {\n    EnMine* this = (EnMine*)thisx;\n\n"
               "    EnMine_SetupIdle(this);\n    this->actor.speed = sMineSpeed;\n}"),
    ])
    assert any("Actor_SetScal" in m and "Actor_SetScale" in m for m in errors(near))
    assert any("Actor_MoveForward" in m for m in errors(family))
    assert any("ACTOR_FLAG_TARGETABLE" in m for m in errors(constant))
    assert helper == []


@needs_gcc
def test_a_users_own_type_is_tolerated_but_decomp_members_are_still_checked(checker):
    ok, bad = checker.check([
        answer("void EnMine_Init(Actor* thisx, PlayState* play) {\n    EnMine* this = (EnMine*)thisx;\n\n"
               "    this->timer = 3;\n    Actor_SetScale(thisx, 0.01f);\n}"),
        answer("void EnMine_Init(Actor* thisx, PlayState* play) {\n    EnMine* this = (EnMine*)thisx;\n\n"
               "    this->timer = 3;\n    thisx->speedXZ = 1.0f;\n}"),
    ])
    assert ok == []
    assert any("speedXZ" in m for m in errors(bad))


@needs_gcc
def test_one_answers_errors_do_not_hide_anothers_in_the_same_batch(checker):
    unbalanced = "void Broken(Actor* a) {\n    if (a != NULL) {\n        Actor_Kill(a);\n}"
    good = tree_functions()[1]
    bad = "Actor_Kill(thisx, 1);"
    results = checker.check([answer(unbalanced), answer(good), answer(bad), answer(good)])
    assert errors(results[0])
    assert results[1] == [] and results[3] == []
    assert any("too many arguments" in m for m in errors(results[2]))


@needs_gcc
def test_an_answers_own_function_pointer_typedef_types_its_struct_member(checker):
    header = ("struct EnMine;\n\ntypedef void (*EnMineFunc)(struct EnMine*, struct PlayState*);\n\n"
              "typedef struct EnMine {\n    Actor actor;\n    EnMineFunc draw;\n} EnMine;")
    update = "void EnMine_Update(Actor* thisx, PlayState* play) {\n    ((EnMine*)thisx)->draw((EnMine*)thisx, play);\n}"
    assert checker.check([answer(header, update)]) == [[]]


PROFILE = ("ActorProfile En_Mine_Profile = {\n    ACTOR_EN_MINE, ACTORCAT_ENEMY, 0, 0x0002, 4,\n"
           "    EnMine_Init, EnMine_Destroy, EnMine_Update, EnMine_Draw,\n};")


@needs_gcc
def test_errors_from_an_answers_own_declarations_are_not_blamed_on_the_answer_before_it(checker):
    # the profile's user functions are declared by the wrapper before the answer's `#line`: gcc's errors there
    # (int used as a function pointer) belong to the profile's answer and are tolerated, not the previous one's
    profile = PROFILE.replace("ACTOR_EN_MINE", "0x0001")
    assert checker.check([answer("Actor_SetScale(thisx, 0.01f);"), answer(profile)]) == [[], []]


@needs_gcc
def test_an_actor_id_the_answer_adds_to_the_table_is_its_own(checker):
    from ootgen.check import load_checks

    fence = f"```c\n{PROFILE}\n```\n"
    added = Example(instruction="q", output=f"The profile:\n\n{fence}\nAdd `ACTOR_EN_MINE` with DEFINE_ACTOR.\n")
    unsaid = Example(instruction="q", output=f"The profile:\n\n{fence}\nRebuild with make.\n")
    ok, bad = checker.check([answer_code(added, load_checks()), answer_code(unsaid, load_checks())])
    assert ok == []
    assert any("ACTOR_EN_MINE" in m for m in errors(bad))


@needs_gcc
def test_answer_code_keeps_c_fences_with_their_lines_and_skips_counterexamples(checker):
    from ootgen.check import load_checks

    output = ("Set the scale in init:\n\n```c\nActor_SetScale(thisx, 0.01f);\n```\n\n"
              "The wrong version:\n\n```c\nActor_SetScale(thisx);\n```\n\nAnd a shell line:\n\n```sh\nmake\n```\n")
    code = answer_code(Example(instruction="q", output=output), load_checks())
    assert code.blocks == (CodeBlock("Actor_SetScale(thisx, 0.01f);", 4, "output"),)
    assert checker.check([code]) == [[]]


# --- flags from the Makefile ----------------------------------------------------------------------------------

def test_cc_check_flags_are_read_from_the_makefile():
    flags = read_cc_check(TREE)
    assert flags.version == "test-v1" and flags.notes == ()
    assert flags.args[:5] == ("-nostdinc", "-fno-builtin", "-fsyntax-only", "-funsigned-char", "-std=gnu90")
    assert "-DOOT_VERSION=TEST_V1" in flags.args and "-DPLATFORM_GC=1" in flags.args
    assert f"-I{TREE.resolve() / 'include'}" in flags.args and "-m32" in flags.args
    assert "-MD" not in flags.args and "-DF3DEX_GBI" not in flags.args  # a target-specific value is not global
    older = read_cc_check(TREE, "test-v0")
    assert "-DOOT_VERSION=TEST_V0" in older.args and "-DPLATFORM_N64=1" in older.args


def test_missing_makefile_pieces_fall_back_to_documented_defaults_and_say_so(tmp_path):
    (tmp_path / "Makefile").write_text("VERSION ?= x\nCC_CHECK = gcc -fsyntax-only $(INC) $(GBI_DEFINES)\n")
    flags = read_cc_check(tmp_path)
    assert "-DF3DEX_GBI_2" in flags.args
    assert any("GBI_DEFINES" in note for note in flags.notes)


def test_makefile_conditionals_and_appends():
    text = "A ?= 1\nifeq ($(A),1)\n  B := one\nelse ifeq ($(A),2)\n  B := two\nelse\n  B := other\nendif\nB += more\n"
    assert evaluate_makefile(text).get("B") == "one more"
    assert evaluate_makefile(text, {"A": "2"}).get("B") == "two more"
    assert evaluate_makefile(text, {"A": "3"}).get("B") == "other more"


# --- asset stand-ins ------------------------------------------------------------------------------------------

@needs_gcc
def test_asset_headers_are_declared_from_the_xml(checker):
    header = (checker.stub_dir / "assets/objects/object_test/object_test.h").read_text()
    assert "extern Gfx gTestBodyDL[];" in header and "extern FlexSkeletonHeader gTestSkel;" in header
    assert "extern Vtx gTestBodyVtx[];" in header and "extern u64 gTestEyeTex[];" in header
    assert "extern CollisionHeader gTestCol;" in header and "extern AnimationHeader gTestIdleAnim;" in header
    assert "TEST_LIMB_MAX" in header
    assert (checker.stub_dir / "text/message_data.h").is_file()  # generated include: empty stand-in


# --- the layer off --------------------------------------------------------------------------------------------

def test_no_gcc_or_no_checkout_makes_the_layer_off_with_a_reason(tmp_path):
    assert isinstance(open_compiler(None), Unavailable)
    off = CompileChecker.from_checkout(TREE, cache_dir=tmp_path, gcc="no-such-gcc-here")
    assert isinstance(off, Unavailable) and "no-such-gcc-here" in off.status
    assert off.status.startswith("compiler layer off:")
    assert isinstance(CompileChecker.from_checkout(tmp_path), Unavailable)


def _examples_file(tmp_path: Path) -> Path:
    rows = [{"instruction": "Scale it", "input": "", "output": "Set the scale in init, once:\n\n```c\n"
             "Actor_SetScale(thisx, 0.01f);\n```\n\nThe actor's model is then drawn at one hundredth of its size."},
            {"instruction": "Scale it", "input": "", "output": "Set the scale in init, once:\n\n```c\n"
             "Actor_SetScale(thisx);\n```\n\nThe actor's model is then drawn at one hundredth of its size."}]
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_check_without_gcc_on_path_says_the_layer_is_off_in_one_line(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_cli("check", str(_examples_file(tmp_path)), "--decomp", str(TREE), env=clean_env(PATH=str(empty)))
    off = [line for line in result.stdout.splitlines() if "compiler layer" in line]
    assert off == ["compiler layer off: `gcc` (the checkout's CC_CHECK compiler) is not on PATH"]
    assert CODE not in result.stdout


def test_check_without_a_checkout_says_the_layer_is_off(tmp_path):
    result = run_cli("check", str(_examples_file(tmp_path)))
    assert [line for line in result.stdout.splitlines() if line.startswith("compiler layer")] == [
        "compiler layer off: no decomp checkout configured (`ootgen check --decomp DIR`, or `compiler.checkout` "
        "in the run config)"]


@needs_gcc
def test_check_with_decomp_rejects_the_answer_gcc_rejects(tmp_path):
    result = run_cli("check", str(_examples_file(tmp_path)), "--decomp", str(TREE), "--format", "jsonl")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("compiler layer on: gcc ")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["accepted"] for r in rows] == [True, False]
    [finding] = [f for f in rows[1]["findings"] if f["code"] == CODE]
    assert finding["message"].startswith("line 4 of output:") and "too few arguments" in finding["message"]


def test_a_grounded_run_compiles_against_its_grounding_checkout_by_default(tmp_path):
    """default.yaml: `compiler.checkout: null` means the grounding checkout when grounding is on — which it is
    once `grounding.decomp_dir` is set, without `enabled: true` (issue 11: grounded runs use the layer)."""
    from ootgen.load import load_run_config

    preset = tmp_path / "p.yaml"
    preset.write_text(f"extends: default\ngrounding:\n  decomp_dir: {tmp_path}\n")
    config = load_run_config(preset)
    assert config.grounding_on
    assert checkout_from_config(config.compiler, config.grounding) == str(tmp_path)
    off = tmp_path / "off.yaml"
    off.write_text(f"extends: default\ngrounding:\n  decomp_dir: {tmp_path}\n  enabled: false\n")
    config = load_run_config(off)
    assert checkout_from_config(config.compiler, config.grounding) is None
