"""Checks on the knowledge contexts (contexts/*.md) and example types (configs/types/*.yaml).

The identifier test compares every backticked C identifier in the contexts with the
decomp fact files (functions, structs and their fields, globals, enums, #defines, actors)
described in shared/oot-decomp/README.md.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONTEXTS_DIR = REPO / "contexts"
TYPES_DIR = REPO / "configs" / "types"
CONTEXT_SCHEMA = REPO / "schemas" / "context.schema.json"
TYPE_SCHEMA = REPO / "schemas" / "example_type.schema.json"

MIN_BODY_WORDS = 1200

# Identifiers the fact files cannot hold, each checked by hand against zeldaret/oot HEAD.
# The extractor keeps only object-like #defines that evaluate to integers, so function-like
# macros are absent; typedefs of integer types and C keywords are not declarations at all.
ALLOWLIST = {
    # C keywords / libultra integer typedefs (include/ultra64/ultratypes.h)
    "this", "void", "NULL", "u8", "s8", "u16", "s16", "u32", "s32", "f32",
    # the conventional `Actor* thisx` parameter name (see README: it was never renamed)
    "thisx",
    # F3DEX2 GBI function-like macros (include/ultra64/gbi.h)
    "gSPDisplayList", "gSPMatrix", "gSPSegment", "gSPEndDisplayList",
    "gDPSetPrimColor", "gDPSetEnvColor", "gDPPipeSync",
    # display-list bookkeeping macros (include/gfx.h)
    "OPEN_DISPS", "CLOSE_DISPS", "POLY_OPA_DISP", "POLY_XLU_DISP", "OVERLAY_DISP",
    # matrix macros (include/sys_matrix.h)
    "MATRIX_FINALIZE", "MATRIX_FINALIZE_AND_LOAD",
    # include/play_state.h
    "GET_PLAYER",
    # save flag and inventory macros (include/save.h)
    "GET_EVENTCHKINF", "SET_EVENTCHKINF", "GET_INFTABLE", "SET_INFTABLE",
    "GET_ITEMGETINF", "SET_ITEMGETINF", "GET_EVENTINF", "SET_EVENTINF",
    "LINK_IS_ADULT", "LINK_IS_CHILD", "INV_CONTENT",
    # include/segmented_address.h, include/seqcmd.h, include/ichain.h
    "SEGMENTED_TO_VIRTUAL", "SEQCMD_PLAY_SEQUENCE", "SEQCMD_STOP_SEQUENCE",
    "ICHAIN_F32", "ICHAIN_VEC3F_DIV1000",
    # debug helpers (include/printf.h, include/libc/assert.h, include/array_count.h)
    "PRINTF", "ASSERT", "ARRAY_COUNT",
    # actor table macros (include/actor_profile.h)
    "DEFINE_ACTOR", "DEFINE_ACTOR_INTERNAL",
}

FILE_SUFFIXES = (".h", ".c", ".s", ".o", ".ld", ".json", ".yaml", ".yml", ".md", ".py", ".z64", ".elf", ".map", ".bin")
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_RE = re.compile(rf"^{IDENT}(?:(?:->|\.){IDENT})*$")
INLINE_CODE_RE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE_RE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
RENAME_WORDS = re.compile(r"\b(renamed|formerly)\b", re.I)


def facts_dir() -> Path | None:
    env = os.environ.get("OOTGEN_DECOMP_FACTS")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "oot-decomp")
    for c in candidates:
        if (c / "functions.json").is_file():
            return c
    return None


@lru_cache(maxsize=1)
def decomp_names() -> dict[str, frozenset[str]]:
    """Load the fact files once per session and return name sets."""
    d = facts_dir()
    if d is None:
        pytest.skip("decomp facts not found: set OOTGEN_DECOMP_FACTS or provide ../shared/oot-decomp (CI has it)")

    def load(name):
        with open(d / name, encoding="utf-8") as fh:
            return json.load(fh)

    functions = {f["name"] for f in load("functions.json")["functions"]}

    structs_doc = load("structs.json")["structs"]
    struct_names, field_names = set(structs_doc), set()

    def walk(fields):
        for fl in fields:
            if fl.get("name"):
                field_names.add(fl["name"])
            if fl.get("fields"):
                walk(fl["fields"])

    for st in structs_doc.values():
        walk(st["fields"])

    globals_ = {g["name"] for g in load("globals.json")["globals"]}

    enums_doc = load("enums.json")
    enum_names = set(enums_doc["enums"])
    enum_members = {m["name"] for e in enums_doc["enums"].values() for m in e["members"]}
    defines = {n for per_header in enums_doc["defines"].values() for n in per_header}

    actors = set()
    for a in load("actors.json")["actors"]:
        for key in ("enum", "profile", "overlay"):
            if a.get(key):
                actors.add(a[key])

    renames = load("renames.json")
    old_names, old_patterns = set(), []
    for table in ("simpleReplace", "wordReplace"):
        old_names.update(renames["namefixer"].get(table, {}))
    for entry in renames["manual"]:
        for part in entry["old"].split("/"):
            part = part.strip()
            if "<Name>" in part:
                old_patterns.append(part)
            elif part:
                old_names.add(part)

    return {
        "functions": frozenset(functions),
        "structs": frozenset(struct_names),
        "fields": frozenset(field_names),
        "globals": frozenset(globals_),
        "enums": frozenset(enum_names),
        "enum_members": frozenset(enum_members),
        "defines": frozenset(defines),
        "actors": frozenset(actors),
        "old_names": frozenset(old_names),
        "old_patterns": frozenset(old_patterns),
    }


def known_top_level() -> frozenset[str]:
    n = decomp_names()
    return (n["functions"] | n["structs"] | n["globals"] | n["enums"] | n["enum_members"]
            | n["defines"] | n["actors"] | frozenset(ALLOWLIST))


def is_old_name(name: str) -> bool:
    n = decomp_names()
    if name in n["old_names"]:
        return True
    for pat in n["old_patterns"]:
        rx = "^" + re.escape(pat).replace(re.escape("<Name>"), r"[A-Za-z0-9_]+") + "$"
        if re.match(rx, name):
            return True
    return False


def split_front_matter(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n"), "context must start with YAML front matter"
    end = text.index("\n---", 4)
    meta = yaml.safe_load(text[4:end])
    body = text[end + 4:]
    return meta, body


def context_files() -> list[Path]:
    return sorted(CONTEXTS_DIR.glob("*.md"))


def type_files() -> list[Path]:
    return sorted(TYPES_DIR.glob("*.yaml"))


def candidate_identifier(span: str) -> str | None:
    """Return the normalised identifier/field path in a code span, or None if the span is not one."""
    s = span.strip()
    if s.endswith("()"):
        s = s[:-2]
    s = re.sub(r"\[[^\]]*\]", "", s)  # array indices: items[SLOT_BOW] -> items
    if s.lower().endswith(FILE_SUFFIXES):
        return None
    if not PATH_RE.match(s):
        return None
    return s


def backticked_identifiers(body: str):
    """Yield (line, identifier) for every inline code span that looks like a C identifier or field path."""
    without_fences = FENCE_RE.sub("", body)
    for line in without_fences.splitlines():
        for m in INLINE_CODE_RE.finditer(line):
            ident = candidate_identifier(m.group(1))
            if ident:
                yield line, ident


def identifier_problem(line: str, ident: str) -> str | None:
    n = decomp_names()
    top = known_top_level()
    parts = re.split(r"->|\.", ident)
    if len(parts) == 1:
        name = parts[0]
        if name in top or name in n["fields"]:
            return None
        if is_old_name(name):
            if RENAME_WORDS.search(line):
                return None
            return f"old name `{name}` used outside a 'renamed'/'formerly' line"
        return f"`{name}` is not a decomp identifier"
    head, rest = parts[0], parts[1:]
    if head not in top and head not in n["fields"]:
        return f"`{ident}`: path head `{head}` unknown"
    for comp in rest:
        if comp not in n["fields"]:
            if is_old_name(comp) and RENAME_WORDS.search(line):
                continue
            return f"`{ident}`: field `{comp}` is not a field of any decomp struct"
    return None


# ---------------------------------------------------------------- (a) front matter and length


@pytest.mark.parametrize("path", context_files(), ids=lambda p: p.name)
def test_context_front_matter_is_valid_against_schema(path):
    schema = json.loads(CONTEXT_SCHEMA.read_text(encoding="utf-8"))
    meta, _ = split_front_matter(path.read_text(encoding="utf-8"))
    jsonschema.validate(meta, schema)
    assert meta["id"] == path.stem, "context id must equal the file stem"
    assert 10 <= len(meta["topics"]) <= 16, "each context lists 10-16 topics"


@pytest.mark.parametrize("path", context_files(), ids=lambda p: p.name)
def test_context_body_has_at_least_1200_words(path):
    _, body = split_front_matter(path.read_text(encoding="utf-8"))
    words = len(body.split())
    assert words >= MIN_BODY_WORDS, f"{path.name}: {words} words"


def test_there_are_eight_contexts():
    ids = {p.stem for p in context_files()}
    assert ids >= {"actor_system", "player_system", "scene_system", "debugging", "asm_patches",
                   "audio_music", "graphics", "save_data"}


# ---------------------------------------------------------------- (b) identifiers


def test_every_backticked_identifier_exists_in_decomp():
    problems, checked = [], 0
    for path in context_files():
        _, body = split_front_matter(path.read_text(encoding="utf-8"))
        for line, ident in backticked_identifiers(body):
            checked += 1
            p = identifier_problem(line, ident)
            if p:
                problems.append(f"{path.name}: {p}")
    print(f"checked {checked} backticked identifiers")
    assert checked > 0
    assert not problems, "\n".join(problems)


def test_old_names_are_rejected_unless_marked_as_renamed():
    decomp_names()
    assert identifier_problem("call `GlobalContext` here", "GlobalContext")
    assert identifier_problem("`GlobalContext` was renamed to `PlayState`", "GlobalContext") is None
    assert identifier_problem("formerly `En_Box_InitVars`", "En_Box_InitVars") is None
    assert identifier_problem("`NotARealThing_Xyz` renamed", "NotARealThing_Xyz")
    assert identifier_problem("x", "play->actorCtx.flags.swch") is None
    assert identifier_problem("x", "play->actorCtx.noSuchField") is not None


def test_allowlist_entries_are_not_already_in_the_facts():
    n = decomp_names()
    facts = (n["functions"] | n["structs"] | n["globals"] | n["enums"] | n["enum_members"]
             | n["defines"] | n["actors"])
    assert not (ALLOWLIST & facts), f"drop these from ALLOWLIST: {sorted(ALLOWLIST & facts)}"


# ---------------------------------------------------------------- (c) example types


def load_types():
    return [(p, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in type_files()]


@pytest.mark.parametrize("path", type_files(), ids=lambda p: p.name)
def test_example_type_is_valid_and_names_existing_contexts(path):
    schema = json.loads(TYPE_SCHEMA.read_text(encoding="utf-8"))
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    assert data["name"] == path.stem
    existing = {p.stem for p in context_files()}
    missing = set(data["contexts"]) - existing
    assert not missing, f"{path.name} names unknown contexts {sorted(missing)}"


def test_no_two_example_types_share_a_name():
    names = [d["name"] for _, d in load_types()]
    assert len(names) == len(set(names)), names


def test_context_types_refer_to_existing_example_types():
    type_names = {d["name"] for _, d in load_types()} | {"*"}
    for path in context_files():
        meta, _ = split_front_matter(path.read_text(encoding="utf-8"))
        assert set(meta["types"]) <= type_names, f"{path.name}: {sorted(set(meta['types']) - type_names)}"
