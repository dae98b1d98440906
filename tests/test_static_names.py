"""The name checks of static L1 (validate/names.py) and the decomp idioms the C parser must accept."""

from __future__ import annotations

import pytest

from ootgen.check import load_checks
from ootgen.records import Example
from ootgen.symbols import SymbolIndex
from ootgen.validate import compile_policy
from ootgen.validate.static import run_static_checks


@pytest.fixture(scope="module")
def env():
    return SymbolIndex.load("default"), compile_policy(load_checks())


def findings(env, output, instruction="Write it.", input="", example_type=None):
    index, policy = env
    return run_static_checks(Example(instruction=instruction, output=output, input=input), index, policy,
                             example_type=example_type)


def errors(env, output, **kw):
    return {f.code for f in findings(env, output, **kw) if f.severity == "error"}


def _c(body: str, intro: str = "Here is the code for that change, with the reasoning below.") -> str:
    return f"{intro}\n\n```c\n{body}\n```\n\nThat is the whole change, rebuild and test it in an emulator."


def test_an_unknown_constant_of_a_decomp_family_is_an_error_with_a_hint(env):
    found = findings(env, _c("this->actor.flags |= ACTOR_FLAG_TARGETABLE;"))
    assert [(f.code, f.severity) for f in found] == [("UNKNOWN_CONSTANT", "error")]
    assert "did you mean" in found[0].message
    assert "UNKNOWN_CONSTANT" in errors(env, _c("Matrix_Translate(0.0f, 0.0f, 0.0f, MTXMODE_REPLACE);"))
    assert errors(env, _c("Matrix_Translate(0.0f, 0.0f, 0.0f, MTXMODE_NEW);")) == set()


@pytest.mark.parametrize("body", [
    "#define EN_MINE_SPEED 3\nthis->speed = EN_MINE_SPEED;",  # defined by the snippet
    "typedef enum { MINE_IDLE, MINE_WALK } MineState;\nthis->state = MINE_WALK;",  # its own enum
    "void EnMine_Init(Actor* thisx, PlayState* play) {\n    this->state = ENMINE_STATE_IDLE;\n}",  # named like its own actor
    "this->effect = BONGO_SPLASH_BIG;",  # not a family of engine constants: an enum local to one .c file
])
def test_constants_the_answer_owns_or_that_claim_no_engine_family_pass(env, body):
    assert errors(env, _c(body)) == set()


def test_a_new_table_id_passes_when_the_answer_adds_it_to_the_table(env):
    body = "Actor_Spawn(&play->actorCtx, play, ACTOR_EN_MINE, 0.0f, 0.0f, 0.0f, 0, 0, 0, 0);"
    assert "UNKNOWN_CONSTANT" in errors(env, _c(body))
    assert errors(env, _c(body, "Add ACTOR_EN_MINE to include/tables/actor_table.h with DEFINE_ACTOR, then spawn it:")) == set()


def test_dead_include_paths_are_errors(env):
    assert "UNKNOWN_INCLUDE" in errors(env, _c('#include "z64actor.h"\n#include "z_en_mine.h"'))
    assert "UNKNOWN_INCLUDE" in errors(env, _c("#include <global.h>"))
    assert errors(env, _c('#include "z_en_mine.h"\n#include "actor.h"\n#include "assets/objects/object_box/object_box.h"')) == set()


def test_member_chain_is_typed_through_the_parameter_a_member_is_passed_to(env):
    body = ("void EnMine_Init(Actor* thisx, PlayState* play) {\n    EnMine* this = (EnMine*)thisx;\n\n"
            "    Collider_InitCylinder(play, &this->collider);\n    this->hit = this->collider.<X>.acHitElem;\n}")
    found = findings(env, _c(body.replace("<X>", "info")))
    assert [f.code for f in found] == ["UNKNOWN_FIELD"] and "ColliderCylinder" in found[0].message
    assert errors(env, _c(body.replace("<X>", "elem"))) == set()


def test_member_chain_through_the_answers_own_struct(env):
    body = ("typedef struct EnMine {\n    Actor actor;\n    ColliderCylinder collider;\n} EnMine;\n\n"
            "void EnMine_Update(Actor* thisx, PlayState* play) {\n    EnMine* this = (EnMine*)thisx;\n\n"
            "    this->collider.dim.radius = 20;\n    this->collider.<X> = 0;\n}")
    assert "UNKNOWN_FIELD" in errors(env, _c(body.replace("<X>", "info.bumper.effect")))
    assert errors(env, _c(body.replace("<X>", "base.acFlags"))) == set()


def test_field_aliases_and_member_macros_are_not_unknown_fields(env):
    alias = "#define vTimer actionVar1\n\nvoid f(Player* player) {\n    player->vTimer = 3;\n}"
    assert errors(env, _c(alias)) == set()
    quoted = "void f(BgHakaGate* this) {\n    this->vTimer = 3;\n}"  # a local macro of a decomp .c file, not shown
    assert errors(env, _c(quoted)) == set()
    door = "void f(DoorShutter* this) {\n    this->dyna.actor.world.pos.y += 1.0f;\n    this->doorType = 0;\n}"
    assert errors(env, _c(door)) == set()


def test_a_prototype_named_in_the_prose_declares_the_helper(env):
    body = "void EnMine_Update(Actor* thisx, PlayState* play) {\n    Mine_BlendColors(thisx, 0.5f);\n}"
    assert "UNKNOWN_FUNCTION" in errors(env, _c(body))
    intro = "It calls my helper `Mine_BlendColors(Actor* actor, f32 weight)`, defined in the previous answer."
    assert errors(env, _c(body, intro)) == set()
    assert "ARG_COUNT" in errors(env, _c(body.replace(", 0.5f", ""), intro))


def test_assets_must_belong_to_an_object_the_profile_loads(env):
    profile = ("ActorProfile En_Mine_Profile = {{\n    ACTOR_EN_MINE, ACTORCAT_PROP, 0, {}, sizeof(EnMine),\n"
               "    EnMine_Init, EnMine_Destroy, EnMine_Update, EnMine_Draw,\n}};\n\n"
               "void EnMine_Draw(Actor* thisx, PlayState* play) {{\n    Gfx_DrawDListOpa(play, gTreasureChestChestFrontDL);\n}}")
    intro = "Add ACTOR_EN_MINE with DEFINE_ACTOR to the actor table, then:"
    found = findings(env, _c(profile.format("OBJECT_GAMEPLAY_KEEP"), intro))
    assert [f.code for f in found] == ["ASSET_NOT_LOADED"] and "object_box" in found[0].message
    assert errors(env, _c(profile.format("OBJECT_BOX"), intro)) == set()


def test_old_names_are_errors_in_the_answers_code_and_warnings_in_its_prose(env):
    assert ("OLD_NAME", "error") in {(f.code, f.severity) for f in findings(env, _c("Actor_MoveForward(&this->actor);"))}
    prose = "Call `Actor_MoveForward` every frame, then update the collision.\n\n" + _c("Actor_MoveXZGravity(&this->actor);")
    assert {(f.code, f.severity) for f in findings(env, prose)} == {("OLD_NAME", "warning")}
    profile = "ActorInit En_Mine_InitVars = {\n    0,\n};"
    assert "OLD_NAME" in errors(env, _c(profile))


@pytest.mark.parametrize("old, new", [("COLTYPE_METAL", "COL_MATERIAL_METAL"), ("COLTYPE_HIT8", "COL_MATERIAL_HIT8")])
def test_a_renamed_family_of_constants_is_an_old_name_with_its_current_name(env, old, new):
    # the whole ColliderType family became ColliderMaterial (decomp #2186), not only COLTYPE_HIT0
    found = [f for f in findings(env, _c(f"static ColliderInit sInit = {{ {old}, AT_NONE }};")) if f.severity == "error"]
    assert [f.code for f in found] == ["OLD_NAME"] and f"`{new}`" in found[0].message
    assert errors(env, _c(f"static ColliderInit sInit = {{ {new}, AT_NONE }};")) == set()


def test_diff_fences_are_checked_on_their_added_lines(env):
    diff = ("Apply this patch:\n\n```diff\n--- a/src/overlays/actors/ovl_En_Box/z_en_box.c\n+++ b/src/overlays/actors/ovl_En_Box/z_en_box.c\n"
            "@@ -10,4 +10,4 @@ void EnBox_Update(Actor* thisx, PlayState* play) {\n     EnBox* this = (EnBox*)thisx;\n"
            "-    Actor_MoveForward(&this->dyna.actor);\n+    <X>\n     this->actionFunc(this, play);\n```\n\n"
            "The removed line used the old name; rebuild after applying it.")
    assert errors(env, diff.replace("<X>", "Actor_MoveXZGravity(&this->dyna.actor);")) == set()
    assert "UNKNOWN_CONSTANT" in errors(env, diff.replace("<X>", "this->dyna.actor.flags |= ACTOR_FLAG_TARGETABLE;"))
    assert "ARG_COUNT" in errors(env, diff.replace("<X>", "Actor_SetScale(&this->dyna.actor);"))


@pytest.mark.parametrize("body", [
    'PRINTF(VT_FGCOL(RED) "bad params %d\\n" VT_RST, this->actor.params);',
    'PRINTF(T("日本語 %d\\n", "english %d\\n"), 3);\nLOG_STRING("NA_SE_SY_ERROR", "../z_en_mine.c", 99);',
    "if (this->timer == 0) {\n#if DEBUG_FEATURES\n    if (this->actor.params < 0) {\n#else\n    if (this->actor.params == 0) {\n#endif\n"
    "        Actor_Kill(&this->actor);\n    }\n}",
    "#if 0\nthis is not C at all (((\n#endif\nActor_Kill(&this->actor);",
])
def test_decomp_idioms_parse(env, body):
    assert errors(env, _c(body)) == set()


def test_c_syntax_points_at_the_line_of_the_answer(env):
    out = _c("void f(void) {\n    s32 a = 1;\n    Actor_Kill(&this->actor;\n}")
    syntax = [f for f in findings(env, out) if f.code == "C_SYNTAX"]
    line = out.split("\n").index("    Actor_Kill(&this->actor;") + 1
    assert len(syntax) == 1 and f"line {line} of the output (fence 1)" in syntax[0].message


@pytest.mark.parametrize("text, bad", [
    ("Overlays are relocated at load time: 0x81000000 is where overlays are loaded.", True),
    ("On the debug ROM Link's health sits at RAM address 0x0011A600 in sixteenths of a heart.", True),
    ("Overlays are linked at VRAM 0x80A00000 and relocated into the zelda arena when loaded.", False),
    ("The file starts at ROM offset 0x00B5E000 and the save context is at 0x8015E660 in RAM.", False),
])
def test_addresses_in_prose(env, text, bad):
    out = text + " Test it in an emulator with a memory viewer open, before trying it on console hardware."
    assert ("BAD_RAM_ADDRESS" in errors(env, out)) is bad


def test_a_pointer_to_a_physical_address_is_an_error(env):
    assert "BAD_RAM_ADDRESS" in errors(env, _c("s16 hp = *(s16*)0x0011A600;"))
    assert errors(env, _c("s16 hp = *(s16*)0x8011A600;\nGfx* dl = (Gfx*)0x06001234;")) == set()


def test_the_policy_makes_findings_for_another_layer(env):
    _, policy = env
    assert policy.finding("COMPILE_ERROR", "implicit declaration", "output fence 1").severity == "error"
    assert policy.finding("COMPILE_ERROR", "x", "input", cap="warning").severity == "warning"
    assert compile_policy(policy) is policy


def test_findings_follow_the_order_of_the_code_from_run_to_run(env):
    """py-tree-sitter may return one tree's captures out of source order; the findings must not follow it."""
    from ootgen.validate import cstructure

    body = ("typedef struct EnMine {\n    Actor actor;\n} EnMine;\n\n"
            "void EnMine_Init(Actor* thisx, PlayState* play) {\n    EnMine* this = (EnMine*)thisx;\n\n"
            "    SkelAnime_InitFlex(play, &this->skelAnime, NULL, NULL, this->jointTable, this->morphTable, 4);\n"
            "    this->timer = this->speedTarget;\n}")
    expected = ["skelAnime", "jointTable", "morphTable", "timer", "speedTarget"]
    for _ in range(30):
        cstructure.clear_parse_cache()
        found = [f.message.split("`")[3] for f in findings(env, _c(body)) if f.code == "UNKNOWN_FIELD"]
        assert found == expected
