"""L1 compiler layer of the validate stage: an answer's C compiled by the decomp's own CC_CHECK (host gcc
-fsyntax-only with the checkout's flags), many answers per gcc call, each diagnostic mapped to the answer's line.

An answer that rewrites a function the checkout defines is compiled after that function's real file (so the
file's statics, macros and helpers are in scope); any other answer after every top-level decomp header. Names
the answer neither declares nor finds in the decomp are the user's own and are tolerated, unless they are a near
miss of a decomp name or belong to a decomp name family (`Actor_*`, `ACTOR_FLAG_*`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..records import Example, Finding
from ..settings import CompilerSettings, GroundingSettings
from ._assets import write_asset_headers
from ._makefile import CompileFlags, read_cc_check

CODE = "COMPILE_ERROR"
_STUB_VERSION = "7"  # bump when the generated stand-ins change shape
MAX_FINDINGS_PER_ANSWER = 5


@dataclass(frozen=True)
class CodeBlock:
    """One C fence of an answer: its code, the line of its first code line in `where`'s text."""

    code: str
    first_line: int
    where: str = "output"


@dataclass(frozen=True)
class AnswerCode:
    blocks: tuple[CodeBlock, ...]
    table_ids: frozenset[str] = frozenset()  # ids the answer says it adds to a decomp table (ACTOR_EN_MY_NPC)


@dataclass(frozen=True)
class Unavailable:
    """The compiler layer is off; `reason` says why in one line."""

    reason: str

    @property
    def status(self) -> str:
        return f"compiler layer off: {self.reason}"


# ---------------------------------------------------------------------------------------------------------
# facts about the checkout, computed once and cached on disk
# ---------------------------------------------------------------------------------------------------------

_FUNC_DEF = re.compile(r"^(?![ \t#/])(?:[\w*]+[ \t]+)+\**[ \t]*(\w+)\([^;{}]*\)\s*\{", re.M)
_TYPEDEF_NAME = re.compile(r"^\}\s*(\w+)\s*;", re.M)
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")


@dataclass(frozen=True)
class _CheckoutFacts:
    names: frozenset[str]  # every identifier the top-level decomp headers declare or use
    families: frozenset[str]  # prefixes (`Actor_`, `ACTOR_FLAG_`) shared by at least 3 of those names
    function_files: dict[str, str]  # function defined in exactly one .c file → that file (relative)
    type_headers: dict[str, str]  # typedef name of a header under src/ → that header (relative)
    headers_by_name: dict[str, str]  # basename of a header under src/ (unique) → relative path
    asset_headers: dict[str, str]  # asset symbol → the stand-in header declaring it (include path)


def _family(name: str) -> str | None:
    if "_" not in name.strip("_"):
        return None
    if name.isupper() or not any(c.islower() for c in name):
        return name[: name.rstrip("_").rfind("_") + 1] or None
    head = name[: name.find("_", 1) + 1]
    return head if len(head) > 2 else None


def _prefixes(name: str) -> set[str]:
    """Every family a name belongs to: its `_`-terminated prefixes (`ACTOR_`, `ACTOR_FLAG_`; `Actor_`)."""
    return {name[: i + 1] for i, c in enumerate(name[:-1]) if c == "_" and i > 1}


def _scan_sources(checkout: Path) -> tuple[dict, dict, dict]:
    functions: dict[str, set[str]] = defaultdict(set)
    types: dict[str, str] = {}
    headers: dict[str, list[str]] = defaultdict(list)
    src = checkout / "src"
    for path in sorted(src.rglob("*")):
        if path.suffix not in (".c", ".h") or not path.is_file():
            continue
        rel = str(path.relative_to(checkout))
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".c":
            for m in _FUNC_DEF.finditer(text):
                functions[m.group(1)].add(rel)
        else:
            headers[path.name].append(rel)
            for m in _TYPEDEF_NAME.finditer(text):
                types.setdefault(m.group(1), rel)
    unique = {name: next(iter(files)) for name, files in functions.items() if len(files) == 1}
    return unique, types, {name: paths[0] for name, paths in headers.items() if len(paths) == 1}


# ---------------------------------------------------------------------------------------------------------
# one answer → pieces of a translation unit
# ---------------------------------------------------------------------------------------------------------

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]', re.M)
_ELLIPSIS_LINE = re.compile(r"^[ \t]*(?://[ \t]*)?\.\.\.[ \t;]*(?://.*)?$", re.M)
_TOP_LEVEL_START = re.compile(r"^\s*(?:typedef|struct|union|enum|static|extern|const|ActorProfile|#\s*include)\b")
_AGGREGATE_DEF = re.compile(r"^(?![ \t])[\w \t*]+?\b(\w+)\s*(?:\[[^\]]*\])*\s*=\s*\{", re.M)
_GLOBAL_DEF = re.compile(r"^(?:static[ \t]+)?(?:const[ \t]+)?(?!return\b|else\b|goto\b)\w+[ \t]+\**(\w+)\s*(?:\[[^\]]*\])*\s*(?:=|;)",
                         re.M)
_TAG_DEF = re.compile(r"\b(?:struct|union|enum)\s+(\w+)\s*\{")
_TYPEDEF_END = re.compile(r"\}\s*(\w+)\s*;")
_TYPEDEF_SIMPLE = re.compile(r"^\s*typedef\b[^;{}]*?\b(\w+)\s*(?:\[[^\]]*\])?\s*;", re.M)
_TYPEDEF_FUNC = re.compile(r"^\s*typedef\b[^;{}()]*\(\s*\*\s*(\w+)\s*\)\s*\(", re.M)  # typedef void (*EnMineFunc)(..);
_ENUM_BODY = re.compile(r"\benum\b[^{;]*\{([^}]*)\}")
_MACRO_DEF = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)", re.M)
_THIS_DECL = re.compile(r"\*\s*this\s*[=;,)]")
_ACTOR_STRUCT = re.compile(r"typedef\s+struct\s+\w*\s*\{\s*(?:/\*.*?\*/\s*)?(?:Actor|DynaPolyActor)\s+\w+\s*;"
                           r".*?\}\s*(\w+)\s*;", re.S)
_COMMENTS_STRINGS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_PP_IF = re.compile(r"^[ \t]*#[ \t]*if", re.M)
_PP_ENDIF = re.compile(r"^[ \t]*#[ \t]*endif", re.M)


def _blank(text: str) -> str:
    """Comments and string literals replaced by spaces (newlines kept), for counting and scanning."""
    return _COMMENTS_STRINGS.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def _depth0(text: str) -> str:
    """Only the text outside braces (newlines kept), so definitions inside bodies are not taken for globals."""
    out, depth = [], 0
    for c in text:
        if c == "{":
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
            continue
        out.append(c if depth == 0 or c == "\n" else " ")
    return "".join(out)


_STATEMENT = re.compile(r"^\s*(?:(?:if|for|while|switch|return|do|else|goto|break|continue|case|default)\b"
                        r"|[A-Za-z_]\w*(?:\s*(?:\[[^\]\n]*\]|\.\s*\w+|->\s*\w+))*\s*(?:[-+*/%&|^]?=(?!=)|\+\+|--|\()"
                        r"|\*|\+\+|--|\()", re.M)


def _is_top_level(code: str) -> bool:
    """File-scope code (definitions, declarations, includes) rather than statements for a function body."""
    bare = _blank(code)
    outside = _depth0(bare)
    lines = [ln for ln in outside.split("\n") if ln.strip() and not ln.lstrip().startswith("#")]
    if any(_STATEMENT.match(ln) for ln in lines):
        return False  # a statement at depth 0: a fragment of a function body
    if _FUNC_DEF.search(bare) or _AGGREGATE_DEF.search(_depth0_keep_open(bare)):
        return True
    return bool(lines and _TOP_LEVEL_START.match(lines[0])) or (not lines and bool(_INCLUDE.search(code)))


def _depth0_keep_open(text: str) -> str:
    return "\n".join(line for line in text.split("\n") if not line.startswith((" ", "\t")))


def _balanced(code: str) -> bool:
    bare = _blank(code)
    if bare.count("/*") != bare.count("*/"):
        return False
    return (bare.count("{") == bare.count("}") and bare.count("(") == bare.count(")")
            and len(_PP_IF.findall(bare)) == len(_PP_ENDIF.findall(bare)) and "/*" not in bare)


@dataclass
class _Prepared:
    index: int
    blocks: list[tuple[CodeBlock, str, bool]] = field(default_factory=list)  # (block, cleaned code, top level)
    defined: list[str] = field(default_factory=list)  # file-scope names the answer defines (renamed per answer)
    macros: list[str] = field(default_factory=list)
    this_type: str | None = None
    grounded: str | None = None  # the checkout .c file the answer's function comes from
    extra_headers: list[str] = field(default_factory=list)
    asset_includes: list[str] = field(default_factory=list)  # stand-in headers of the asset symbols it uses
    findings: list[Finding] = field(default_factory=list)
    solo: bool = False  # unbalanced code: compiled alone so it cannot swallow another answer
    opaque_types: tuple[str, ...] = ()  # the user's own types, declared as incomplete structs
    declared_calls: tuple[str, ...] = ()  # the user's own functions, declared without a prototype
    declared_objects: tuple[str, ...] = ()  # the user's own variables and constants, declared as int
    table_ids: tuple[str, ...] = ()  # the ids it adds to a decomp table, declared as enum members


# ---------------------------------------------------------------------------------------------------------
# diagnostics
# ---------------------------------------------------------------------------------------------------------

_DIAG = re.compile(r"^(?P<file>[^:\n]+):(?P<line>\d+):(?:(?P<col>\d+):)? (?P<kind>fatal error|error|warning|note): "
                   r"(?P<msg>.*)$")
_INCLUDED_FROM = re.compile(r"^(?:In file included|\s+) from (?P<file>[^:\n]+):(?P<line>\d+)[:,]")
_ANSWER_FILE = re.compile(r"^@(\d+)\.(\d+|d)$")  # @answer.block, or @answer.d: the declarations made for it
_UNDECLARED = re.compile(r"^'(\w+)' undeclared")
_IMPLICIT = re.compile(r"^implicit declaration of function '(\w+)'")
_UNKNOWN_TYPE = re.compile(r"^unknown type name '(\w+)'")
_QUOTED = re.compile(r"'([A-Za-z_]\w*)'")
_RENAMED = re.compile(r"__ootgen\d+_(\w+)")
_INTERNAL = re.compile(r"__ootgen\d+_frag\d+")
_PROTOTYPE = re.compile(r"^[ \t]*(?:static[ \t]+|extern[ \t]+)?(?:[\w*]+[ \t]+)+\**[ \t]*(\w+)\s*\([^;{}]*\)\s*;", re.M)
_MEMBER_OR_TAG = re.compile(r"(?:\.|->)\s*[A-Za-z_]\w*|\b(?:struct|union|enum)\s+[A-Za-z_]\w*|\b\w+\s*:(?!:)")
_NAME_USE = re.compile(r"(?<![\w.])([A-Za-z_]\w*)\b(\s*\()?")
_TYPE_USE = re.compile(r"\b([A-Z]\w*)\s*\*+\s*(?:[A-Za-z_(]|\))")  # `EnMine* this`, `(EnMine*)thisx`
_TYPE_DECL = re.compile(r"^\s*(?:static\s+|const\s+)*([A-Z]\w*)\s+[A-Za-z_]\w*\s*[;=\[,)]", re.M)
_TYPE_CONFUSION = re.compile(r"incompatible (?:pointer )?type|makes (?:pointer|integer) from|request for member|"
                             r"invalid type argument|subscripted value|incomplete type|undefined type|"
                             r"not a function|invalid operands|invalid initializer|used struct type value|"
                             r"cannot convert|conversion to non-scalar|lvalue required|initializer element is not")
_FILE_LOCAL_NAME = re.compile(r"s[A-Z]")  # the decomp's convention for a file's statics (sCylinderInit)
_ADDRESS_NAME = re.compile(r"_(?:0x)?[0-9A-Fa-f]{6,8}(?:_|$)")


@dataclass(frozen=True)
class _Diag:
    answer: int | None  # None: the diagnostic is not in (or included from) an answer
    block: int
    line: int
    kind: str
    message: str
    raw: str


def _parse_diagnostics(stderr: str) -> list[_Diag]:
    out: list[_Diag] = []
    chain: list[tuple[str, int]] = []
    last_main: int | None = None  # index of the last error or warning (notes explain it)
    for line in stderr.splitlines():
        inc = _INCLUDED_FROM.match(line)
        if inc:
            chain.append((inc.group("file"), int(inc.group("line"))))
            continue
        m = _DIAG.match(line)
        if not m:
            if not line.startswith(" "):
                chain = []
            continue
        where = [(m.group("file"), int(m.group("line"))), *reversed(chain)]
        chain = []
        answer, block, line_no = None, 0, 0
        for file_name, n in where:
            fm = _ANSWER_FILE.match(file_name)
            if fm:
                answer, block, line_no = int(fm.group(1)), -1 if fm.group(2) == "d" else int(fm.group(2)), n
                break
        if m.group("kind") == "note":
            last = out[last_main] if last_main is not None and answer is not None and block >= 0 else None
            if last is not None and (last.answer is None or (last.answer == answer and last.block < 0)):
                # an error inside a macro's definition (or a declaration made for the answer), reported where the
                # answer expands the macro
                out[-1] = _Diag(answer, block, line_no, last.kind, last.message, last.raw)
            continue
        last_main = len(out)
        out.append(_Diag(answer, block, line_no, m.group("kind"), m.group("msg"), line))
    return out


# ---------------------------------------------------------------------------------------------------------
# the checker
# ---------------------------------------------------------------------------------------------------------


class CompileChecker:
    """CC_CHECK of one decomp checkout; `check` compiles answers in batches and returns their findings."""

    def __init__(self, checkout: Path, flags: CompileFlags, stub_dir: Path, facts: _CheckoutFacts,
                 gcc_version: str) -> None:
        self.checkout = checkout
        self.flags = flags
        self.stub_dir = stub_dir
        self.facts = facts
        self.gcc_version = gcc_version
        self._include_dirs = [Path(a[2:]) for a in flags.args if a.startswith("-I")] + [stub_dir]
        self._baseline: dict[str | None, frozenset[str]] = {}
        self._near: dict[str, str | None] = {}
        self._files_by_dir: dict[str, set[str]] | None = None
        self._context_cache: dict[str, frozenset[str]] = {}
        # near-miss candidates by (first letter, length): a typo rarely changes the first letter
        self._by_shape: dict[tuple[str, int], list[str]] = defaultdict(list)
        for name in facts.names:
            self._by_shape[(name[0].lower(), len(name))].append(name)

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_checkout(cls, checkout: str | Path, *, cache_dir: str | Path | None = None, version: str | None = None,
                      gcc: str | None = None) -> CompileChecker | Unavailable:
        """A checker for the checkout, or Unavailable(reason) when gcc or the checkout is missing."""
        root = Path(checkout).expanduser()
        if not (root / "include").is_dir() or not (root / "src").is_dir():
            return Unavailable(f"{root} is not a zeldaret/oot checkout (no include/ and src/)")
        root = root.resolve()
        flags = read_cc_check(root, version)
        compiler = gcc or flags.gcc
        found = shutil.which(compiler)
        if found is None:
            return Unavailable(f"`{compiler}` (the checkout's CC_CHECK compiler) is not on PATH")
        flags = CompileFlags(found, flags.args, flags.version, flags.notes)
        try:
            gcc_version = subprocess.run([found, "-dumpfullversion"], capture_output=True, text=True, check=True,
                                         timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError) as error:
            return Unavailable(f"`{compiler}` does not run: {error}")
        stub_dir = _cache_root(cache_dir) / _checkout_key(root, flags, gcc_version)
        facts = _load_facts(root, flags, stub_dir)
        if isinstance(facts, Unavailable):
            return facts
        return cls(root, flags, stub_dir, facts, gcc_version)

    @property
    def status(self) -> str:
        notes = f"; {'; '.join(self.flags.notes)}" if self.flags.notes else ""
        return (f"compiler layer on: gcc {self.gcc_version}, CC_CHECK of {self.checkout / 'Makefile'} "
                f"(VERSION {self.flags.version}){notes}")

    # -- public API ------------------------------------------------------------------------------------
    def check(self, answers: Sequence[AnswerCode], *, batch_size: int = 200, ground: bool = True
              ) -> list[list[Finding]]:
        """COMPILE_ERROR findings of each answer (same order); an answer with no C gets [].

        ground=False compiles every answer after the decomp headers only, never in a real file (for measuring)."""
        prepared = [self._prepare(i, a, ground) for i, a in enumerate(answers)]
        results: list[list[Finding]] = [list(p.findings) for p in prepared]
        groups: dict[str | None, list[_Prepared]] = defaultdict(list)
        for p in prepared:
            if p.blocks:
                groups[p.grounded].append(p)
        for context, members in groups.items():
            solo = [p for p in members if p.solo]
            batched = [p for p in members if not p.solo]
            for start in range(0, len(batched), batch_size):
                self._compile_batch(context, batched[start : start + batch_size], results)
            for p in solo:
                self._compile_batch(context, [p], results)
        return [r[:MAX_FINDINGS_PER_ANSWER] for r in results]

    # -- preparing answers -----------------------------------------------------------------------------
    def _prepare(self, index: int, answer: AnswerCode, ground: bool = True) -> _Prepared:
        p = _Prepared(index)
        all_code = "\n".join(b.code for b in answer.blocks)
        bare_all = _blank(all_code)
        for block in answer.blocks:
            if not block.code.strip():
                continue
            code = _ELLIPSIS_LINE.sub("", block.code)
            code = _INCLUDE.sub(functools.partial(self._resolve_include, block=block, code=code, p=p), code)
            p.blocks.append((block, code, _is_top_level(code)))
            if not _balanced(code):
                p.solo = True
        top = _blank("\n".join(code for _, code, top in p.blocks if top))
        outside = _depth0(top)
        defined = {m.group(1) for m in _FUNC_DEF.finditer(top)}
        functions = set(defined)
        defined.update(m.group(1) for m in _GLOBAL_DEF.finditer(outside))
        defined.update(m.group(1) for m in _AGGREGATE_DEF.finditer(_depth0_keep_open(top)))
        defined.update(m.group(1) for m in _TAG_DEF.finditer(top))
        defined.update(m.group(1) for m in _TYPEDEF_END.finditer(outside))
        defined.update(m.group(1) for m in _TYPEDEF_SIMPLE.finditer(outside))
        defined.update(m.group(1) for m in _TYPEDEF_FUNC.finditer(outside))
        defined.update(m.group(1) for m in _PROTOTYPE.finditer(outside))
        for body in _ENUM_BODY.finditer(top):
            defined.update(m.group(1) for m in re.finditer(r"(?:^|,)\s*([A-Za-z_]\w*)", body.group(1)))
        p.defined = sorted(n for n in defined if n not in _C_WORDS)
        p.macros = sorted(set(_MACRO_DEF.findall(bare_all)))
        actor = _ACTOR_STRUCT.search(bare_all)
        p.this_type = actor.group(1) if actor else None
        grounds = Counter(self.facts.function_files[f] for f in functions if f in self.facts.function_files)
        p.grounded = grounds.most_common(1)[0][0] if grounds and ground else None
        if p.grounded is None:
            used = set(_IDENT.findall(bare_all)) - defined
            p.extra_headers = sorted({self.facts.type_headers[t] for t in used if t in self.facts.type_headers})
            p.asset_includes = sorted({self.facts.asset_headers[a] for a in used if a in self.facts.asset_headers})
            if not functions and p.this_type is None and ground:
                # a fragment about one decomp actor is read in that actor's file (its local macros, statics)
                files = {f for h in p.extra_headers for f in self._sources_beside(h)}
                if len(files) == 1:
                    p.grounded, p.extra_headers = files.pop(), []
        self._declare_users_names(p, bare_all, answer.table_ids)
        return p

    def _declare_users_names(self, p: _Prepared, bare: str, table_ids: frozenset[str]) -> None:
        """Declare up front the names the answer uses that neither it nor the decomp declares (its own helpers,
        statics, constants, types), so gcc neither reports nor spell-checks them (a spelling search over the
        decomp's ~20k names costs gcc 0.1-0.25 s per name). Decomp-like names are left for gcc to report."""
        names, context = self.facts.names, self._context_names(p)
        own = set(p.defined) | set(p.macros) | self._asset_names(p)
        text = "\n".join(ln for ln in bare.split("\n") if not ln.lstrip().startswith("#"))
        text = _MEMBER_OR_TAG.sub(" ", text)
        types = set(_TYPE_USE.findall(text)) | set(_TYPE_DECL.findall(text))
        calls: set[str] = set()
        others: set[str] = set()
        ids: set[str] = set()
        for m in _NAME_USE.finditer(text):
            name = m.group(1)
            if name in names or name in context or name in own or name in _C_WORDS or name.startswith("__"):
                continue
            if name in table_ids:
                ids.add(name)
            elif name not in types and not self._is_decomp_like(name):
                (calls if m.group(2) else others).add(name)
        p.opaque_types = tuple(sorted(t for t in types if t not in names and t not in context and t not in own
                                      and not self._is_decomp_like(t)))
        p.declared_calls = tuple(sorted(calls))
        p.declared_objects = tuple(sorted(others - calls))
        p.table_ids = tuple(sorted(ids))

    def _asset_names(self, p: _Prepared) -> set[str]:
        included = set(p.asset_includes)
        return {s for s, h in self.facts.asset_headers.items() if h in included} if included else set()

    def _context_names(self, p: _Prepared) -> frozenset[str]:
        """Identifiers of the files an answer is compiled after: its grounding file and the headers beside it,
        or the actor headers it needs; the answer must not redeclare them."""
        files = [self.checkout / h for h in p.extra_headers]
        if p.grounded is not None:
            source = self.checkout / p.grounded
            files += [source, *source.parent.glob("*.h")]
        key = "\n".join(sorted(map(str, files)))
        if key not in self._context_cache:
            names: set[str] = set()
            for path in files:
                with contextlib.suppress(OSError):
                    names.update(_IDENT.findall(path.read_text(encoding="utf-8", errors="replace")))
            self._context_cache[key] = frozenset(names)
        return self._context_cache[key]

    def _sources_beside(self, header: str) -> set[str]:
        if self._files_by_dir is None:
            self._files_by_dir = defaultdict(set)
            for source in set(self.facts.function_files.values()):
                self._files_by_dir[str(Path(source).parent)].add(source)
        files = self._files_by_dir.get(str(Path(header).parent), set())
        return files if len(files) == 1 else set()

    def _resolve_include(self, m: re.Match, *, block: CodeBlock, code: str, p: _Prepared) -> str:
        path = m.group(2).strip()
        if any((d / path).is_file() for d in self._include_dirs):
            return m.group(0)
        real = self.facts.headers_by_name.get(Path(path).name)
        if real is not None:
            return f'#include "{self.checkout / real}"'
        name = Path(path).name
        if re.fullmatch(r"z_[a-z0-9_]+\.h", name) and not path.startswith(("assets/", "overlays/")):
            return ""  # the answer's own actor header (z_en_my_actor.h): not in the decomp, not checkable
        line = block.first_line + code.count("\n", 0, m.start())
        p.findings.append(Finding(CODE, "error", f"line {line} of {block.where}: `#include {m.group(1)}{path}"
                                  f"{'>' if m.group(1) == '<' else chr(34)}`: no such header in the decomp "
                                  f"checkout", block.where))
        return ""

    # -- one gcc call ----------------------------------------------------------------------------------
    def _context_source(self, context: str | None) -> str:
        if context is None:
            return '#include "ootgen_prelude.h"\n'
        return f'#include "{self.checkout / context}"\n'

    def _unit(self, context: str | None, batch: Sequence[_Prepared]) -> str:
        parts = [self._context_source(context)]
        for p in batch:
            k = p.index
            # the declarations made for the answer are in a file of their own, not at the end of the previous
            # answer's `#line` file (gcc would blame that answer), nor outside every answer (it would split the batch)
            parts.append(f'#line 1 "@{k}.d"\n')
            renamed = sorted({n for n in p.defined if n not in p.macros}
                             | set(p.opaque_types) | set(p.declared_calls) | set(p.declared_objects) | set(p.table_ids))
            saved = sorted(set(renamed) | set(p.macros))
            parts.extend(f'#pragma push_macro("{n}")\n#undef {n}\n' for n in saved)
            parts.extend(f'#include "{self.checkout / h}"\n' for h in p.extra_headers)
            parts.extend(f'#include "{h}"\n' for h in p.asset_includes)
            parts.extend(f"#define {n} __ootgen{k}_{n}\n" for n in renamed)
            parts.extend(f"typedef struct {t} {t};\n" for t in p.opaque_types)
            parts.extend(f"int {n}();\n" for n in p.declared_calls)
            parts.extend(f"extern int {n};\n" for n in p.declared_objects)
            if p.table_ids:
                parts.append(f"enum {{ {', '.join(p.table_ids)} }};\n")
            for b, (block, code, top) in enumerate(p.blocks):
                directive = f'#line {block.first_line} "@{k}.{b}"\n'
                if top:
                    parts.append(directive + code + "\n")
                    continue
                this = ""
                if p.this_type and not _THIS_DECL.search(code):
                    this = f"{p.this_type}* this = ({p.this_type}*)thisx; (void)this; "
                parts.append(f"static void __ootgen{k}_frag{b}(Actor* thisx, PlayState* play) {{ {this}{{\n"
                             f"{directive}{code}\n}}}}\n")
            parts.extend(f'#undef {n}\n#pragma pop_macro("{n}")\n' for n in saved)
        return "".join(parts)

    def _run_gcc(self, source: str) -> str:
        cmd = [self.flags.gcc, *self.flags.args, f"-I{self.stub_dir}", "-fdiagnostics-color=never",
               "-fno-diagnostics-show-caret", "-fmax-errors=0", "-x", "c", "-"]
        proc = subprocess.run(cmd, input=source, capture_output=True, text=True, cwd=self.checkout,
                              env={**os.environ, "LC_ALL": "C"}, timeout=600)
        return proc.stderr

    def _baseline_errors(self, context: str | None) -> frozenset[str]:
        if context not in self._baseline:
            diags = _parse_diagnostics(self._run_gcc(self._context_source(context)))
            self._baseline[context] = frozenset(d.raw for d in diags if d.kind in ("error", "fatal error"))
        return self._baseline[context]

    def _compile_batch(self, context: str | None, batch: Sequence[_Prepared], results: list[list[Finding]]) -> None:
        diags = _parse_diagnostics(self._run_gcc(self._unit(context, batch)))
        errors = [d for d in diags if d.kind in ("error", "fatal error")]
        stray = [d for d in errors if d.answer is None and d.raw not in self._baseline_errors(context)]
        fatal = any(d.kind == "fatal error" for d in errors)
        if (stray or fatal) and len(batch) > 1:
            half = len(batch) // 2
            self._compile_batch(context, batch[:half], results)
            self._compile_batch(context, batch[half:], results)
            return
        by_answer: dict[int, list[_Diag]] = defaultdict(list)
        for d in errors:
            if d.answer is not None:
                by_answer[d.answer].append(d)
        retry = []
        for p in batch:
            own = by_answer.get(p.index, [])
            if len(batch) == 1 and stray:
                first = p.blocks[0][0]
                own = own + [_Diag(p.index, 0, first.first_line, d.kind, f"{d.message} (in {d.raw.split(':')[0]})",
                                   d.raw) for d in stray]
            findings, opaque = self._judge(p, own)
            if opaque and not p.opaque_types:
                p.opaque_types = tuple(sorted(opaque))
                retry.append(p)
                continue
            results[p.index].extend(findings)
        if retry:
            self._compile_batch(context, retry, results)

    # -- which diagnostics are the answer's errors -----------------------------------------------------
    def _judge(self, p: _Prepared, diags: list[_Diag]) -> tuple[list[Finding], set[str]]:
        tolerated = {*p.opaque_types, *p.declared_calls, *p.declared_objects, *p.table_ids}
        opaque: set[str] = set()
        kept: list[_Diag] = []
        for d in diags:
            message = _RENAMED.sub(r"\1", d.message)
            m = _UNDECLARED.match(message) or _IMPLICIT.match(message) or _UNKNOWN_TYPE.match(message)
            if m:
                name = m.group(1)
                if not self._is_decomp_like(name):
                    tolerated.add(name)
                    if m.re is _UNKNOWN_TYPE:
                        opaque.add(name)
                    continue
            kept.append(_Diag(d.answer, d.block, d.line, d.kind, message, d.raw))
        if opaque - set(p.opaque_types):
            return [], opaque  # compile again with the user's own types declared opaque
        findings, seen = [], set()
        for d in kept:
            if _INTERNAL.search(d.message) or tolerated.intersection(_QUOTED.findall(d.message)):
                continue  # a consequence of a tolerated name, or of the wrapper itself
            if _TYPE_CONFUSION.search(d.message) and tolerated.intersection(_IDENT.findall(self._line(p, d))):
                continue  # a type mismatch on a line using the user's own name, whose real type is unknown
            block = p.blocks[d.block][0] if 0 <= d.block < len(p.blocks) else p.blocks[0][0]
            line = d.line if d.block >= 0 else block.first_line  # a declaration made for it: its first line
            text = f"line {line} of {block.where}: {d.message}"
            near = None if "did you mean" in d.message else self._near_miss_hint(d.message)
            if near:
                text += f" (did you mean `{near}`?)"
            if text not in seen:
                seen.add(text)
                findings.append(Finding(CODE, "error", text, block.where))
        return findings, set()

    @staticmethod
    def _line(p: _Prepared, d: _Diag) -> str:
        if not 0 <= d.block < len(p.blocks):
            return ""
        block, code, _ = p.blocks[d.block]
        lines = code.split("\n")
        i = d.line - block.first_line
        return lines[i] if 0 <= i < len(lines) else ""

    def _is_decomp_like(self, name: str) -> bool:
        """An undeclared name the user cannot have meant as their own: a near miss of a decomp name, or a
        new member of a decomp family (`Actor_Foo`, `ACTOR_FLAG_FOO`). A decomp name itself (declared under
        another VERSION, or in a header this context lacks) and the decomp's address-named placeholders
        (`D_80121212`, `func_801C70FC`: file-local, unknowable) are not."""
        if name in self.facts.names or _ADDRESS_NAME.search(name) or _FILE_LOCAL_NAME.match(name):
            return False
        family = _family(name)
        return (family is not None and family in self.facts.families) or self._near_miss(name) is not None

    def _near_miss_hint(self, message: str) -> str | None:
        m = _UNDECLARED.match(message) or _IMPLICIT.match(message) or _UNKNOWN_TYPE.match(message)
        return self._near_miss(m.group(1)) if m else None

    def _near_miss(self, name: str) -> str | None:
        if name in self._near:
            return self._near[name]
        first = name[0].lower()
        pool = [n for k in range(len(name) - 2, len(name) + 3) for n in self._by_shape.get((first, k), ())]
        match = difflib.get_close_matches(name, pool, n=1, cutoff=0.88) if len(name) >= 5 else []
        self._near[name] = match[0] if match else None
        return self._near[name]


_C_WORDS = frozenset(("auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
                      "enum", "extern", "float", "for", "goto", "if", "int", "long", "register", "return",
                      "short", "signed", "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned",
                      "void", "volatile", "while"))


# ---------------------------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------------------------


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ootgen" / "compile"


def _checkout_key(root: Path, flags: CompileFlags, gcc_version: str) -> str:
    h = hashlib.sha256(f"{_STUB_VERSION}\n{root}\n{gcc_version}\n{' '.join(flags.args)}".encode())
    for folder in (root / "assets" / "xml", root / "include", root / "src"):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                st = path.stat()
                h.update(f"{path}:{st.st_mtime_ns}:{st.st_size}\n".encode())
    return h.hexdigest()[:16]


def _load_facts(root: Path, flags: CompileFlags, stub_dir: Path) -> _CheckoutFacts | Unavailable:
    facts_file = stub_dir / "facts.json"
    if facts_file.is_file():
        data = json.loads(facts_file.read_text(encoding="utf-8"))
        return _CheckoutFacts(frozenset(data["names"]), frozenset(data["families"]), data["function_files"],
                              data["type_headers"], data["headers_by_name"], data["asset_headers"])
    stub_dir.mkdir(parents=True, exist_ok=True)
    include = root / "include"
    headers = sorted(p.name for p in include.glob("*.h"))
    (stub_dir / "ootgen_prelude.h").write_text("".join(f'#include "{h}"\n' for h in headers), encoding="utf-8")
    names = _prelude_names(flags, stub_dir, root)
    if isinstance(names, Unavailable):
        return names
    assets = write_asset_headers(root, stub_dir, names)
    _stub_missing_includes(flags, stub_dir, root)
    extra = _compatible_subfolder_headers(flags, stub_dir, root)
    (stub_dir / "ootgen_prelude.h").write_text("".join(f'#include "{h}"\n' for h in headers + extra), encoding="utf-8")
    names = _prelude_names(flags, stub_dir, root)
    if isinstance(names, Unavailable):
        return names
    counts = Counter(prefix for name in names for prefix in _prefixes(name))
    functions, types, headers_by_name = _scan_sources(root)
    facts = _CheckoutFacts(names, frozenset(f for f, n in counts.items() if n >= 3), functions, types, headers_by_name,
                           assets)
    facts_file.write_text(json.dumps({"names": sorted(facts.names), "families": sorted(facts.families),
                                      "function_files": functions, "type_headers": types,
                                      "headers_by_name": headers_by_name, "asset_headers": assets}), encoding="utf-8")
    return facts


def _gcc(flags: CompileFlags, stub_dir: Path, root: Path, extra: Iterable[str], source: str) -> subprocess.CompletedProcess:
    cmd = [flags.gcc, *flags.args, f"-I{stub_dir}", "-fdiagnostics-color=never", *extra, "-x", "c", "-"]
    return subprocess.run(cmd, input=source, capture_output=True, text=True, cwd=root,
                          env={**os.environ, "LC_ALL": "C"}, timeout=600)


def _prelude_names(flags: CompileFlags, stub_dir: Path, root: Path) -> frozenset[str] | Unavailable:
    """Identifiers of every top-level decomp header after preprocessing, plus every macro they define."""
    for _ in range(50):
        proc = _gcc(flags, stub_dir, root, ["-E", "-dD"], '#include "ootgen_prelude.h"\n')
        missing = re.search(r"fatal error: ([^:\n]+): No such file or directory", proc.stderr)
        if not missing:
            break
        _write_stub(stub_dir, missing.group(1))
    else:
        return Unavailable("the checkout's headers do not preprocess (too many missing generated headers)")
    if proc.returncode != 0 and not proc.stdout:
        first = proc.stderr.strip().splitlines()[:1]
        return Unavailable(f"the checkout's headers do not preprocess: {first[0] if first else 'gcc failed'}")
    return frozenset(n for n in _IDENT.findall(proc.stdout) if not n.startswith("__"))


def _compatible_subfolder_headers(flags: CompileFlags, stub_dir: Path, root: Path) -> list[str]:
    """Headers one folder down include/ that the checkout's overlays include (libc64/qrand.h, ...) and that compile
    after the top-level ones: the prelude of a free answer declares them too."""
    include = root / "include"
    used: set[str] = set()
    for path in (root / "src" / "overlays").rglob("*.c"):
        used.update(m.group(2) for m in _INCLUDE.finditer(path.read_text(encoding="utf-8", errors="replace"))
                    if "/" in m.group(2))
    folders: dict[str, list[str]] = defaultdict(list)
    for path in sorted(include.glob("*/*.h")):
        rel = str(path.relative_to(include))
        if rel in used:
            folders[path.parent.name].append(rel)

    def compiles(candidates: list[str]) -> bool:
        source = '#include "ootgen_prelude.h"\n' + "".join(f'#include "{h}"\n' for h in candidates)
        return _gcc(flags, stub_dir, root, ["-fsyntax-only"], source).returncode == 0

    kept: list[str] = []
    for folder in folders.values():
        if compiles(kept + folder):
            kept += folder
        else:
            kept += [h for h in folder if compiles([*kept, h])]
    return kept


def _write_stub(stub_dir: Path, include: str) -> None:
    path = stub_dir / include
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("/* empty stand-in for a header generated from the ROM (ootgen) */\n", encoding="utf-8")


def _stub_missing_includes(flags: CompileFlags, stub_dir: Path, root: Path) -> None:
    """Empty stand-ins for generated files the checkout's sources include and no XML describes (texture
    `.inc.c`, message tables): any quoted include under assets/ or of a generated name that no include folder has."""
    include_dirs = [Path(a[2:]) for a in flags.args if a.startswith("-I")] + [stub_dir]
    wanted: set[str] = set()
    for path in (root / "src").rglob("*.[ch]"):
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in _INCLUDE.finditer(text):
            inc = m.group(2)
            if (path.parent / inc).exists() or any((d / inc).exists() for d in include_dirs):
                continue
            if inc.startswith("assets/") or inc.endswith(".inc.c") or inc.startswith(("text/", "build/")):
                wanted.add(inc)
    for inc in sorted(wanted):
        _write_stub(stub_dir, inc)


# ---------------------------------------------------------------------------------------------------------
# from examples
# ---------------------------------------------------------------------------------------------------------


def answer_code(example: Example, checks) -> AnswerCode:
    """The C fences of an example's answer (every assistant turn), without quoted counterexamples.

    `checks`: the CheckPolicy or the checks.yaml mapping (fence tags, counterexample words)."""
    from .static import answer_code_blocks, answer_texts, compile_policy

    policy = compile_policy(checks)
    blocks = answer_code_blocks(example, policy)
    return AnswerCode(tuple(CodeBlock(b.code, b.start_line, b.where.rsplit(" fence ", 1)[0])
                            for b in blocks if b.lang == "c" and not b.counterexample and b.code.strip()),
                      policy.table_names("\n".join(text for _, text in answer_texts(example))))


def checkout_from_config(compiler: CompilerSettings, grounding: GroundingSettings) -> str | None:
    """The checkout the compiler layer uses: `compiler.checkout`, else the grounding checkout of a grounded run
    (`grounding.decomp_dir` set and `grounding.enabled` not false, as configs/default.yaml documents)."""
    return compiler.checkout or (grounding.decomp_dir if grounding.enabled is not False else None)


def open_compiler(checkout: str | Path | None, *, version: str | None = None,
                  cache_dir: str | Path | None = None) -> CompileChecker | Unavailable:
    """The compiler layer for a checkout, or Unavailable saying why it is off (also when none is configured)."""
    if not checkout:
        return Unavailable("no decomp checkout configured (`ootgen check --decomp DIR`, or `compiler.checkout` "
                           "in the run config)")
    return CompileChecker.from_checkout(checkout, version=version, cache_dir=cache_dir)


def compile_findings(compiler: CompileChecker | Unavailable | None, examples: Sequence[Example],
                     checks) -> list[list[Finding]]:
    """COMPILE_ERROR findings of each example, at the severity checks.yaml gives the code; none when the layer
    is off."""
    if not isinstance(compiler, CompileChecker):
        return [[] for _ in examples]
    results = compiler.check([answer_code(example, checks) for example in examples])
    from .static import compile_policy

    severity = compile_policy(checks).severity.get(CODE, "error")
    if severity == "error":
        return results
    return [[dataclasses.replace(f, severity=severity) for f in found] for found in results]
