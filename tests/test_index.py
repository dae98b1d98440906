from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ootgen.index import build_default_index, build_index

FACTS = Path("/work/shared/oot-decomp")


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
