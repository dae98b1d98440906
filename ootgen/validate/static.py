"""Layer 1 static checks of the validate stage: C syntax, known functions and arities, naming era, struct fields,
RAM addresses, MIPS assembly and Markdown shape of one example, against the decomp SymbolIndex.

The policy (severities, allowlists, ranges, mnemonics) is data in configs/checks.yaml; this module is mechanism.
"""

from __future__ import annotations

import difflib
import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..records import Example, Finding
from ..symbols import SymbolIndex, base_type_name

# ---------------------------------------------------------------------------------------------------------
# tree-sitter, created once per process
# ---------------------------------------------------------------------------------------------------------

_TS: dict = {}

_QUERY = """
(call_expression) @call
(field_expression) @field
(function_declarator declarator: (identifier) @fname)
(declaration) @decl
(parameter_declaration) @param
(field_declaration_list) @fields
(preproc_function_def name: (identifier) @macro)
(preproc_def name: (identifier) @macro)
(enumerator name: (identifier) @enumc)
"""


def _ts():
    if not _TS:
        import tree_sitter
        import tree_sitter_c

        language = tree_sitter.Language(tree_sitter_c.language())
        _TS["parser"] = tree_sitter.Parser(language)
        query = tree_sitter.Query(language, _QUERY)
        _TS["cursor"] = lambda: tree_sitter.QueryCursor(query)
    return _TS


# ---------------------------------------------------------------------------------------------------------
# policy compiled from checks.yaml (cached per checks dict)
# ---------------------------------------------------------------------------------------------------------

_SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
_WORD = re.compile(r"[A-Za-z_]\w*")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def _is_counterexample(before: str, policy) -> bool:
    """A fence is a quoted bad example when the sentence introducing it says so, unless it announces a fix."""
    sentences = [s for s in _SENTENCE_END.split(before.strip()) if s.strip()]
    last = sentences[-1] if sentences else ""
    return bool(policy.counterexample.search(last)) and not policy.fix_words.search(last)


class _Words:
    """Case-insensitive search for any of a list of words or phrases. The text is casefolded and matched against
    a case-sensitive prefix trie: an IGNORECASE alternation (with a lookbehind first) is ~10x slower in `re`."""

    __slots__ = ("_rx",)

    def __init__(self, words: Iterable[str], *, whole_words: bool = False) -> None:
        words = sorted({w.casefold() for w in words})
        if not words:
            self._rx = re.compile(r"(?!x)x")
        else:
            body = _trie_regex(words)
            self._rx = re.compile(rf"(?<!\w)(?:{body})(?!\w)" if whole_words else body)

    def search(self, text: str):
        return self._rx.search(text.casefold())


def _words_regex(words: Iterable[str], *, whole_words: bool = False) -> _Words:
    return _Words(words, whole_words=whole_words)


@dataclass
class _Policy:
    severity: dict
    known_calls: frozenset
    macro_prefixes: tuple
    min_chars: dict
    input_check: bool
    input_max: str
    input_skip: frozenset
    counterexample: _Words
    fix_words: _Words
    c_tags: frozenset
    asm_tags: frozenset
    other_tags: frozenset
    ranges: list
    hardware: list
    vram_words: _Words
    mnemonics: frozenset
    registers: frozenset
    directives: frozenset
    branches: frozenset
    modify_words: _Words
    delay_words: _Words
    era_old: frozenset
    era_new: frozenset
    era_map: dict
    history_words: _Words
    var_types: dict
    member_types: dict
    call_types: dict


_POLICIES: dict[int, tuple[dict, _Policy]] = {}


def _policy(checks: dict) -> _Policy:
    cached = _POLICIES.get(id(checks))
    if cached is not None and cached[0] is checks:
        return cached[1]
    allow = checks.get("allow", {})
    fences = checks.get("fences", {})
    ram = checks.get("ram", {})
    asm = checks.get("asm", {})
    naming = checks.get("naming", {})
    inp = checks.get("input", {})
    era_old, era_new, era_map = set(), set(), {}
    for pair in naming.get("era_pairs", []):
        era_old.update(pair["old"])
        era_new.update(pair["new"])
        era_map.update(zip(pair["old"], pair["new"]))
    policy = _Policy(
        severity={code: spec["severity"] for code, spec in checks.get("findings", {}).items()},
        known_calls=frozenset(allow.get("libultra", []) + allow.get("libc", []) + allow.get("macros", [])),
        macro_prefixes=tuple(allow.get("macro_prefixes", [])),
        min_chars=dict(checks.get("min_output_chars", {"default": 0})),
        input_check=inp.get("check", True),
        input_max=inp.get("max_severity", "warning"),
        input_skip=frozenset(inp.get("skip_types", [])),
        counterexample=_words_regex(checks.get("counterexample_words", []), whole_words=True),
        fix_words=_words_regex(checks.get("fix_words", []), whole_words=True),
        c_tags=frozenset(t.lower() for t in fences.get("c", ["c"])),
        asm_tags=frozenset(t.lower() for t in fences.get("asm", ["asm"])),
        other_tags=frozenset(t.lower() for t in fences.get("other", [])),
        ranges=[(r["start"], r["end"], r.get("name", "")) for r in ram.get("ranges", [])],
        hardware=[(r["start"], r["end"], r.get("name", "")) for r in ram.get("hardware_ranges", [])],
        vram_words=_words_regex(ram.get("vram_context_words", [])),
        mnemonics=frozenset(str(m).lower() for m in asm.get("mnemonics", [])),
        registers=frozenset(str(r).lower() for r in asm.get("registers", [])),
        directives=frozenset(str(d).lower() for d in asm.get("directives", [])),
        branches=frozenset(asm.get("branch_mnemonics", ["j", "jal", "jr", "jalr"])),
        modify_words=_words_regex(asm.get("modify_words", [])),
        delay_words=_words_regex(asm.get("delay_slot_words", ["delay slot"])),
        era_old=frozenset(era_old),
        era_new=frozenset(era_new),
        era_map=era_map,
        history_words=_words_regex(naming.get("history_words", [])),
        var_types=dict(checks.get("types", {}).get("variables", {})),
        member_types=dict(checks.get("types", {}).get("members", {})),
        call_types=dict(checks.get("types", {}).get("calls", {})),
    )
    _POLICIES[id(checks)] = (checks, policy)
    return policy


_INDEX_CACHE: dict[int, tuple[SymbolIndex, dict]] = {}


def _trie_regex(words: Iterable[str]) -> str:
    """A regex alternation factored by common prefixes, so matching many literals stays linear."""
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True

    def build(node: dict) -> str:
        end = "" in node
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if end else body

    return build(trie) if trie else r"(?!x)x"


def _index_tables(index: SymbolIndex) -> dict:
    """Per-index compiled rename matchers."""
    cached = _INDEX_CACHE.get(id(index))
    if cached is not None and cached[0] is index:
        return cached[1]
    substring = index.renames("substring")
    paths = []
    for old_path, new_path in index.renames("path").items():
        rx = re.compile(r"#\s*include\s*[<\"]" + re.escape(old_path)) if old_path.endswith(".h") else None
        paths.append((old_path, new_path, rx))
    # only these entries can report (each holds its gate as a substring): skip the loop when no gate is in the code
    live_paths = [(o, n, rx) for o, n, rx in paths if rx is not None or o.split(".")[0] in ("actor", "skelAnime", "actorCtx")]
    path_gates = {".h" if rx is not None else o.split(".")[0] for o, _, rx in live_paths}
    tables = {
        "live_paths": live_paths,
        "path_gates": tuple(sorted(path_gates)),
        "substring": re.compile(_trie_regex(substring)),
        "substring_items": list(substring.items()),
        "path": {k: v for k, v in index.renames("path").items()},
        "paths": paths,
        "word_keys": frozenset(index.renames("word")),
        "field_hints": {},  # (struct, member) -> difflib hint of UNKNOWN_FIELD
        "suffix": re.compile(r"\b\w+(?:" + "|".join(re.escape(k) for k in index.renames("suffix")) + r")\b"
                             if index.renames("suffix") else r"(?!x)x"),
    }
    _INDEX_CACHE[id(index)] = (index, tables)
    return tables


_NAMING_WORDS: dict[tuple[int, int], tuple[_Policy, dict, frozenset]] = {}
_SENTENCE = re.compile(r"(?<=[.!?:])\s+|\n")


def _relevant_sentences(prose: str, relevant) -> list[str]:
    """The pieces of `_SENTENCE.split(prose)` on the lines holding one of the `relevant` words (as substrings).

    A piece never spans a newline, so the other lines' pieces cannot hold such a word; a line's pieces are those
    of `_SENTENCE.split(line)`, except that the whitespace opening the line belongs to the separator when the
    text before it (past any whitespace) ends a sentence."""
    starts = set()
    find = prose.find
    for w in relevant:
        i = find(w)
        while i >= 0:
            starts.add(prose.rfind("\n", 0, i) + 1)
            nl = find("\n", i)
            if nl < 0:
                break
            i = find(w, nl + 1)
    out: list[str] = []
    for start in sorted(starts):
        end = find("\n", start)
        line = prose[start:] if end < 0 else prose[start:end]
        pieces = _SENTENCE.split(line)
        if line[:1].isspace():
            before = prose[:start].rstrip()
            if before and before[-1] in ".!?:":
                pieces[0] = pieces[0].lstrip()
        out.extend(pieces)
    return out


def _naming_words(policy: _Policy, tables: dict) -> frozenset:
    """Words whose presence in the prose can change a naming finding: old and current era names, renamed words."""
    key = (id(policy), id(tables))
    cached = _NAMING_WORDS.get(key)
    if cached is not None and cached[0] is policy and cached[1] is tables:
        return cached[2]
    words = frozenset(policy.era_old | policy.era_new | tables["word_keys"])
    _NAMING_WORDS[key] = (policy, tables, words)
    return words


# ---------------------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^\s`{]*)")


@dataclass
class _Block:
    lang: str  # "c", "asm" or "other"
    tag: str
    code: str
    start_line: int  # 1-based line of the first code line within its text
    where: str
    before: str  # prose just before the fence
    counterexample: bool = False
    cap: str | None = None  # maximum severity of findings from this block (user-supplied code)


def _split_fences(text: str) -> tuple[list[tuple[str, str, int, str]], str, int | None]:
    """(fences as (tag, code, first line, prose before), prose outside fences, line of an unclosed fence)."""
    if "```" not in text and "~~~" not in text:
        return [], text, None  # no line can open a fence
    fences, prose, body = [], [], []
    open_mark, tag, start, before = None, "", 0, ""
    fence_match = _FENCE.match
    for n, line in enumerate(text.split("\n"), 1):
        m = fence_match(line) if ("```" in line or "~~~" in line) else None
        if open_mark is None:
            if m:
                open_mark, tag, start, body = m.group(1), m.group(2).lower(), n, []
                before = next((p for p in reversed(prose) if p.strip()), "")  # the line introducing the fence
            else:
                prose.append(line)
        elif m and m.group(1)[0] == open_mark[0] and len(m.group(1)) >= len(open_mark) and not m.group(2):
            fences.append((tag, "\n".join(body), start + 1, before))
            open_mark = None
        else:
            body.append(line)
    unclosed = None
    if open_mark is not None:
        unclosed = start
        fences.append((tag, "\n".join(body), start + 1, before))
    return fences, "\n".join(prose), unclosed


_ASM_LOOK = re.compile(r"^\s*(?:[\w.]+:\s*)?[a-z][a-z0-9.]*\s+\$?(?:zero|at|v[01]|a[0-3]|t\d|s\d|sp|ra|fp|gp|f\d{1,2})\b", re.M)
_C_LOOK = re.compile(r";\s*(?://.*)?$|^\s*#\s*(?:include|define|if)|^\s*(?:typedef|struct|void|s8|u8|s16|u16|s32|u32|f32|static)\b"
                     r"|->|\)\s*\{\s*$", re.M)


def _classify(tag: str, code: str, policy: _Policy) -> str:
    if tag in policy.c_tags:
        return "c"
    if tag in policy.asm_tags:
        return "asm"
    if tag:
        return "other"
    if len(_ASM_LOOK.findall(code)) >= 2 or (_ASM_LOOK.search(code) and ";" not in code):
        return "asm"
    return "c" if _C_LOOK.search(code) else "other"


# ---------------------------------------------------------------------------------------------------------
# C
# ---------------------------------------------------------------------------------------------------------

_ELLIPSIS = re.compile(rb"(^|[{;}:])[ \t]*\.\.\.[ \t]*(?=$|[;}\n])", re.M)
_TEXT_DECL = re.compile(r"\b[A-Za-z_]\w*\s*\**\s+\**([A-Za-z_]\w*)\s*(?:\[[^\]\n]*\])?\s*;")


def _first_error(node):
    """The first ERROR or MISSING node, depth first, only descending into subtrees that hold one."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n.is_error or n.is_missing:
            return n
        if n.has_error:
            stack.extend(reversed(n.children))
    return None


# A function definition's header at the start of a line: `void EnFoo_Init(Actor* thisx, PlayState* play) {`
# (the parameter list may span lines). Code holding one cannot parse better inside a function body, because C
# has no nested functions: the wrapped retry is skipped for it.
_FUNC_HEADER = re.compile(rb"^[ \t]*(?:[A-Za-z_]\w*[ \t]*\**[ \t]+\**)+([A-Za-z_]\w*)[ \t]*\([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*\)"
                          rb"\s*\{", re.M)
_NOT_FUNCTIONS = frozenset((b"if", b"for", b"while", b"switch", b"return", b"sizeof", b"else", b"do", b"case", b"goto"))
_WRAP_HEAD = b"void __fragment(void) {\n"


def _has_function_header(src: bytes) -> bool:
    if b"{" not in src:
        return False
    for m in _FUNC_HEADER.finditer(src):
        words = re.findall(rb"\w+", m.group(0)[: m.start(1) - m.start(0)])
        if m.group(1) not in _NOT_FUNCTIONS and not _NOT_FUNCTIONS.intersection(words):
            return True
    return False


def _parse_c(code: str):
    """(tree, source bytes, line offset, error line or None). The strategy is chosen up front from cheap textual
    cues, so a snippet is parsed once in the common case: `...` placeholders are removed before the first parse,
    and only code without a function header is retried wrapped in a function body. Code that still fails is
    checked chunk by chunk (blank-line separated) before calling it a syntax error."""
    parser = _ts()["parser"]
    src = code.encode("utf-8", "replace")
    cleaned = _ELLIPSIS.sub(rb"\1", src) if b"..." in src else src
    header = _has_function_header(cleaned)
    tree = parser.parse(cleaned)
    if not tree.root_node.has_error:
        return tree, cleaned, 0, None
    if cleaned is not src and cleaned != src:
        t = parser.parse(src)  # a `...` that C accepts, e.g. a variadic parameter on its own line
        if not t.root_node.has_error:
            return t, src, 0, None
        tree = t
    if not header:
        wrapped = _WRAP_HEAD + cleaned + b"\n}\n"
        t = parser.parse(wrapped)
        if not t.root_node.has_error:
            return t, wrapped, 1, None
    # mixed fragments: blank-line separated chunks must each parse, as is or wrapped in a function
    chunks = re.split(rb"\n[ \t]*\n", cleaned)
    if len(chunks) > 1:
        bad_line, line = None, 1
        for chunk in chunks:
            chunk_tree = parser.parse(chunk) if chunk.strip() else None
            if chunk_tree is not None and chunk_tree.root_node.has_error and (
                    _has_function_header(chunk)
                    or parser.parse(_WRAP_HEAD + chunk + b"\n}\n").root_node.has_error):
                err = _first_error(chunk_tree.root_node)
                bad_line = line + (err.start_point[0] if err is not None else 0)
                break
            line += chunk.count(b"\n") + 2
        if bad_line is None:
            return tree, src, 0, None  # every chunk parses: the original tree is good enough for the checks
        return tree, src, 0, bad_line
    err = _first_error(tree.root_node)
    return tree, src, 0, (err.start_point[0] + 1 if err is not None else 1)


def _decl_name(node):
    """(name, pointer depth, is function) of a declarator chain."""
    depth, is_func = 0, False
    while node is not None:
        t = node.type
        if t in ("identifier", "field_identifier", "type_identifier"):
            return node.text.decode("utf-8", "replace"), depth, is_func
        if t == "pointer_declarator":
            depth += 1
        elif t == "function_declarator":
            is_func = True
        if t == "parenthesized_declarator":
            node = node.named_children[0] if node.named_children else None
        else:
            node = node.child_by_field_name("declarator")
    return None, depth, is_func


@dataclass
class _CFacts:
    """What one example's C code defines and uses, gathered over all its blocks before checking."""

    functions: dict = field(default_factory=dict)  # name -> set of (arity, variadic) from local decls
    names: set = field(default_factory=set)  # every declared variable/macro/enum name
    var_types: dict = field(default_factory=dict)  # variable -> struct name (None when ambiguous)
    structs: dict = field(default_factory=dict)  # locally defined struct -> set of field names
    prefixes: set = field(default_factory=set)  # "EnMyNpc" of locally defined EnMyNpc_* functions / types
    user_calls: set = field(default_factory=set)  # functions the user's own code (input, user turns) calls


@dataclass
class _Parsed:
    block: _Block
    tree: object
    src: bytes
    offset: int
    error_line: int | None
    caps: dict
    calls: list = ()  # (name, argument count) of calls to a plain identifier
    fields: list = ()  # (argument node, member name) of field expressions


def _gather(caps: dict) -> tuple:
    """What one block contributes to _CFacts, independent of other blocks: (functions, prefixes, names,
    typed declarations in order, structs); _merge adds it to the facts of an example."""
    facts = _BlockFacts()
    for n in caps.get("fname", ()):
        fdecl = n.parent
        name = n.text.decode()
        params = fdecl.child_by_field_name("parameters")
        arity, variadic = 0, False
        if params is not None:
            for p in params.named_children:
                if p.type == "variadic_parameter":
                    variadic = True
                elif p.type == "parameter_declaration":
                    if p.child_by_field_name("declarator") is None and p.text.strip() == b"void":
                        continue
                    arity += 1
        if name != "__fragment":
            facts.functions.append((name, (arity, variadic)))
            if "_" in name:
                facts.prefixes.add(name.split("_", 1)[0])
    for n in caps.get("macro", ()):
        facts.names.add(n.text.decode())
    for n in caps.get("enumc", ()):
        facts.names.add(n.text.decode())
    for node in list(caps.get("decl", ())) + list(caps.get("param", ())):
        tnode = node.child_by_field_name("type")
        if tnode is None:
            continue
        type_name = base_type_name(tnode.text.decode("utf-8", "replace"))
        decls = node.children_by_field_name("declarator")
        for d in decls:
            target = d.child_by_field_name("declarator") if d.type == "init_declarator" else d
            name, depth, is_func = _decl_name(target)
            if name is None or (is_func and d.type != "init_declarator" and depth == 0):
                continue
            facts.names.add(name)
            facts.typed.append((name, type_name))
    for body in caps.get("fields", ()):
        owner = body.parent
        name_node = owner.child_by_field_name("name") if owner is not None else None
        typedef = owner.parent if owner is not None else None
        names = []
        if typedef is not None and typedef.type == "type_definition":
            names = [d.text.decode() for d in typedef.children_by_field_name("declarator") if d.type == "type_identifier"]
        if name_node is not None:
            names.append(name_node.text.decode())
        fields = set()
        for f in body.named_children:
            for d in f.children_by_field_name("declarator"):
                fname, _, _ = _decl_name(d)
                if fname:
                    fields.add(fname)
            ftype = f.child_by_field_name("type")
            if ftype is not None and ftype.type in ("struct_specifier", "union_specifier") and not f.children_by_field_name("declarator"):
                inner = ftype.child_by_field_name("body")
                for g in (inner.named_children if inner is not None else ()):
                    for d in g.children_by_field_name("declarator"):
                        fname, _, _ = _decl_name(d)
                        if fname:
                            fields.add(fname)
        for n in names:
            facts.structs.append((n, frozenset(fields)))
            facts.prefixes.add(n)
    calls = []
    for call in caps.get("call", ()):
        fn = call.child_by_field_name("function")
        if fn is None or fn.type != "identifier":
            continue  # calls through pointers: this->actionFunc(this, play), (*f)(x)
        args = call.child_by_field_name("arguments")
        nargs = sum(1 for a in args.named_children if a.type != "comment") if args is not None else 0
        calls.append((fn.text.decode(), nargs))
    fields = []
    for node in caps.get("field", ()):
        arg = node.child_by_field_name("argument")
        fld = node.child_by_field_name("field")
        if arg is not None and fld is not None:
            fields.append((arg, fld.text.decode()))
    return facts, calls, fields


@dataclass
class _BlockFacts:
    functions: list = field(default_factory=list)  # (name, (arity, variadic)) in order
    prefixes: set = field(default_factory=set)
    names: set = field(default_factory=set)
    typed: list = field(default_factory=list)  # (variable, struct name) in declaration order
    structs: list = field(default_factory=list)  # (struct name, frozenset of fields)


def _merge(block: _BlockFacts, facts: _CFacts) -> None:
    for name, sig in block.functions:
        facts.functions.setdefault(name, set()).add(sig)
    facts.prefixes |= block.prefixes
    facts.names |= block.names
    var_types = facts.var_types
    for name, type_name in block.typed:
        if name in var_types and var_types[name] != type_name:
            var_types[name] = None
        else:
            var_types[name] = type_name
    for name, fields in block.structs:
        facts.structs.setdefault(name, set()).update(fields)


_PARSE_CACHE: OrderedDict[str, tuple] = OrderedDict()
_PARSE_CACHE_SIZE = 512


def _parse_block(code: str) -> tuple:
    """(tree, src, offset, error line, captures, block facts, calls, fields) of one C block, memoised by code
    in a bounded LRU: generated examples often repeat their input code or snippets."""
    hit = _PARSE_CACHE.get(code)
    if hit is not None:
        _PARSE_CACHE.move_to_end(code)
        return hit
    tree, src, offset, error_line = _parse_c(code)
    caps = _ts()["cursor"]().captures(tree.root_node)
    result = (tree, src, offset, error_line, caps) + _gather(caps)
    if _PARSE_CACHE_SIZE > 0:
        _PARSE_CACHE[code] = result
        if len(_PARSE_CACHE) > _PARSE_CACHE_SIZE:
            _PARSE_CACHE.popitem(last=False)
    return result


class _Checker:
    def __init__(self, example: Example, index: SymbolIndex, checks: dict, example_type: dict | None) -> None:
        self.example = example
        self.index = index
        self.checks = checks
        self.policy = _policy(checks)
        self.example_type = example_type or {}
        self.type_name = self.example_type.get("name") or example.type or ""
        self.findings: list[Finding] = []
        self._seen: set = set()

    # -- findings -----------------------------------------------------------------------------------------
    def add(self, code: str, message: str, where: str = "", cap: str | None = None) -> None:
        severity = self.policy.severity.get(code, "warning")
        if cap is not None and _SEVERITY_RANK[severity] > _SEVERITY_RANK[cap]:
            severity = cap
        key = (code, message)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(Finding(code, severity, message, where))

    # -- driver -------------------------------------------------------------------------------------------
    def run(self) -> list[Finding]:
        ex, policy = self.example, self.policy
        if ex.turns:
            answers = [(f"turn {i + 1}", t.content) for i, t in enumerate(ex.turns) if t.role == "assistant"]
            users = [(f"turn {i + 1}", t.content) for i, t in enumerate(ex.turns) if t.role != "assistant"]
        else:
            answers = [("output", ex.output)]
            users = []
        blocks: list[_Block] = []
        prose_parts: list[str] = []
        has_code = False
        min_chars = policy.min_chars.get(self.type_name, policy.min_chars.get("default", 0))
        for where, text in answers:
            if not text.strip():
                self.add("EMPTY_OUTPUT", f"{where} is empty", where)
                continue
            fences, prose, unclosed = _split_fences(text)
            if unclosed is not None:
                self.add("UNCLOSED_FENCE", f"code fence opened at line {unclosed} of {where} is never closed", where)
            prose_parts.append(prose)
            for i, (tag, code, start, before) in enumerate(fences, 1):
                has_code = True
                lang = _classify(tag, code, policy)
                blocks.append(_Block(lang, tag, code, start, f"{where} fence {i}", before,
                                     counterexample=_is_counterexample(before, policy)))
        if not answers:
            self.add("EMPTY_OUTPUT", "no assistant turn", "output")
        # a dialogue may have short turns; its length is that of all assistant turns together
        total = sum(len(t.strip()) for _, t in answers)
        if 0 < total < min_chars:
            self.add("TOO_SHORT", f"the output has {total} characters, fewer than {min_chars}", "output")
        if self.example_type.get("requires_code_in_output") and not has_code and any(t.strip() for _, t in answers):
            self.add("MISSING_CODE", "this type requires code in the output and there is no code fence", "output")
        if self.example_type.get("carries_input") and not ex.turns and not ex.input.strip():
            self.add("MISSING_INPUT", "this type carries an input and the input is empty", "input")

        user_blocks = self._user_blocks([("input", ex.input)] + users)
        self.prose = "\n".join(prose_parts)
        self.all_text = "\n".join(t for _, t in answers)
        self._check_c(blocks, user_blocks)
        self._check_asm(blocks, user_blocks)
        self._check_naming(blocks)
        self._check_ram(self.all_text)
        return self.findings

    def _user_blocks(self, texts: list[tuple[str, str]]) -> list[_Block]:
        policy = self.policy
        check = policy.input_check and self.type_name not in policy.input_skip
        cap = policy.input_max if check else "skip"
        out = []
        for where, text in texts:
            if not text.strip():
                continue
            fences, _, _ = _split_fences(text)
            if fences:
                for i, (tag, code, start, before) in enumerate(fences, 1):
                    out.append(_Block(_classify(tag, code, policy), tag, code, start, f"{where} fence {i}", before, cap=cap))
            elif where == "input":
                kind = self.example_type.get("input_kind")
                lang = {"c_code": "c", "mips_asm": "asm"}.get(kind) or _classify("", text, policy)
                if lang == "c" and _classify("", text, policy) == "asm":
                    lang = "asm"  # the user pasted assembly where the type expects C: check it as assembly
                out.append(_Block(lang, "", text, 1, "input", "", cap=cap))
        return out

    # -- C ------------------------------------------------------------------------------------------------
    def _check_c(self, blocks: list[_Block], user_blocks: list[_Block]) -> None:
        c_blocks = [b for b in blocks + user_blocks if b.lang == "c" and b.code.strip()]
        if not c_blocks:
            return
        parsed: list[_Parsed] = []
        facts = _CFacts()
        for block in c_blocks:
            tree, src, offset, error_line, caps, block_facts, calls, fields = _parse_block(block.code)
            parsed.append(_Parsed(block, tree, src, offset, error_line, caps, calls, fields))
            _merge(block_facts, facts)
        for p in parsed:
            if p.block.cap is not None:
                facts.user_calls.update(name for name, _ in p.calls)
        self.facts = facts
        self._text_decls: set | None = None
        for p in parsed:
            b = p.block
            if b.cap == "skip":
                continue
            if p.error_line is not None:
                line = b.start_line + p.error_line - 1
                snippet = b.code.split("\n")[min(p.error_line - 1, b.code.count("\n"))].strip()[:60]
                self.add("C_SYNTAX", f"C does not parse near line {line} of {b.where}: `{snippet}`", b.where, b.cap)
                continue
            if b.counterexample:
                continue
            self._check_calls(p)
            self._check_fields(p)

    def _check_calls(self, p: _Parsed) -> None:
        index, policy, facts = self.index, self.policy, self.facts
        words = self.index.renames("word")
        for name, nargs in p.calls:
            local = facts.functions.get(name)
            if local is None and name in facts.names:
                continue  # a local function pointer or macro
            if name in policy.known_calls or name.startswith(policy.macro_prefixes) or index.is_macro(name):
                continue
            known = index.arities(name)
            if local is None and known is None:
                if name in words:
                    continue  # an old name: OLD_NAME reports it with the current one
                prefix = name.split("_", 1)[0]
                engine = "_" in name and prefix in index.module_prefixes()
                if not engine and ((p.block.cap is None and name in facts.user_calls) or ("_" in name and prefix in facts.prefixes)):
                    # the answer calls the user's own function (their code calls it too), or one named like its own actor
                    self.add("LOCAL_HELPER_CALL", f"`{name}` is called but not shown in the answer", p.block.where, p.block.cap)
                    continue
                hint = index.suggest(name, kinds=("functions",))
                mean = f"; did you mean `{hint[0]}`?" if hint else ""
                self.add("UNKNOWN_FUNCTION", f"`{name}` is not a decomp function{mean}", p.block.where, p.block.cap)
                continue
            arities: set[int] = set()
            variadic = False
            for a, v in local or ():
                arities.add(a)
                variadic |= v
            if known is not None:
                arities |= known[0]
                variadic |= known[1]
            if nargs in arities or (variadic and nargs >= min(arities)):
                continue
            expected = " or ".join(str(a) for a in sorted(arities)) + (" or more" if variadic else "")
            self.add("ARG_COUNT", f"`{name}` takes {expected} argument(s), called with {nargs}", p.block.where, p.block.cap)

    def text_decls(self) -> set:
        """Names declared anywhere in the answer text (`s16 timer;`): fields the answer tells you to add."""
        if self._text_decls is None:
            self._text_decls = set(_TEXT_DECL.findall(self.all_text))
        return self._text_decls

    def _struct_has(self, struct: str, member: str) -> bool | None:
        local = self.facts.structs.get(struct)
        if local is not None and member in local:
            return True
        ftype = self.index.field_type(struct, member)
        if ftype is not None:
            return True
        if local is None and self.index.struct_fields(struct) is None:
            return None
        return False

    def _type_of(self, node, memo: dict) -> str | None:
        key = node.id
        if key in memo:
            return memo[key]
        t = node.type
        result = None
        index = self.index
        if t == "identifier":
            name = node.text.decode()
            if name in self.facts.var_types:
                result = self.facts.var_types[name]
            elif name in self.policy.var_types:
                result = self.policy.var_types[name]
            else:
                gtype = index.global_type(name)
                result = base_type_name(gtype) if gtype else None
            if result is not None and result not in self.facts.structs:
                result = index.resolve_struct(result)
        elif t == "field_expression":
            base = self._type_of(node.child_by_field_name("argument"), memo)
            fld = node.child_by_field_name("field")
            if fld is not None:
                member = fld.text.decode()
                ftype = index.field_type(base, member) if base is not None else None
                result = index.resolve_struct(ftype) if ftype else None
                if result is None and (base is None or base in self.facts.structs):
                    result = self.policy.member_types.get(member)
        elif t in ("parenthesized_expression", "pointer_expression", "subscript_expression"):
            inner = node.child_by_field_name("argument") or (node.named_children[0] if node.named_children else None)
            result = self._type_of(inner, memo) if inner is not None else None
        elif t == "cast_expression":
            tn = node.child_by_field_name("type")
            if tn is not None:
                name = base_type_name(tn.text.decode())
                result = name if name in self.facts.structs else index.resolve_struct(name)
        elif t == "call_expression":
            fn = node.child_by_field_name("function")
            if fn is not None and fn.type == "identifier":
                result = self.policy.call_types.get(fn.text.decode())
        memo[key] = result
        return result

    def _check_fields(self, p: _Parsed) -> None:
        memo: dict = {}
        for arg, member in p.fields:
            base = self._type_of(arg, memo)
            if base is None:
                continue
            # (a name declared in the text is a substring of it: skip the text scan for any other member)
            if self._struct_has(base, member) is False and (member not in self.all_text or member not in self.text_decls()):
                shown = base.split("::")[0]
                hints = _index_tables(self.index)["field_hints"]
                hint = hints.get((base, member))
                if hint is None:
                    names = [f.name for f in self.index.struct_fields(base) or ()]
                    hint = difflib.get_close_matches(member, names, n=1, cutoff=0.6)
                    if len(hints) >= 4096:
                        hints.clear()
                    hints[(base, member)] = hint
                mean = f"; did you mean `{hint[0]}`?" if hint else ""
                self.add("UNKNOWN_FIELD", f"`{shown}` has no field `{member}`{mean}", p.block.where, p.block.cap)

    # -- MIPS ---------------------------------------------------------------------------------------------
    _ASM_COMMENT = re.compile(r"/\*.*?\*/|(?:#|//|;).*$")
    _LABEL = re.compile(r"^\s*[\w.$]+:")
    _DOLLAR = re.compile(r"\$([A-Za-z0-9]+)")
    _BARE_REG = re.compile(r"^(?:[atvsk]\d+|f\d+|r\d+)$")

    def _check_asm(self, blocks: list[_Block], user_blocks: list[_Block]) -> None:
        policy = self.policy
        branch_in_answer = False
        for b in blocks + user_blocks:
            if b.lang != "asm" or b.cap == "skip":
                continue
            for n, raw in enumerate(b.code.split("\n"), b.start_line):
                line = self._ASM_COMMENT.sub("", raw)
                while True:
                    m = self._LABEL.match(line)
                    if not m:
                        break
                    line = line[m.end():]
                line = line.strip()
                if not line or line.startswith(".") or line.startswith("%"):
                    continue
                parts = line.split(None, 1)
                mnemonic = parts[0].lower()
                if mnemonic in policy.directives:
                    continue
                if mnemonic not in policy.mnemonics:
                    self.add("ASM_BAD_MNEMONIC", f"`{parts[0]}` is not an R4300 instruction ({b.where} line {n})", b.where, b.cap)
                elif b.cap is None and not b.counterexample and (mnemonic in policy.branches or (mnemonic.startswith("b") and mnemonic != "break")):
                    branch_in_answer = True
                if len(parts) < 2:
                    continue
                operands = parts[1]
                for reg in self._DOLLAR.findall(operands):
                    if reg.lower() not in policy.registers:
                        self.add("ASM_BAD_REGISTER", f"`${reg}` is not a MIPS register ({b.where} line {n})", b.where, b.cap)
                for tok in re.split(r"[\s,()]+", operands):
                    if tok and self._BARE_REG.match(tok.lower()) and tok.lower() not in policy.registers:
                        self.add("ASM_BAD_REGISTER", f"`{tok}` is not a MIPS register ({b.where} line {n})", b.where, b.cap)
        if branch_in_answer and not policy.delay_words.search(self.all_text):
            changing = self.type_name == "code_modification" or policy.modify_words.search(self.example.instruction) \
                or policy.modify_words.search(self.prose)
            if changing:
                self.add("ASM_DELAY_SLOT", "the answer changes code with a branch or jump and never mentions the delay slot",
                         "output")

    # -- naming era ---------------------------------------------------------------------------------------
    _INLINE = re.compile(r"`([^`\n]+)`")

    def _check_naming(self, blocks: list[_Block]) -> None:
        policy, index = self.policy, self.index
        code = "\n".join(b.code for b in blocks if b.lang in ("c", "other") and not b.counterexample and b.tag not in ("diff", "patch"))
        code_words = set(_WORD.findall(code))
        # prose: an old name counts as used unless its sentence reads as history ("renamed from globalCtx")
        prose_words: set[str] = set()
        words = index.renames("word")
        tables = _index_tables(index)
        # only old/current era names and renamed words of the prose matter below: without any, skip the sentences
        prose_tokens = set(_WORD.findall(self.prose))
        relevant = prose_tokens & _naming_words(policy, tables)
        if relevant:
            inline_words = set(_WORD.findall(" ".join(self._INLINE.findall(self.prose))))
            suspicious = (prose_tokens & policy.era_old) or (inline_words & words.keys())
            if suspicious or inline_words & policy.era_new:
                for sentence in _relevant_sentences(self.prose, relevant):
                    if not sentence or not any(w in sentence for w in relevant) or policy.history_words.search(sentence):
                        continue  # (a sentence without a relevant word adds nothing that is used below)
                    prose_words.update(w for w in _WORD.findall(sentence) if w in policy.era_old or (w in policy.era_new and w != "play"))
                    for inline in self._INLINE.findall(sentence):
                        prose_words.update(_WORD.findall(inline))
        used = code_words | prose_words
        old = sorted(used & policy.era_old)
        new = sorted((code_words | prose_words) & policy.era_new)
        if old and new:
            self.add("NAMING_ERA_MIX", f"mixes old names ({', '.join(old)}) with current ones ({', '.join(new)})", "output")
        elif old:
            self.add("OLD_NAME", "uses old names: " + ", ".join(f"`{o}` (now `{policy.era_map.get(o, '?')}`)" for o in old), "output")
        for w in sorted(used & words.keys()):
            if w in policy.era_old or index.has_symbol(w):
                continue
            new_name = words[w]
            head = _WORD.match(new_name)
            if head and (index.has_symbol(head.group(0)) or head.group(0) in policy.known_calls):
                self.add("OLD_NAME", f"`{w}` was renamed to `{new_name}`", "output")
        suffixes = index.renames("suffix")
        for m in (tables["suffix"].finditer(code) if any(sfx in code for sfx in suffixes) else ()):
            w = m.group(0)
            if not index.has_symbol(w):
                for suffix, repl in index.renames("suffix").items():
                    if w.endswith(suffix):
                        self.add("OLD_NAME", f"`{w}` is now `{w[: -len(suffix)]}{repl}`", "output")
        for m in tables["substring"].finditer(code):
            start, end = m.start(), m.end()
            while start > 0 and (code[start - 1].isalnum() or code[start - 1] == "_"):
                start -= 1
            while end < len(code) and (code[end].isalnum() or code[end] == "_"):
                end += 1
            w = code[start:end]
            if index.has_symbol(w):
                continue
            for old_part, new_part in tables["substring_items"]:
                if old_part in w and index.has_symbol(w.replace(old_part, new_part)):
                    self.add("OLD_NAME", f"`{w}` is now `{w.replace(old_part, new_part)}`", "output")
                    break
        for old_path, new_path, include_rx in (tables["live_paths"] if any(g in code for g in tables["path_gates"]) else ()):
            if include_rx is not None:
                if old_path in code and include_rx.search(code):
                    self.add("OLD_NAME", f"`{old_path}` no longer exists ({new_path})", "output")
            elif old_path in code and old_path.split(".")[0] in ("actor", "skelAnime", "actorCtx") and \
                    not self._path_exists(old_path):
                self.add("OLD_NAME", f"`{old_path.rstrip('.[')}` is now `{new_path.rstrip('.[')}`", "output")

    def _path_exists(self, path: str) -> bool:
        head, _, rest = path.partition(".")
        member = re.match(r"\w+", rest)
        struct = {"actor": "Actor", "skelAnime": "SkelAnime", "actorCtx": "ActorContext"}[head]
        return member is None or self.index.field_type(struct, member.group(0)) is not None

    # -- RAM addresses ------------------------------------------------------------------------------------
    # literal first (the lookbehind after it) so that `re` can skip ahead to candidates
    _HEX = re.compile(r"0(?<!\w0)[xX]([89ABab][0-9A-Fa-f]{7})(?!\w)")
    _PROSE_ADDR = re.compile(r"[Aa](?<!\w[Aa])[Dd][Dd][Rr][Ee][Ss][Ss](?:[Ee][Ss])?\s+(?:[Oo][Ff]\s+|[Aa][Tt]\s+)?"
                             r"([89ABab][0-9A-Fa-f]{7})\b")

    def _check_ram(self, text: str) -> None:
        policy = self.policy
        upper = None
        for rx in (self._HEX, self._PROSE_ADDR):
            if rx is self._HEX and "0x" not in text and "0X" not in text:
                continue
            if rx is self._PROSE_ADDR and "address" not in text.casefold():
                continue  # (casefold: re.I also matches e.g. the long s)
            for m in rx.finditer(text):
                value = int(m.group(1), 16)
                if any(lo <= value <= hi for lo, hi, _ in policy.ranges) or any(lo <= value <= hi for lo, hi, _ in policy.hardware):
                    continue
                context = text[max(0, m.start() - 80): m.end() + 40]
                if policy.vram_words.search(context):
                    continue
                if upper is None:
                    upper = text.upper()
                if f"_{m.group(1).upper()}" in upper:
                    continue  # an overlay link (VRAM) address or a func_/D_ symbol's address
                ranges = ", ".join(f"{n} 0x{lo:08X}-0x{hi:08X}" for lo, hi, n in policy.ranges)
                self.add("BAD_RAM_ADDRESS", f"0x{value:08X} is outside N64 RAM ({ranges})", "output")


def run_static_checks(example: Example, index: SymbolIndex, checks: dict, *, example_type: dict | None = None) -> list[Finding]:
    """All static L1 findings of one example (every assistant turn of a dialogue), in a stable order."""
    return _Checker(example, index, checks, example_type).run()
