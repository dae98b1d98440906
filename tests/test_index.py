from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ootgen.index import build_default_index, build_index
from tests.conftest import decomp_facts_dir

FACTS = decomp_facts_dir()


def _write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def _tree(root: Path) -> Path:
    _write(root, "include/actor.h", """
#define ACTOR_NUMBER_MAX 200
#define GET_PLAYER(play) ((Player*)(play)->actorCtx.actorLists[2].head)
typedef struct Actor {
    /* 0x000 */ s16 id;
    /* 0x024 */ PosRot world;
    union {
        /* 0x030 */ s32 asInt;
        /* 0x030 */ f32 asFloat;
    };
} Actor; // size = 0x14C
typedef enum ActorCategory { ACTORCAT_SWITCH, ACTORCAT_BG, ACTORCAT_NPC = 4, ACTORCAT_ENEMY } ActorCategory;
void Actor_Kill(Actor* actor);
void osSyncPrintf(const char* fmt, ...);
extern SaveContext gSaveContext;
#if 0
void Gone(void);
#endif
""")
    _write(root, "include/broken.h", "void Ok_Before(s32 a);\nstruct { int x ; ;; }} ]] garbage (((\nvoid Ok_After(void);\n")
    _write(root, "include/tables/actor_table.h", """
/* 0x0000 */ DEFINE_ACTOR_INTERNAL(Player, ACTOR_PLAYER, ACTOROVL_ALLOC_NORMAL, "Player")
/* 0x0001 */ DEFINE_ACTOR_UNSET(ACTOR_UNSET_1)
/* 0x0002 */ DEFINE_ACTOR(En_Test, ACTOR_EN_TEST, ACTOROVL_ALLOC_NORMAL, "En_Test")
""")
    _write(root, "src/overlays/actors/ovl_En_Test/z_en_test.h", "typedef struct EnTest {\n    /* 0x000 */ Actor actor;\n    /* 0x14C */ s16 timer;\n} EnTest;\n")
    _write(root, "src/overlays/actors/ovl_En_Test/z_en_test.c", """#include "z_en_test.h"
void EnTest_Init(Actor* thisx, PlayState* play) {
    EnTest* this = (EnTest*)thisx;
    this->timer = 0;
}

BAD_RETURN(s32) EnTest_Helper(EnTest* this, PlayState* play) {
    return 0;
}
""")
    git = root / ".git"
    (git / "refs/heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text("# pack-refs\n" + "a" * 40 + " refs/heads/main\n")
    return root


def test_build_index_reads_a_decomp_layout(tmp_path):
    index = build_index(_tree(tmp_path / "oot"))
    init = index.function("EnTest_Init")[0]
    assert (init.kind, init.arity, init.file, init.line, init.end_line) == (
        "definition", 2, "src/overlays/actors/ovl_En_Test/z_en_test.c", 2, 5)
    assert index.function("EnTest_Helper")[0].return_type == "BAD_RETURN(s32)"
    assert index.arities("osSyncPrintf") == ({1}, True)
    assert not index.has_function("Gone")
    assert {f.name for f in index.struct_fields("Actor")} == {"id", "world", "asInt", "asFloat"}
    assert index.struct_fields("Actor")[1].offset == "0x024"
    assert [f.name for f in index.struct_fields("EnTest")] == ["actor", "timer"]
    assert index.enum_value("ACTORCAT_ENEMY") == 5
    assert index.define_value("ACTOR_NUMBER_MAX") == 200 and index.is_macro("GET_PLAYER")
    assert index.global_type("gSaveContext") == "SaveContext"
    assert [(a.id, a.enum, a.profile, a.overlay) for a in index.actors()] == [
        (0, "ACTOR_PLAYER", "Player_Profile", None), (2, "ACTOR_EN_TEST", "En_Test_Profile", "ovl_En_Test")]
    assert index.provenance["commit"] == "a" * 40


def test_a_broken_file_is_counted_and_does_not_lose_the_rest(tmp_path):
    index = build_index(_tree(tmp_path / "oot"))
    assert index.provenance["parse"]["files_with_errors"] >= 1
    assert index.has_function("Ok_Before") and index.has_function("EnTest_Init")


@pytest.mark.skipif(FACTS is None, reason="decomp fact data (../shared/oot-decomp) not available")
def test_from_facts_is_reproducible(tmp_path):
    a, b = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    build_default_index(FACTS).save(a)
    cmd = [sys.executable, "-m", "ootgen.index", "--from-facts", str(FACTS), "-o", str(b)]
    subprocess.run(cmd, check=True, capture_output=True)
    assert a.read_bytes() == b.read_bytes()
    shipped = Path(__file__).resolve().parent.parent / "ootgen" / "data" / "oot_symbols.json.gz"
    assert shipped.read_bytes() == a.read_bytes()


def test_a_checkout_index_keeps_the_decomp_rename_history_for_era_checks(tmp_path):
    index = build_index(_tree(tmp_path / "oot"))
    assert index.renames()["globalCtx"] == "play"
    assert index.renames()["GlobalContext"] == "PlayState"


def _more(root: Path) -> Path:
    """Macros, tables, assets and a member macro, written for the test in the decomp's shape."""
    _write(root, "include/macros_test.h", """
#define OCTAL_ONE 01
#define PRINTF(format, args...) osSyncPrintf(format, ##args)
#define T(jp, en) en
#define LOG_ANY(...) (void)0
extern void (*gHookFunc)(s32 arg);
void (*sLocalHook)(void);
#define SLIDING_BASE DynaPolyActor dyna; s16 yOffset
typedef struct DoorTest {
    SLIDING_BASE;
    s16 doorType;
} DoorTest;
#define DEFINE_OBJECT(_0, enumValue) enumValue,
typedef enum ObjectId {
    #include "tables/object_table.h"
    OBJECT_ID_MAX
} ObjectId;
""")
    _write(root, "include/tables/object_table.h", "/* 0x0000 */ DEFINE_OBJECT(object_test, OBJECT_TEST)\n"
                                                   "/* 0x0001 */ DEFINE_OBJECT(gameplay_keep, OBJECT_GAMEPLAY_KEEP)\n")
    _write(root, "src/overlays/actors/ovl_En_Test/z_en_test_extra.c", """#include "z_en_test.h"
#define vTimer actionVar1
ActorProfile En_Test_Profile = {
    /**/ ACTOR_EN_TEST,
    /**/ ACTORCAT_NPC,
    /**/ 0,
    /**/ OBJECT_TEST,
};
""")
    _write(root, "assets/xml/objects/object_test.xml", '<Root>\n  <File Name="object_test" Segment="6">\n'
           '    <DList Name="gTestBodyDL" Offset="0x10"/>\n    <Skeleton Name="gTestSkel" Offset="0x20"/>\n'
           "  </File>\n</Root>\n")
    return root


def test_a_checkout_index_has_macros_headers_assets_and_table_enums(tmp_path):
    root = _more(_tree(tmp_path / "oot"))
    index = build_index(root)
    assert index.define_value("OCTAL_ONE") == 1  # `#define X 01` neither fails nor drops the header
    assert index.macro_arity("PRINTF") == ({1}, True) and index.macro_arity("T") == ({2}, False)
    assert index.macro_arity("LOG_ANY") == ({0}, True)
    assert not index.has_function("gHookFunc") and not index.has_function("sLocalHook")
    assert index.global_type("gHookFunc") is not None
    assert index.is_local_macro("vTimer") and not index.is_local_macro("PRINTF")
    assert index.has_header("macros_test.h") and index.has_header("z_en_test.h") and not index.has_header("global.h")
    assert index.asset("gTestBodyDL") == ("object_test", "DList") and index.object_file("OBJECT_TEST") == "object_test"
    assert index.actor_object("En_Test_Profile") == "OBJECT_TEST"
    assert index.has_constant("OBJECT_TEST") and index.has_constant("OBJECT_GAMEPLAY_KEEP")
    assert index.is_open_struct("DoorTest")


def test_the_shipped_index_has_the_complete_fact_set():
    from ootgen.symbols import SymbolIndex

    index = SymbolIndex.load("default")
    assert index.macro_arity("PRINTF") == ({1}, True) and index.macro_arity("COLLECTIBLE_DROP_RANDOM_PARAMS") == ({2}, False)
    assert index.is_local_macro("vTimer") and index.has_constant("SLIDING_DOOR_ACTOR_BASE")
    assert index.has_header("actor.h") and not index.has_header("z64actor.h") and not index.has_header("functions.h")
    assert index.asset("gTreasureChestChestFrontDL") == ("object_box", "DList")
    assert index.object_file("OBJECT_BOX") == "object_box" and index.actor_object("En_Box_Profile") == "OBJECT_BOX"
    assert {"ACTOR_EN_BOX", "OBJECT_BOX", "NA_SE_SY_CORRECT_CHIME", "ENTR_HYRULE_FIELD_0"} <= set(index.constant_names())
    assert any(f.return_type == "BAD_RETURN(s32)" for f in index.function("SkelAnime_InitFlex"))
