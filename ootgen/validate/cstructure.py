"""C structure for the static checks: conditionals preprocessed, C parsed with tree-sitter-c (as a whole, as a
function body or chunk by chunk), C_SYNTAX, and the facts one block declares and uses (functions, macros,
variables and their types, its own structs, calls, member accesses, constants and includes)."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..symbols import base_type_name
from .context import Block, Context

_TS: dict[str, Any] = {}  # the parser and query, created once per process

_QUERY = """
(call_expression) @call
(field_expression) @field
(function_declarator declarator: (identifier) @fname)
(declaration) @decl
(parameter_declaration) @param
(field_declaration_list) @fields
(preproc_function_def name: (identifier) @fmacro)
(preproc_def name: (identifier) @macro)
(enumerator name: (identifier) @enumc)
(preproc_include path: (_) @include)
(labeled_statement label: (statement_identifier) @label)
"""


class _FieldIds:
    """The tree-sitter-c field ids the checks ask nodes for: `child_by_field_name` looks the name up again on every
    call (0.1-0.6 us more than `child_by_field_id`, and it is the most frequent tree call of the checks)."""

    __slots__ = ("argument", "arguments", "body", "declarator", "field", "function", "name", "parameters", "type")
    argument: int
    arguments: int
    body: int
    declarator: int
    field: int
    function: int
    name: int
    parameters: int
    type: int

    def load(self, language) -> None:
        for name in self.__slots__:
            setattr(self, name, language.field_id_for_name(name))


FIELD = _FieldIds()  # filled with the parser (_ts), before any tree exists


def _ts() -> dict[str, Any]:
    if not _TS:
        import tree_sitter
        import tree_sitter_c

        language = tree_sitter.Language(tree_sitter_c.language())
        _TS["parser"] = tree_sitter.Parser(language)
        FIELD.load(language)
        query = tree_sitter.Query(language, _QUERY)
        _TS["cursor"] = lambda: tree_sitter.QueryCursor(query)
    return _TS


# ---------------------------------------------------------------------------------------------------------
# preprocessing: what cpp would do before the compiler sees the code, as far as parsing needs it
# ---------------------------------------------------------------------------------------------------------

_COND = re.compile(rb"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b(.*)$")
_IF = re.compile(rb"^[ \t]*#[ \t]*if", re.M)
# string concatenation through macros: `VT_FGCOL(RED) "text" VT_RST`, `T("jp", "en") "(%d)"`: two or more string
# literals or ALL_CAPS macros (with arguments) side by side, at least one holding a string
_STR = r'"(?:[^"\\\n]|\\.)*"'
_ITEM = rf'(?:{_STR}|\b[A-Z][A-Z0-9_]*\b(?:\((?:[^()"]|{_STR}|\((?:[^()"]|{_STR})*\))*\))?)'
# (a lone literal or char constant is consumed whole, so that a run never starts inside one)
_STRING_RUN = re.compile(rf"({_ITEM}(?:\s*{_ITEM})+)|{_STR}|'(?:[^'\\\n]|\\.)*'".encode())


def _as_literal(m: re.Match) -> bytes:
    text = m.group(0)
    if m.group(1) is None or b'"' not in text:
        return text
    return b'""' + b"\n" * text.count(b"\n")  # keep the line count


def preprocess(src: bytes) -> bytes:
    """Keep one branch of each #if chain (the first, or the #else of an `#if 0`), blank the others and the
    directives, and turn string macros glued to literals into empty literals. Line numbers are preserved."""
    if b"#" in src and _IF.search(src):
        lines = src.split(b"\n")
        stack: list[list[bool]] = []  # per open #if: [this branch kept, some branch already kept]
        for i, line in enumerate(lines):
            m = _COND.match(line)
            if m:
                kind, rest = m.group(1), m.group(2).strip()
                if kind.startswith(b"if"):
                    keep = not (kind == b"if" and rest in (b"0", b"(0)"))
                    stack.append([keep, keep])
                elif stack and kind == b"elif":
                    stack[-1][0] = False
                elif stack and kind == b"else":
                    stack[-1][0] = not stack[-1][1]
                    stack[-1][1] = True
                elif stack:
                    stack.pop()
                lines[i] = b""
            elif stack and not all(level[0] for level in stack):
                lines[i] = b""
        src = b"\n".join(lines)
    if b'"' in src:
        src = _STRING_RUN.sub(_as_literal, src)
    return src


# ---------------------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------------------

_ELLIPSIS = re.compile(rb"(^|[{;}:])[ \t]*\.\.\.[ \t]*(?=$|[;}\n])", re.M)


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
_WORD = re.compile(rb"\w+")
_BLANK_LINE = re.compile(rb"\n([ \t]*\n)")


def _has_function_header(src: bytes) -> bool:
    if b"{" not in src:
        return False
    for m in _FUNC_HEADER.finditer(src):
        words = _WORD.findall(m.group(0)[: m.start(1) - m.start(0)])
        if m.group(1) not in _NOT_FUNCTIONS and not _NOT_FUNCTIONS.intersection(words):
            return True
    return False


def parse_c(code: str):
    """(tree, source bytes, line offset, error line or None). The strategy is chosen up front from cheap textual
    cues, so a snippet is parsed once in the common case: conditionals are preprocessed and `...` placeholders
    removed before the first parse, and only code without a function header is retried wrapped in a function
    body. Code that still fails is checked chunk by chunk (blank-line separated) before calling it a syntax error."""
    parser = _ts()["parser"]
    src = preprocess(code.encode("utf-8", "replace"))
    cleaned = _ELLIPSIS.sub(rb"\1", src) if b"..." in src else src
    tree = parser.parse(cleaned)
    if not tree.root_node.has_error:
        return tree, cleaned, 0, None
    if cleaned is not src and cleaned != src:
        t = parser.parse(src)  # a `...` that C accepts, e.g. a variadic parameter on its own line
        if not t.root_node.has_error:
            return t, src, 0, None
        tree = t
    if not _has_function_header(cleaned):
        wrapped = _WRAP_HEAD + cleaned + b"\n}\n"
        t = parser.parse(wrapped)
        if not t.root_node.has_error:
            return t, wrapped, 1, None
    # mixed fragments: blank-line separated chunks must each parse, as is or wrapped in a function
    chunks = _BLANK_LINE.split(cleaned)
    if len(chunks) > 1:
        bad_line, line = None, 1
        for chunk in chunks[::2]:
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


def _text(src: bytes, node) -> str:
    """A node's source text (slicing the parsed bytes costs less than `Node.text`)."""
    return src[node.start_byte:node.end_byte].decode("utf-8", "replace")


def decl_name(node, src: bytes):
    """(name, pointer depth, is function) of a declarator chain in `src`."""
    depth, is_func = 0, False
    while node is not None:
        t = node.type
        if t in ("identifier", "field_identifier", "type_identifier"):
            return _text(src, node), depth, is_func
        if t == "pointer_declarator":
            depth += 1
        elif t == "function_declarator":
            is_func = True
        if t == "parenthesized_declarator":
            node = node.named_children[0] if node.named_children else None
        else:
            node = node.child_by_field_id(FIELD.declarator)
    return None, depth, is_func


# ---------------------------------------------------------------------------------------------------------
# facts
# ---------------------------------------------------------------------------------------------------------

@dataclass
class CFacts:
    """What one example's C code defines and uses, gathered over all its blocks before checking."""

    functions: dict = field(default_factory=dict)  # name -> set of (arity, variadic) from local decls
    names: set = field(default_factory=set)  # every declared variable/macro/enum/label name
    var_types: dict = field(default_factory=dict)  # variable -> type name (None when ambiguous)
    structs: dict = field(default_factory=dict)  # locally defined struct -> {field: type name}
    prefixes: set = field(default_factory=set)  # "EnMyNpc" of locally defined EnMyNpc_* functions / types
    user_calls: set = field(default_factory=set)  # functions the user's own code (input, user turns) calls
    inferred: dict = field(default_factory=dict)  # (struct, member) -> type, from the parameter it is passed to


@dataclass
class BlockFacts:
    functions: list = field(default_factory=list)  # (name, (arity, variadic)) in order
    prefixes: set = field(default_factory=set)
    names: set = field(default_factory=set)
    typed: list = field(default_factory=list)  # (variable, type name) in declaration order
    structs: list = field(default_factory=list)  # (struct name, {field: type name})


class Call(NamedTuple):
    name: str
    start: int  # byte offset of the name in the parsed source
    nargs: int
    arguments: Any  # the argument_list node
    takes_address: bool  # some argument holds `&`

    @property
    def args(self) -> tuple:
        """The argument nodes (comments left out)."""
        return tuple(a for a in self.arguments.named_children if a.type != "comment")


@dataclass
class Parsed:
    """One C block parsed, with what it declares (facts) and uses (calls, fields, constants, includes)."""

    block: Block
    tree: Any
    src: bytes
    offset: int
    error_line: int | None
    facts: BlockFacts
    calls: list[Call]
    fields: list  # (field expression node, its source text): member accesses, taken apart when checked
    constants: list[tuple[str, int]]  # (ALL_CAPS token, byte offset in src): a constant where `is_use` says so
    includes: list[tuple[str, int]]  # (path, line)

    def text(self, node) -> str:
        """A node's source text."""
        return _text(self.src, node)

    def member_access(self, node) -> tuple[Any, str] | None:
        """(argument node, member name) of a field expression node."""
        arg, fld = node.child_by_field_id(FIELD.argument), node.child_by_field_id(FIELD.field)
        return None if arg is None or fld is None else (arg, _text(self.src, fld))

    def is_use(self, start: int) -> bool:
        """Whether the token at byte `start` is an identifier the code uses as a value: not in a comment, string or
        macro body, not a name being declared (macro, macro parameter, enumerator), not a called function (checked
        as a call). Asked only of the tokens a check would report: a query capture of every identifier costs more."""
        token = _CONSTANT.match(self.src, start)
        node = self.tree.root_node.descendant_for_byte_range(start, token.end() if token else start + 1)
        parent = node.parent
        if node.type != "identifier" or parent is None:
            return False
        kind = parent.type
        if kind == "call_expression":
            return not _field_is(parent, FIELD.function, node)
        if kind == "enumerator":
            return not _field_is(parent, FIELD.name, node)
        return kind not in ("preproc_def", "preproc_function_def", "preproc_params")  # (their identifiers are names)

    def asset_names(self) -> list[str]:
        """The gCamelCase identifiers of the code (asset symbols or globals), sorted."""
        at = self.tree.root_node.descendant_for_byte_range
        return sorted({m.group().decode("utf-8", "replace") for m in _tokens(_ASSET, self.src)
                       if at(m.start(), m.end()).type == "identifier"})

    def code_line(self, offset: int) -> int:
        """The line of the block's code (1-based) holding byte `offset` of the parsed source."""
        return self.src.count(b"\n", 0, offset) + 1 - self.offset


# tokens shaped like a constant or an asset symbol (tree-sitter-c identifiers also hold `$` and UTF-8)
# (no lookbehind for the token start: `re` skips ahead to a first character only when a pattern opens with one)
_CONSTANT = re.compile(rb"[A-Z][A-Z0-9_$\x80-\xff]{3,}(?![\w$\x80-\xff])")
_ASSET = re.compile(rb"g[A-Z][\w$\x80-\xff]*")
_IN_TOKEN = frozenset(b"$_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" + bytes(range(0x80, 0x100)))


def _tokens(rx: re.Pattern, src: bytes) -> list[re.Match]:
    """The matches of `rx` that start an identifier token of `src`."""
    return [m for m in rx.finditer(src) if m.start() == 0 or src[m.start() - 1] not in _IN_TOKEN]


def _field_is(parent, field_id: int, node) -> bool:
    """Whether `node` is the field `field_id` (a FIELD attribute) of `parent`."""
    child = parent.child_by_field_id(field_id)
    return child is not None and child.start_byte == node.start_byte and child.end_byte == node.end_byte


def _in_order(nodes: list) -> list:
    """Captures in source order: py-tree-sitter does not always return one name's captures in order (the same
    tree gave different orders from run to run), and findings follow the order of the code."""
    return sorted(nodes, key=_start) if len(nodes) > 1 else nodes


def _start(node) -> int:
    return node.start_byte


def _gather(caps: dict, src: bytes) -> tuple:
    facts = BlockFacts()
    for n in caps.get("fname", ()):
        fdecl = n.parent
        name = _text(src, n)
        params = fdecl.child_by_field_id(FIELD.parameters)
        arity, variadic = 0, False
        if params is not None:
            for p in params.named_children:
                if p.type == "variadic_parameter":
                    variadic = True
                elif p.type == "parameter_declaration":
                    if p.child_by_field_id(FIELD.declarator) is None and src[p.start_byte:p.end_byte].strip() == b"void":
                        continue
                    arity += 1
        if name != "__fragment":
            facts.functions.append((name, (arity, variadic)))
            if "_" in name:
                facts.prefixes.add(name.split("_", 1)[0])
    for key in ("macro", "fmacro", "enumc", "label"):
        for n in caps.get(key, ()):
            facts.names.add(_text(src, n))
    for node in list(caps.get("decl", ())) + list(caps.get("param", ())):
        tnode = node.child_by_field_id(FIELD.type)
        if tnode is None:
            continue
        type_name = base_type_name(_text(src, tnode))
        for d in node.children_by_field_id(FIELD.declarator):
            target = d.child_by_field_id(FIELD.declarator) if d.type == "init_declarator" else d
            name, depth, is_func = decl_name(target, src)
            if name is None or (is_func and d.type != "init_declarator" and depth == 0):
                continue
            facts.names.add(name)
            facts.typed.append((name, type_name))
    for body in _in_order(caps.get("fields", ())):
        _gather_struct(body, src, facts)
    calls = _calls(caps, src)
    fields = [(node, src[node.start_byte:node.end_byte]) for node in _in_order(caps.get("field", ()))]
    constants = [(m.group().decode("utf-8", "replace"), m.start()) for m in _tokens(_CONSTANT, src) if b"_" in m.group()]
    includes = []
    for node in _in_order(caps.get("include", ())):
        path = _text(src, node).strip()
        if len(path) > 2 and path[0] in "\"<":
            includes.append((path[1:-1], node.start_point[0] + 1))
    return facts, calls, fields, constants, includes


def _gather_struct(body, src: bytes, facts: BlockFacts) -> None:
    """The members of a struct (or union) the code defines, under its tag and typedef names."""
    owner = body.parent
    name_node = owner.child_by_field_id(FIELD.name) if owner is not None else None
    typedef = owner.parent if owner is not None else None
    names = []
    if typedef is not None and typedef.type == "type_definition":
        names = [_text(src, d) for d in typedef.children_by_field_id(FIELD.declarator) if d.type == "type_identifier"]
    if name_node is not None:
        names.append(_text(src, name_node))
    members: dict[str, str] = {}
    for f in body.named_children:
        ftype = f.child_by_field_id(FIELD.type)
        type_text = base_type_name(_text(src, ftype)) if ftype is not None else ""
        for d in f.children_by_field_id(FIELD.declarator):
            fname, _, _ = decl_name(d, src)
            if fname:
                members[fname] = type_text
        if ftype is not None and ftype.type in ("struct_specifier", "union_specifier") and not f.children_by_field_id(FIELD.declarator):
            inner = ftype.child_by_field_id(FIELD.body)
            for g in (inner.named_children if inner is not None else ()):
                gtype = g.child_by_field_id(FIELD.type)
                for d in g.children_by_field_id(FIELD.declarator):
                    fname, _, _ = decl_name(d, src)
                    if fname:
                        members[fname] = base_type_name(_text(src, gtype)) if gtype is not None else ""
        if f.type == "field_declaration" and ftype is None:
            members["\0open"] = ""  # a member the parser could not read (a macro like SLIDING_DOOR_ACTOR_BASE)
    for n in names:
        facts.structs.append((n, members))
        facts.prefixes.add(n)


def _calls(caps: dict, src: bytes) -> list[Call]:
    """The calls of named functions (not through pointers: this->actionFunc(this, play), (*f)(x)) in source order."""
    calls = []
    for call in _in_order(caps.get("call", ())):
        fn = call.child_by_field_id(FIELD.function)
        args = call.child_by_field_id(FIELD.arguments)
        if fn is None or args is None or fn.type != "identifier":
            continue
        start, end = args.start_byte, args.end_byte
        # (named children cost a Python object each: count them, and list them only when a comment may be one)
        c = Call(_text(src, fn), fn.start_byte, args.named_child_count, args, src.find(b"&", start, end) >= 0)
        calls.append(c if src.find(b"/", start, end) < 0 else c._replace(nargs=len(c.args)))
    return calls


def merge(block: BlockFacts, facts: CFacts) -> None:
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
    for name, members in block.structs:
        facts.structs.setdefault(name, {}).update(members)


_PARSE_CACHE: OrderedDict[str, tuple] = OrderedDict()
PARSE_CACHE_SIZE = [512]  # a list so that a bench can switch the cache off


def parse_block(block: Block) -> Parsed:
    """One C block parsed, memoised by code in a bounded LRU: generated examples often repeat their input code."""
    code = block.code
    hit = _PARSE_CACHE.get(code)
    if hit is not None:
        _PARSE_CACHE.move_to_end(code)
    else:
        tree, src, offset, error_line = parse_c(code)
        caps = _ts()["cursor"]().captures(tree.root_node)
        hit = (tree, src, offset, error_line, *_gather(caps, src))
        if PARSE_CACHE_SIZE[0] > 0:
            _PARSE_CACHE[code] = hit
            if len(_PARSE_CACHE) > PARSE_CACHE_SIZE[0]:
                _PARSE_CACHE.popitem(last=False)
    return Parsed(block, *hit)


def clear_parse_cache() -> None:
    _PARSE_CACHE.clear()


def parse_blocks(ctx: Context, c_blocks: list[Block]) -> tuple[list[Parsed], CFacts]:
    """Parse every C block, merge what they declare, and report C_SYNTAX (at the line of the example text)."""
    parsed: list[Parsed] = []
    facts = CFacts()
    for block in c_blocks:
        p = parse_block(block)
        parsed.append(p)
        merge(p.facts, facts)
    for p in parsed:
        if p.block.cap is not None:
            facts.user_calls.update(c.name for c in p.calls)
    for p in parsed:
        b = p.block
        if b.cap == "skip" or p.error_line is None or b.line_map is not None:
            continue  # a diff hunk is a fragment of a file: its syntax is not checked
        code_line = min(p.error_line - p.offset, b.code.count("\n") + 1)
        code_line = max(code_line, 1)
        snippet = b.code.split("\n")[code_line - 1].strip()[:60]
        ctx.add("C_SYNTAX", f"C does not parse near {b.at_line(code_line)}: `{snippet}`", b.where, b.cap)
    return parsed, facts
