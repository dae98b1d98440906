"""Builds the SymbolIndex that static L1 checks use: from a zeldaret/oot checkout (tree-sitter-c) or from fact JSON.

`python -m ootgen.index --from-facts DIR -o ootgen/data/oot_symbols.json.gz` regenerates the shipped index byte for byte.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .errors import ConfigError
from .symbols import SymbolIndex

_OFFSET = re.compile(r"/\*\s*(0x[0-9A-Fa-f]+)\s*\*/")
_ACTOR_ROW = re.compile(
    r"/\*\s*(0x[0-9A-Fa-f]+)\s*\*/\s*DEFINE_ACTOR(_INTERNAL|_UNSET)?\(\s*(\w+)(?:\s*,\s*(\w+))?"
)
_INT = re.compile(r"^\(?\s*(-?(?:0[xX][0-9A-Fa-f]+|\d+))[uUlL]*\s*\)?$")
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_TABLE_INCLUDE = re.compile(r'#\s*include\s*"(tables/[\w/]+\.h)"')
_TABLE_ROW = re.compile(r"^\s*(?:/\*.*?\*/\s*)?(DEFINE_\w+)\s*\((.*)\)\s*(?://.*)?$", re.M)
_ARG_SPLIT = re.compile(r"\s*,\s*")
_CONSTANT = re.compile(r"^[A-Z][A-Z0-9]*_[A-Z0-9_]+$")
_SKIP_DIRS = {"build", "expected", "extracted", "tools", "venv", ".venv", "baseroms", "assets"}


def _now_iso() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return moment.replace(microsecond=0).isoformat()


def _provenance(source: str, repository: str | None, commit: str | None, commit_date: str | None, built_at: str) -> dict:
    return {"source": source, "source_repository": repository, "commit": commit, "commit_date": commit_date,
            "built_at": built_at, "tool": f"ootgen {__version__}"}


def _parse_int(text: str) -> int | None:
    """A C integer literal (decimal, hex, or octal like `01`), possibly parenthesised and suffixed; else None."""
    m = _INT.match(text.strip())
    if not m:
        return None
    digits = m.group(1)
    body = digits.lstrip("-")
    if len(body) > 1 and body[0] == "0" and body[1] not in "xX":
        value = int(body, 8) if all(c in "01234567" for c in body) else None  # C octal; `08` is not C
        return None if value is None else (-value if digits.startswith("-") else value)
    return int(digits, 0)


# ---------------------------------------------------------------------------------------------------------
# From the fact JSON in /work/shared/oot-decomp (names and signatures only)
# ---------------------------------------------------------------------------------------------------------

def _flatten_fact_fields(owner: str, fields: list, structs: dict) -> list:
    out = []
    for f in fields:
        name, sub = f.get("name"), f.get("fields")
        if sub is not None and not name:
            out.extend(_flatten_fact_fields(owner, sub, structs))  # anonymous struct/union member
        elif sub is not None:
            name = name.split("[", 1)[0].strip()
            synthetic = f"{owner}::{name}"
            structs[synthetic] = {"kind": f.get("type", "struct"), "size": None,
                                  "fields": _flatten_fact_fields(synthetic, sub, structs)}
            out.append([name, synthetic, f.get("offset")])
        elif name:
            bare, bracket, dims = name.partition("[")  # `sides[2]`: the field is `sides`, its type an array
            out.append([bare.strip(), f.get("type", "") + (bracket + dims if bracket else ""), f.get("offset")])
    return out


# Renamed families found in the decomp's history (`git log -S OLD`) that renames.json does not record; a substring
# rename reports an old name only when its new name exists (COLTYPE_HIT0 -> COL_MATERIAL_HIT0).
HISTORY_SUBSTRING_RENAMES = {
    "COLTYPE_": "COL_MATERIAL_",  # f193311013 'Colliders: colType -> colMaterial (#2186)' 2024-09-12
}


def _renames_from_facts(renames: dict) -> dict:
    word, path, substring, suffix = {}, {}, dict(HISTORY_SUBSTRING_RENAMES), {}
    for old, new in renames.get("namefixer", {}).get("wordReplace", {}).get("map", {}).items():
        key = old.rstrip("(").strip()
        if _IDENT.match(key):
            word[key] = new.rstrip("(").strip()
        elif "." in key:
            path[key] = new
    for old, new in renames.get("namefixer", {}).get("simpleReplace", {}).get("map", {}).items():
        if _IDENT.match(old.strip()):
            substring[old.strip()] = new.strip()
    for entry in renames.get("manual", []):
        old, new = entry["old"], entry["new"]
        if _IDENT.match(old) and _IDENT.match(new):
            word[old] = new
        elif old.startswith("ActorInit"):  # "ActorInit / <Name>_InitVars" -> "ActorProfile / <Name>_Profile"
            word["ActorInit"] = "ActorProfile"
            suffix["_InitVars"] = "_Profile"
        elif old.endswith(".h"):
            path[Path(old).name] = new
    return {"word": word, "path": path, "substring": substring, "suffix": suffix}


def _prune_renames(data: dict) -> None:
    """A rename only counts while the old name is gone: drop entries whose old name is still a symbol."""
    index = SymbolIndex(data)
    data["renames"]["word"] = {o: n for o, n in data["renames"]["word"].items() if not index.has_symbol(o)}


def _macros_from_facts(doc: dict, defines: dict) -> tuple[dict, list]:
    """(function-like macros as name -> [sorted arities, variadic, local], names of macros local to one .c file);
    object-like header macros join `defines` (value None when not a plain integer)."""
    macros: dict[str, list] = {}
    local: set[str] = set()
    header_names = {m["name"] for m in doc["function_like"] + doc["object_like"] if not m.get("local")}
    for m in doc["function_like"]:
        record = macros.setdefault(m["name"], [[], 0, 1])
        if m["arity"] not in record[0]:
            record[0] = sorted([*record[0], m["arity"]])
        record[1] |= 1 if m["variadic"] else 0
        record[2] &= 1 if m.get("local") else 0
    for m in doc["object_like"]:
        if m.get("local") and m["name"] not in header_names:
            local.add(m["name"])
        elif not m.get("local"):
            defines.setdefault(m["name"], None)
    return macros, sorted(local)


def _assets_from_facts(doc: dict) -> dict:
    """{files: {asset file: {kind: [symbols]}}, objects: {OBJECT_*: file}, actor_objects: {profile: OBJECT_*}}."""
    files: dict[str, dict[str, list]] = {}
    for name, f in doc["files"].items():
        kinds: dict[str, list] = {}
        for sym in f["symbols"]:
            kinds.setdefault(sym["kind"], []).append(sym["name"])
        files[name] = {k: sorted(set(v)) for k, v in kinds.items()}
    return {"files": files, "objects": dict(doc["objects"]),
            "actor_objects": {p: a["object"] for p, a in doc["actor_objects"].items() if a.get("object")}}


def build_default_index(facts_dir: str | Path) -> SymbolIndex:
    """Index from the fact JSON files: functions, structs, enums, defines, globals, actors, renames + provenance."""
    facts_dir = Path(facts_dir)

    def read(name: str) -> dict:
        path = facts_dir / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("fact file missing", file=str(path), expected="the oot-decomp fact JSON") from None
        except json.JSONDecodeError as error:
            raise ConfigError(f"invalid JSON: {error.msg}", file=str(path), line=error.lineno) from None

    functions_doc = read("functions.json")
    functions: dict[str, list] = {}
    for f in functions_doc["functions"]:
        functions.setdefault(f["name"], []).append([
            f["return_type"], [[p.get("type", ""), p.get("name") or ""] for p in f["params"]], f["arity"],
            1 if f["variadic"] else 0, "d" if f["kind"] == "definition" else "p", f["file"], f["line"], None,
        ])
    for records in functions.values():
        records.sort(key=lambda r: (r[5], r[6]))

    structs: dict[str, dict] = {}
    typedefs: dict[str, str] = {}
    for name, s in sorted(read("structs.json")["structs"].items()):
        structs[name] = {"kind": s["kind"], "size": s.get("size"), "fields": _flatten_fact_fields(name, s["fields"], structs)}
        tag = s.get("tag")
        if tag and tag != name:
            typedefs.setdefault(tag, name)

    enums_doc = read("enums.json")
    enums = {m["name"]: m.get("value") for e in enums_doc["enums"].values() for m in e["members"]}
    # constants of one actor's or module's own header (src/**): not part of an engine-wide family
    private = {m["name"] for e in enums_doc["enums"].values() if e["file"].startswith("src/") for m in e["members"]}
    defines = {n: d.get("value") for header in enums_doc["defines"].values() for n, d in header.items()}
    globals_ = {g["name"]: g["type"] for g in read("globals.json")["globals"]}
    actors = [[a["id"], a["enum"], a.get("profile"), a.get("overlay")]
              for a in read("actors.json")["actors"] if a.get("kind") != "unset"]
    renames_doc = read("renames.json")
    macros_doc = read("macros.json")
    macros, local_macros = _macros_from_facts(macros_doc, defines)
    private |= {m["name"] for m in macros_doc["function_like"] + macros_doc["object_like"] if m["file"].startswith("src/")}
    for struct in structs.values():
        if any(not f[1] and f[0].isupper() for f in struct["fields"]):
            struct["open"] = True  # a member macro like SLIDING_DOOR_ACTOR_BASE: the field list is partial
    data = {
        "functions": functions, "structs": structs, "typedefs": typedefs, "enums": enums, "defines": defines,
        "macros": macros, "local_macros": local_macros, "private_constants": sorted(private),
        "headers": sorted(read("headers.json")["headers"]),
        "assets": _assets_from_facts(read("assets.json")),
        "globals": globals_, "actors": actors, "renames": _renames_from_facts(renames_doc),
        # built_at is the facts' commit date so that regenerating gives identical bytes
        "provenance": _provenance("facts", functions_doc.get("source_repository"), functions_doc.get("commit"),
                                  functions_doc.get("commit_date"), functions_doc.get("commit_date") or ""),
    }
    _prune_renames(data)
    return SymbolIndex(data)


# ---------------------------------------------------------------------------------------------------------
# From a checkout, with tree-sitter-c
# ---------------------------------------------------------------------------------------------------------

def _git_commit(root: Path) -> str | None:
    git = root / ".git"
    if git.is_file():  # worktree: "gitdir: <path>"
        text = git.read_text().strip()
        if text.startswith("gitdir:"):
            git = (root / text.split(":", 1)[1].strip()).resolve()
    head = git / "HEAD"
    if head.is_file():
        text = head.read_text().strip()
        if not text.startswith("ref:"):
            return text or None
        ref = text.split(":", 1)[1].strip()
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip()
        for candidate in (git / "packed-refs", git.parent / "packed-refs"):
            if candidate.is_file():
                for line in candidate.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split()[0]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class _Collector:
    """Walks the top level of each tree-sitter tree and fills the index tables."""

    def __init__(self, root: Path) -> None:
        import tree_sitter
        import tree_sitter_c

        self.root = root
        self.parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_c.language()))
        self.functions: dict[str, list] = {}
        self.structs: dict[str, dict] = {}
        self.typedefs: dict[str, str] = {}
        self.enums: dict[str, int | None] = {}
        self.defines: dict[str, int | None] = {}
        self.macros: dict[str, list] = {}  # name -> [arities, variadic, local]
        self.local_macros: set[str] = set()
        self.header_defines: set[str] = set()
        self.private: set[str] = set()  # constants declared under src/ (an actor's own header, a .c file)
        self.headers: list[str] = []
        self.table_macros: dict[str, int] = {}  # DEFINE_ACTOR -> position of the enum member in a table row
        self.globals: dict[str, str] = {}
        self.files = 0
        self.files_with_errors = 0
        self.error_nodes = 0
        self.failed_files: list[str] = []

    # -- entry --------------------------------------------------------------------------------------------
    def add_file(self, path: Path, rel: str) -> None:
        src = path.read_bytes()
        self.files += 1
        try:
            tree = self.parser.parse(src)
        except Exception:
            self.failed_files.append(rel)
            return
        root = tree.root_node
        if root.has_error:
            self.files_with_errors += 1
        self._src, self._rel = src, rel
        self._lines: list[bytes] | None = None
        self._is_header = rel.endswith(".h")
        self._private = rel.startswith("src/")
        if self._is_header:
            self.headers.append(rel)
        try:
            self._walk_block(root.children)
        except Exception:
            self.failed_files.append(rel)

    def _text(self, node) -> str:
        return self._src[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def _line_text(self, row: int) -> str:
        if self._lines is None:
            self._lines = self._src.split(b"\n")
        return self._lines[row].decode("utf-8", "replace") if row < len(self._lines) else ""

    # -- top level ----------------------------------------------------------------------------------------
    def _walk_block(self, nodes) -> None:
        for node in nodes:
            t = node.type
            if t == "function_definition":
                self._function(node, "d")
            elif t == "declaration":
                self._declaration(node)
            elif t == "type_definition":
                self._typedef(node)
            elif t in ("struct_specifier", "union_specifier", "enum_specifier"):
                self._specifier(node, None)
            elif t == "expression_statement" or t == "ERROR":
                self.error_nodes += t == "ERROR"
                self._walk_block(node.children)
            elif t == "preproc_def":
                name = node.child_by_field_name("name")
                value = node.child_by_field_name("value")
                if name is not None:
                    text = self._text(name)
                    if self._is_header:
                        self.header_defines.add(text)
                        self.defines.setdefault(text, _parse_int(self._text(value)) if value is not None else None)
                    else:
                        self.local_macros.add(text)  # a .c file's own macro, e.g. `#define vTimer actionVar1`
                    if self._private:
                        self.private.add(text)
            elif t == "preproc_function_def":
                name = node.child_by_field_name("name")
                if name is not None:
                    self._macro(self._text(name), node.child_by_field_name("parameters"))
                    self._table_macro(node)
            elif t in ("preproc_if", "preproc_ifdef", "preproc_elif", "preproc_else", "preproc_elifdef",
                       "linkage_specification", "declaration_list"):
                cond = node.child_by_field_name("condition")
                if t == "preproc_if" and cond is not None and self._text(cond).strip() == "0":
                    alt = node.child_by_field_name("alternative")
                    if alt is not None:
                        self._walk_block([alt])
                    continue
                self._walk_block(node.children)
            elif t == "ERROR":
                self._walk_block(node.children)

    def _table_macro(self, node) -> None:
        """`#define DEFINE_SFX(_0, enum, _2, _3, _4, _5) enum,`: which argument of a table row is the enum member."""
        name, params, value = (node.child_by_field_name(k) for k in ("name", "parameters", "value"))
        if name is None or params is None or value is None or not self._text(name).startswith("DEFINE_"):
            return
        m = re.match(r"\s*(\w+)\s*,?\s*$", self._text(value))
        names = [self._text(p) for p in params.named_children if p.type == "identifier"]
        if m and m.group(1) in names:
            self.table_macros[self._text(name)] = names.index(m.group(1))

    def _macro(self, name: str, params) -> None:
        """A function-like macro's arity: `(a, ...)` is 1 and variadic, GNU `(format, args...)` too."""
        text = self._text(params) if params is not None else "()"
        arity = sum(1 for p in params.named_children if p.type == "identifier") if params is not None else 0
        variadic = 1 if "..." in text else 0
        if re.search(r"\w\s*\.\.\.", text):
            arity -= 1  # the named variadic parameter is not a fixed one
        record = self.macros.setdefault(name, [[], 0, 1])
        if arity not in record[0]:
            record[0] = sorted([*record[0], arity])
        record[1] |= variadic
        record[2] &= 0 if self._is_header else 1
        if self._private:
            self.private.add(name)

    # -- pieces -------------------------------------------------------------------------------------------
    @staticmethod
    def _declarator_name(node):
        """(name node, pointer depth, array suffix, function_declarator or None) of a declarator chain."""
        depth, arrays, func = 0, "", None
        while node is not None:
            t = node.type
            if t in ("identifier", "field_identifier", "type_identifier"):
                return node, depth, arrays, func
            if t == "pointer_declarator":
                depth += 1
            elif t == "function_declarator" and func is None:
                func = node
            elif t == "array_declarator":
                size = node.child_by_field_name("size")
                arrays += "[" + (size.text.decode() if size is not None else "") + "]"
            node = node.child_by_field_name("declarator") if t != "parenthesized_declarator" else (
                node.named_children[0] if node.named_children else None)
        return None, depth, arrays, func

    def _params(self, func_decl) -> tuple[list, int, int]:
        params: list[list[str]] = []
        variadic = 0
        plist = func_decl.child_by_field_name("parameters")
        if plist is None:
            return params, 0, 0
        for p in plist.named_children:
            if p.type == "variadic_parameter":
                variadic = 1
            elif p.type == "parameter_declaration":
                ptype = p.child_by_field_name("type")
                decl = p.child_by_field_name("declarator")
                type_text = self._text(ptype) if ptype is not None else ""
                name = ""
                if decl is not None:
                    name_node, depth, arrays, fn = self._declarator_name(decl)
                    name = self._text(name_node) if name_node is not None else ""
                    type_text += "*" * depth + arrays + ("(*)()" if fn is not None else "")
                elif type_text == "void":
                    continue
                params.append([type_text, name])
        return params, len(params), variadic

    def _function(self, node, kind: str, decl=None) -> None:
        decl = decl if decl is not None else node.child_by_field_name("declarator")
        name_node, depth, _, func = self._declarator_name(decl)
        if name_node is None or func is None:
            return
        rtype = node.child_by_field_name("type")
        ret = (self._text(rtype) if rtype is not None else "int") + "*" * depth
        params, arity, variadic = self._params(func)
        end = node.end_point[0] + 1 if kind == "d" else None
        self.functions.setdefault(self._text(name_node), []).append(
            [ret, params, arity, variadic, kind, self._rel, node.start_point[0] + 1, end])

    def _declaration(self, node) -> None:
        extern = any(c.type == "storage_class_specifier" and self._text(c) == "extern" for c in node.children)
        tnode = node.child_by_field_name("type")
        if tnode is not None and tnode.type in ("struct_specifier", "union_specifier", "enum_specifier"):
            self._specifier(tnode, None)
        for decl in node.children_by_field_name("declarator"):
            target = decl.child_by_field_name("declarator") if decl.type == "init_declarator" else decl
            name_node, depth, arrays, func = self._declarator_name(target)
            if name_node is None:
                continue
            inner = func.child_by_field_name("declarator") if func is not None else None
            if inner is not None and inner.type == "parenthesized_declarator":
                if extern:  # `extern void (*gHook)(void);` is a variable holding a function pointer, not a function
                    self.globals.setdefault(self._text(name_node), (self._text(tnode) if tnode is not None else "") + "(*)()")
            elif func is not None and decl.type != "init_declarator" and (func is target or target.type == "pointer_declarator"):
                self._function(node, "p", target)
            elif extern:
                type_text = (self._text(tnode) if tnode is not None else "") + "*" * depth + arrays
                self.globals.setdefault(self._text(name_node), type_text)

    def _typedef(self, node) -> None:
        tnode = node.child_by_field_name("type")
        names = []
        for decl in node.children_by_field_name("declarator"):
            name_node, depth, arrays, func = self._declarator_name(decl)
            if name_node is not None:
                names.append((self._text(name_node), depth, arrays, func))
        struct_name = None
        if tnode is not None and tnode.type in ("struct_specifier", "union_specifier", "enum_specifier"):
            plain = [n for n, d, a, f in names if not d and not a and f is None]
            struct_name = self._specifier(tnode, plain[0] if plain else None)
        for name, depth, arrays, func in names:
            if func is not None:
                self.typedefs.setdefault(name, "(*)()")
            elif tnode is not None:
                base = struct_name or self._text(tnode)
                if base != name or depth or arrays:
                    self.typedefs.setdefault(name, base + "*" * depth + arrays)

    def _specifier(self, node, typedef_name: str | None) -> str | None:
        body = node.child_by_field_name("body")
        tag = node.child_by_field_name("name")
        tag_text = self._text(tag) if tag is not None else None
        if body is None:
            return tag_text
        if node.type == "enum_specifier":
            self._enum(body)
            return tag_text
        name = typedef_name or tag_text
        if name is None:
            return None
        if name not in self.structs:
            size = None
            m = re.search(r"//\s*size\s*=\s*(0x[0-9A-Fa-f]+)", self._line_text(node.end_point[0]))
            if m:
                size = m.group(1).upper().replace("0X", "0x")
            self.structs[name] = {"kind": node.type.split("_")[0], "size": size, "fields": self._fields(name, body)}
            if any(c.type == "ERROR" or (c.type == "field_declaration" and not c.children_by_field_name("declarator")
                                         and (c.child_by_field_name("type") is None
                                              or c.child_by_field_name("type").type == "type_identifier"))
                   for c in body.named_children):
                self.structs[name]["open"] = True  # a member macro such as SLIDING_DOOR_ACTOR_BASE
        if tag_text and typedef_name and tag_text != typedef_name:
            self.typedefs.setdefault(tag_text, typedef_name)
        return name

    def _fields(self, owner: str, body) -> list:
        out = []
        for f in body.named_children:
            if f.type in ("preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif"):
                out.extend(self._fields(owner, f))
                continue
            if f.type != "field_declaration":
                continue
            tnode = f.child_by_field_name("type")
            decls = f.children_by_field_name("declarator")
            offset_m = _OFFSET.search(self._line_text(f.start_point[0]))
            offset = offset_m.group(1) if offset_m else None
            nested = tnode is not None and tnode.type in ("struct_specifier", "union_specifier") and \
                tnode.child_by_field_name("body") is not None
            if nested and not decls:
                out.extend(self._fields(owner, tnode.child_by_field_name("body")))
                continue
            for decl in decls:
                name_node, depth, arrays, func = self._declarator_name(decl)
                if name_node is None:
                    continue
                name = self._text(name_node)
                if nested:
                    type_text = f"{owner}::{name}"
                    self.structs[type_text] = {"kind": tnode.type.split("_")[0], "size": None,
                                               "fields": self._fields(type_text, tnode.child_by_field_name("body"))}
                else:
                    type_text = self._text(tnode) if tnode is not None else ""
                type_text += "*" * depth + arrays + ("(*)()" if func is not None else "")
                out.append([name, type_text, offset])
        return out

    def _enum(self, body) -> None:
        value: int | None = -1
        for include in _TABLE_INCLUDE.finditer(self._text(body)):
            # `#include "tables/actor_table.h"` inside the enum: one member per row (ACTOR_*, OBJECT_*, NA_SE_*...)
            table = self.root / "include" / include.group(1)
            if table.is_file():
                for row in _TABLE_ROW.finditer(table.read_text(encoding="utf-8", errors="replace")):
                    args = _ARG_SPLIT.split(row.group(2).strip())
                    position = self.table_macros.get(row.group(1))
                    member = args[position] if position is not None and position < len(args) else \
                        next((a for a in args if _CONSTANT.match(a)), None)
                    if member is not None and _IDENT.match(member):
                        self.enums.setdefault(member, None)
        for e in body.named_children:
            if e.type != "enumerator":
                continue
            name = e.child_by_field_name("name")
            expr = e.child_by_field_name("value")
            if expr is not None:
                text = self._text(expr)
                value = _parse_int(text)
                if value is None:
                    value = self.enums.get(text.strip())
            elif value is not None:
                value += 1
            if name is not None:
                self.enums.setdefault(self._text(name), value)
                if self._private:
                    self.private.add(self._text(name))


def _source_files(root: Path) -> list[tuple[Path, str]]:
    files = []
    for top, patterns in (("include", (".h",)), ("src", (".h", ".c"))):
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for fn in sorted(filenames):
                if fn.endswith(patterns):
                    p = Path(dirpath) / fn
                    files.append((p, p.relative_to(root).as_posix()))
    return files


def _actor_table(root: Path) -> list:
    path = root / "include" / "tables" / "actor_table.h"
    if not path.is_file():
        return []
    actors = []
    for m in _ACTOR_ROW.finditer(path.read_text(encoding="utf-8", errors="replace")):
        id_hex, variant, first, second = m.groups()
        if variant == "_UNSET":
            continue
        overlay = None if variant == "_INTERNAL" else f"ovl_{first}"
        actors.append([int(id_hex, 16), second, f"{first}_Profile", overlay])
    return actors


_OBJECT_ROW = re.compile(r"DEFINE_OBJECT(?:_UNSET|_EMPTY|_NULL)?\(\s*(\w+)\s*,\s*(OBJECT_\w+)")
_PROFILE = re.compile(r"ActorProfile\s+(\w+)\s*=\s*\{([^}]*)\}")


def _checkout_assets(root: Path, files: list[tuple[Path, str]]) -> dict:
    """Asset symbols by file and kind from assets/xml (names only: no ROM is needed), OBJECT_* -> file from the
    object table, and the objectId each actor profile names."""
    import xml.etree.ElementTree as ET

    assets: dict[str, dict[str, list]] = {}
    for xml in sorted((root / "assets" / "xml").rglob("*.xml")) if (root / "assets" / "xml").is_dir() else ():
        try:
            tree = ET.parse(xml)
        except ET.ParseError:
            continue
        for file_node in tree.getroot().iter("File"):
            kinds = assets.setdefault(file_node.get("Name", xml.stem), {})
            for element in file_node.iter():
                name = element.get("Name")
                if element is not file_node and name:
                    kinds.setdefault(element.tag, []).append(name)
    for kinds in assets.values():
        for kind, names in kinds.items():
            kinds[kind] = sorted(set(names))
    table = root / "include" / "tables" / "object_table.h"
    objects = {m.group(2): m.group(1) for m in _OBJECT_ROW.finditer(table.read_text(errors="replace"))} if table.is_file() else {}
    actor_objects = {}
    for path, rel in files:
        if rel.endswith(".c") and ("/actors/" in rel or rel.startswith("src/code/")):
            text = path.read_text(encoding="utf-8", errors="replace")
            for m in _PROFILE.finditer(text) if "ActorProfile" in text else ():
                obj = re.search(r"\bOBJECT_\w+", m.group(2))
                if obj:
                    actor_objects[m.group(1)] = obj.group(0)
    return {"files": assets, "objects": objects, "actor_objects": actor_objects}


def build_index(decomp_dir: str | Path, *, progress: Callable[[int, int, str], None] | None = None) -> SymbolIndex:
    """Parse a zeldaret/oot checkout: prototypes, definitions (with line ranges), structs, typedefs, enums,
    #defines, extern globals, the actor table and the git commit. `provenance["parse"]` counts parse trouble."""
    root = Path(decomp_dir)
    if not (root / "include").is_dir() or not (root / "src").is_dir():
        raise ConfigError("not a zeldaret/oot checkout", file=str(root), expected="a folder with include/ and src/")
    started = time.perf_counter()
    collector = _Collector(root)
    files = _source_files(root)
    # headers first so that prototypes and struct layouts from include/ win over duplicates in .c files
    files.sort(key=lambda f: (not f[1].startswith("include/"), f[1].endswith(".c"), f[1]))
    for i, (path, rel) in enumerate(files):
        collector.add_file(path, rel)
        if progress is not None:
            progress(i + 1, len(files), rel)
    for records in collector.functions.values():
        records.sort(key=lambda r: (r[4] != "p", r[5], r[6]))
    facts_renames = root / "renames.json"  # optional: a renames.json (fact format) next to the checkout's root
    if facts_renames.is_file():
        renames = _renames_from_facts(json.loads(facts_renames.read_text()))
    else:  # the decomp's rename history is the same for every checkout: take the shipped index's map
        renames = copy.deepcopy(SymbolIndex.load("default").to_dict()["renames"])
    provenance = _provenance("decomp", "https://github.com/zeldaret/oot", _git_commit(root), None, _now_iso())
    provenance["parse"] = {
        "files": collector.files, "files_with_errors": collector.files_with_errors,
        "error_nodes": collector.error_nodes, "failed_files": sorted(collector.failed_files),
        "seconds": round(time.perf_counter() - started, 2),
    }
    local = collector.local_macros - collector.header_defines - set(collector.macros)
    data = {
        "functions": collector.functions, "structs": collector.structs, "typedefs": collector.typedefs,
        "enums": collector.enums, "defines": collector.defines, "macros": collector.macros,
        "local_macros": sorted(local), "private_constants": sorted(collector.private),
        "headers": sorted(collector.headers), "assets": _checkout_assets(root, files),
        "globals": collector.globals, "actors": _actor_table(root), "renames": renames, "provenance": provenance,
    }
    _prune_renames(data)
    return SymbolIndex(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ootgen.index", description=__doc__)
    parser.add_argument("decomp_dir", nargs="?", help="a zeldaret/oot checkout")
    parser.add_argument("--from-facts", metavar="DIR", help="build from the oot-decomp fact JSON instead")
    parser.add_argument("-o", "--output", default="oot_symbols.json.gz")
    args = parser.parse_args(argv)
    if bool(args.decomp_dir) == bool(args.from_facts):
        parser.error("give either DECOMP_DIR or --from-facts DIR")
    started = time.perf_counter()
    index = build_default_index(args.from_facts) if args.from_facts else build_index(args.decomp_dir)
    index.save(args.output)
    counts = ", ".join(f"{k} {v}" for k, v in index.counts().items())
    print(f"{args.output}: {counts}; commit {index.provenance.get('commit')}; {time.perf_counter() - started:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
