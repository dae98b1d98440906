"""Checks on the knowledge contexts (contexts/*.md) and example types (configs/types/*.yaml).

The identifier test compares every backticked C identifier in the contexts with the
decomp fact files (functions, structs and their fields, globals, enums, #defines, macros,
actors) described in shared/oot-decomp/README.md. The path tests check every decomp file
path a context names (in its body and in its `sources:` front matter) against the files the
fact files mention, plus tests/decomp_paths_extra.txt for the few folders they cannot vouch
for (see the header of that file for how it was produced).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import decomp_facts_dir

REPO = Path(__file__).resolve().parents[1]
CONTEXTS_DIR = REPO / "contexts"
TYPES_DIR = REPO / "configs" / "types"
CONTEXT_SCHEMA = REPO / "schemas" / "context.schema.json"
TYPE_SCHEMA = REPO / "schemas" / "example_type.schema.json"

MIN_BODY_WORDS = 1200

# Identifiers the fact files cannot hold, each checked by hand against zeldaret/oot at the
# pinned commit. Macros (function-like and object-like) come from macros.json; typedefs of
# integer types and C keywords are not declarations at all.
ALLOWLIST = {
    # C keywords / libultra integer typedefs (include/ultra64/ultratypes.h)
    "this", "void", "u8", "u16", "s16", "u32", "s32", "f32", "sizeof",
    # the conventional `Actor* thisx` parameter name (see README: it was never renamed)
    "thisx",
    # variables defined in a .c file without an extern in any header (globals.json holds externs only)
    "sCategoryFreezeMasks", "sAttentionColors",  # src/code/z_actor.c
    "sSetupDL",  # src/code/z_rcp.c
    # function-pointer typedefs (include/animation.h)
    "OverrideLimbDrawOpa", "PostLimbDrawOpa",
    # build-system words: Makefile variables, also passed to the compiler as -D defines (Makefile)
    "VERSION", "COMPARE", "NON_MATCHING", "COMPILER", "ORIG_COMPILER", "DEBUG_FEATURES",
    "MIPS_BINUTILS_PREFIX", "N64_EMULATOR", "PLATFORM_N64", "PLATFORM_GC", "PLATFORM_IQUE", "OOT_VERSION",
    # spec statements (tools/spec.c) and make targets (Makefile)
    "beginseg", "endseg", "compress", "romalign", "setup",
}

FILE_SUFFIXES = (".h", ".c", ".s", ".o", ".ld", ".json", ".yaml", ".yml", ".md", ".py", ".z64", ".elf", ".map", ".bin")
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH_RE = re.compile(rf"^{IDENT}(?:(?:->|\.){IDENT})*$")
INLINE_CODE_RE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
FENCE_RE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
RENAME_WORDS = re.compile(r"\b(renamed|formerly)\b", re.I)


def facts_dir() -> Path | None:
    return decomp_facts_dir()


def fact_loader():
    """load(name) -> the parsed fact file `name`; skips the test when the fact data is not present."""
    d = facts_dir()
    if d is None:
        pytest.skip("decomp facts not found: set OOTGEN_DECOMP_FACTS or provide ../shared/oot-decomp (CI has it)")

    def load(name):
        with open(d / name, encoding="utf-8") as fh:
            return json.load(fh)

    return load


@lru_cache(maxsize=1)
def decomp_names() -> dict[str, frozenset[str]]:
    """Load the fact files once per session and return name sets."""
    load = fact_loader()

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

    macros_doc = load("macros.json")
    # local ones too: a macro defined in one .c file is still a decomp identifier (README of the facts)
    macros = {m["name"] for kind in ("function_like", "object_like") for m in macros_doc[kind]}

    # asset symbols (gTreasureChestChestFrontDL) and asset file names (object_box)
    assets_doc = load("assets.json")
    assets = set(assets_doc["files"]) | {s["name"] for f in assets_doc["files"].values() for s in f["symbols"]}

    # overlay folder names under src/overlays/ (ovl_En_Box, ovl_title, ovl_kaleido_scope)
    overlays = {m.group(1) for f in load("functions.json")["functions"]
                for m in [re.match(r"src/overlays/[^/]+/(ovl_[^/]+)/", f["file"])] if m}

    actors = set()
    for a in load("actors.json")["actors"]:
        for key in ("enum", "profile", "overlay", "debug_name"):
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
        "macros": frozenset(macros),
        "assets": frozenset(assets),
        "overlays": frozenset(overlays),
        "old_names": frozenset(old_names),
        "old_patterns": frozenset(old_patterns),
    }


@lru_cache(maxsize=1)
def known_top_level() -> frozenset[str]:
    n = decomp_names()
    return (n["functions"] | n["structs"] | n["globals"] | n["enums"] | n["enum_members"]
            | n["defines"] | n["macros"] | n["assets"] | n["overlays"] | n["actors"] | frozenset(ALLOWLIST))


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
    """Yield (line, identifier) for every inline code span that looks like a C identifier or field path.

    Names containing "example" (`EnExample`, `OBJECT_EXAMPLE`) are the reader's own, deliberately
    fictional names, not claims about the decomp, and are left out.
    """
    without_fences = FENCE_RE.sub("", body)
    for line in without_fences.splitlines():
        for m in INLINE_CODE_RE.finditer(line):
            ident = candidate_identifier(m.group(1))
            if ident and "example" not in ident.lower():
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


# ---------------------------------------------------------------- decomp file paths

EXTRA_PATHS_FILE = Path(__file__).resolve().parent / "decomp_paths_extra.txt"
PATH_PREFIXES = ("src/", "include/", "assets/", "spec/", "tools/", "baseroms/", "docs/")
TOP_LEVEL_FILES_RE = r"Makefile|README\.md"
DECOMP_PATH_RE = re.compile(
    rf"(?<![\w./-])((?:{'|'.join(re.escape(p) for p in PATH_PREFIXES)})[\w./<>*-]*[\w/*>]|(?:{TOP_LEVEL_FILES_RE})\b)"
)
# The reader's own, deliberately fictional names (`src/overlays/actors/ovl_En_Example/`) and
# placeholders (`baseroms/<version>/`) are not claims about the decomp.
PLACEHOLDER_RE = re.compile(r"[<>*]|example|\.\.\.", re.I)


@lru_cache(maxsize=1)
def decomp_paths() -> tuple[frozenset[str], frozenset[str]]:
    """(files, folders) of the decomp at the pinned commit, from the fact files and the extra list.

    Asset headers and C files generated from an XML (`assets/objects/object_box/object_box.h`
    from assets/xml/objects/object_box.xml) count as files: actor code includes them by that path.
    """
    load = fact_loader()

    files = set(load("headers.json")["headers"])
    files |= {f["file"] for f in load("functions.json")["functions"]}
    files |= {s["file"] for s in load("structs.json")["structs"].values()}
    enums_doc = load("enums.json")
    files |= {e["file"] for e in enums_doc["enums"].values()} | set(enums_doc["tables"]) | set(enums_doc["defines"])
    files |= {g["file"] for g in load("globals.json")["globals"]}
    files |= {m["file"] for kind in ("function_like", "object_like") for m in load("macros.json")[kind]}
    for a in load("actors.json")["actors"]:
        if a.get("profile_file"):
            files.add(a["profile_file"])
    for name, asset in load("assets.json")["files"].items():
        xml = asset["xml"]
        files.add(xml)
        folder = xml.removeprefix("assets/xml/").rsplit("/", 1)[0]
        files.update({f"assets/{folder}/{name}/{name}.h", f"assets/{folder}/{name}/{name}.c"})
    for line in EXTRA_PATHS_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            files.add(line)
    folders = {"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)}
    return frozenset(files), frozenset(folders)


def referenced_paths(text: str) -> list[str]:
    """Every decomp file or folder path named in `text`, placeholders left out."""
    found = []
    for m in DECOMP_PATH_RE.finditer(text):
        path = m.group(1).rstrip(".")
        if not PLACEHOLDER_RE.search(path):
            found.append(path)
    return found


REMOVED_WORDS = re.compile(r"\b(removed|no longer|gone|renamed|formerly)\b", re.I)


@lru_cache(maxsize=1)
def removed_paths() -> frozenset[str]:
    """Paths renames.json records as removed (include/functions.h, include/variables.h)."""
    d = facts_dir()
    assert d is not None
    renames = json.loads((d / "renames.json").read_text(encoding="utf-8"))
    return frozenset(e["old"] for e in renames["manual"] if e["old"].startswith(PATH_PREFIXES))


def path_problem(path: str, line: str = "") -> str | None:
    files, folders = decomp_paths()
    if path in files or path.rstrip("/") in folders:
        return None
    if path in removed_paths() and REMOVED_WORDS.search(line):
        return None
    return f"`{path}` is not a file or folder of the decomp at the pinned commit"


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


def test_there_are_the_original_and_new_contexts():
    ids = {p.stem for p in context_files()}
    assert ids >= {"actor_system", "player_system", "scene_system", "debugging", "asm_patches",
                   "audio_music", "graphics", "save_data",
                   "build_and_assets", "collision", "skeletal_animation", "game_states"}


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
             | n["defines"] | n["macros"] | n["assets"] | n["overlays"] | n["actors"])
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


# ---------------------------------------------------------------- (d) decomp file paths and sources


def test_every_referenced_decomp_path_exists():
    problems, checked = [], 0
    for path in context_files():
        _, body = split_front_matter(path.read_text(encoding="utf-8"))
        for paragraph in re.split(r"\n\s*\n", body):  # a "was removed" remark may sit on the next line
            for ref in referenced_paths(paragraph):
                checked += 1
                p = path_problem(ref, paragraph)
                if p:
                    problems.append(f"{path.name}: {p}")
    print(f"checked {checked} decomp paths")
    assert checked > 0
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", context_files(), ids=lambda p: p.name)
def test_context_lists_existing_sources_right_after_title(path):
    text = path.read_text(encoding="utf-8")
    meta, _ = split_front_matter(text)
    sources = meta.get("sources")
    assert isinstance(sources, list) and sources, f"{path.name}: no `sources:` list"
    keys = [line.split(":", 1)[0] for line in text[4:text.index("\n---", 4)].splitlines()
            if line and not line.startswith((" ", "-", "#"))]
    assert keys.index("sources") == keys.index("title") + 1, f"{path.name}: `sources:` must follow `title:`"
    files, _ = decomp_paths()
    missing = [s for s in sources if s not in files]
    assert not missing, f"{path.name}: sources not in the decomp: {missing}"
    assert len(sources) == len(set(sources)), f"{path.name}: duplicate sources"


def test_path_checks_catch_wrong_paths():
    decomp_paths()
    assert path_problem("src/code/z_actor.c") is None
    assert path_problem("include/actor.h") is None
    assert path_problem("src/overlays/actors/") is None
    assert path_problem("assets/objects/object_box/object_box.h") is None
    assert path_problem("spec/spec") is None
    assert path_problem("src/code/z_actor_nope.c") is not None
    assert path_problem("include/functions.h") is not None  # removed from the decomp in 2025
    assert path_problem("include/functions.h", "`include/functions.h` was removed") is None
    assert path_problem("include/nope.h", "`include/nope.h` was removed") is not None
    assert path_problem("assets/objects/object_nope/object_nope.h") is not None
    assert referenced_paths("see `src/overlays/actors/ovl_<Name>/` and src/code/graph.c.") == ["src/code/graph.c"]
    assert referenced_paths("the Makefile and build/gc-eu-mq-dbg/x.map") == ["Makefile"]
