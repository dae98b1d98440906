from __future__ import annotations

import gzip

import pytest

from ootgen.errors import ConfigError
from ootgen.symbols import SymbolIndex


def _tiny() -> SymbolIndex:
    return SymbolIndex({
        "functions": {"Actor_Kill": [["void", [["Actor*", "actor"]], 1, 0, "p", "include/actor.h", 10, None]],
                      "osSyncPrintf": [["void", [["const char*", "fmt"]], 1, 1, "p", "include/ultra64.h", 3, None]]},
        "structs": {"Actor": {"kind": "struct", "size": "0x14C", "fields": [["world", "PosRot", "0x24"]]},
                    "PosRot": {"kind": "struct", "size": None, "fields": [["pos", "Vec3f", "0x00"]]}},
        "typedefs": {"ActorAlias": "Actor"}, "enums": {"ACTOR_EN_BOX": 10}, "defines": {"ACTOR_NUMBER_MAX": 200},
        "macros": ["OPEN_DISPS"], "globals": {"gSaveContext": "SaveContext"}, "actors": [[10, "ACTOR_EN_BOX", "En_Box_Profile", "ovl_En_Box"]],
        "renames": {"word": {"Actor_MoveForward": "Actor_MoveXZGravity"}}, "provenance": {"commit": "abc"},
    })


def test_save_then_load_round_trips_and_is_deterministic(tmp_path):
    index = _tiny()
    a, b = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    index.save(a)
    index.save(b)
    assert a.read_bytes() == b.read_bytes()
    loaded = SymbolIndex.load(a)
    assert loaded.function("Actor_Kill")[0].arity == 1
    assert loaded.arities("osSyncPrintf") == ({1}, True)
    assert [f.name for f in loaded.struct_fields("ActorAlias")] == ["world"]
    assert loaded.has_symbol("gSaveContext") and loaded.has_symbol("OPEN_DISPS") and loaded.has_symbol("ACTOR_EN_BOX")
    assert loaded.actors()[0].profile == "En_Box_Profile"
    assert loaded.provenance["commit"] == "abc"


def test_suggest_prefers_renames_then_close_names():
    index = _tiny()
    assert index.suggest("Actor_MoveForward") == ["Actor_MoveXZGravity"]
    assert index.suggest("Actor_Kil") == ["Actor_Kill"]
    assert index.suggest("Zzzzzz") == []


def test_load_names_file_on_bad_input(tmp_path):
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(gzip.compress(b"[1, 2]"))
    with pytest.raises(ConfigError, match=r"bad\.json\.gz"):
        SymbolIndex.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        SymbolIndex.load(tmp_path / "missing.json.gz")


def test_default_index_knows_current_names_and_its_provenance():
    index = SymbolIndex.load("default")
    assert index.provenance["commit"] == "269d03016cd0e3d7a0b8925e02b97a319c1d0e8d"
    assert {s.arity for s in index.function("Actor_Spawn")} == {10}
    assert "world" in [f.name for f in index.struct_fields("Actor")]
    assert index.renames()["globalCtx"] == "play"
    assert index.field_type("SkelAnime", "normal") is None and index.field_type("SkelAnime", "update")
