"""Symbols and naming for the static checks: every name the answer's C uses (calls and their arity, constants,
`#include` paths, member chains, asset symbols) against the decomp index and what the answer itself declares,
and the naming era (old names, renamed APIs) of its code and prose."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from ..symbols import SymbolIndex, base_type_name
from .context import Context
from .cstructure import FIELD, CFacts, Parsed
from .policy import CheckPolicy, Tokens, trie_regex

_WORD = re.compile(r"[A-Za-z_]\w*")
_SENTENCE = re.compile(r"(?<=[.!?:])\s+|\n")
_INLINE = re.compile(r"`([^`\n]+)`")
_PROSE_PROTO = re.compile(r"\b([A-Za-z_]\w*)\s*\(([^()`\n]*)\)")
_PARAM = re.compile(r"^\s*(?:const\s+)?[A-Za-z_]\w*(?:\s*\*+\s*|\s+)\**\s*[A-Za-z_]\w*\s*(?:\[[^\]]*\])?\s*$")
# `s16 timer;` around a name: the type before it (within a line's reach) and the `;` after it
_DECL_HEAD = re.compile(r"(?<!\w)[A-Za-z_]\w*\s*\**\s+\**\Z")
_DECL_TAIL = re.compile(r"\s*(?:\[[^\]\n]*\])?\s*;")
# a member chain `this->actor.world`: (everything before the last member, the last member)
_CHAIN = re.compile(rb"([A-Za-z_]\w*(?:(?:->|\.)[A-Za-z_]\w*)*)(?:->|\.)([A-Za-z_]\w*)")
_PATH_HEADS = {"actor": "Actor", "skelAnime": "SkelAnime", "actorCtx": "ActorContext"}


@dataclass
class RenameTables:
    """The index's rename map compiled for matching; built once per index (SymbolIndex.derived)."""

    live_paths: list
    path_gates: tuple
    substring: re.Pattern
    substring_items: list
    word_keys: frozenset
    suffix: re.Pattern
    field_hints: dict  # (struct, member) -> difflib hint of UNKNOWN_FIELD

    @classmethod
    def build(cls, index: SymbolIndex) -> RenameTables:
        substring = index.renames("substring")
        paths = []
        for old_path, new_path in index.renames("path").items():
            rx = re.compile(r"#\s*include\s*[<\"]" + re.escape(old_path)) if old_path.endswith(".h") else None
            paths.append((old_path, new_path, rx))
        # only these entries can report (each holds its gate as a substring): skip the loop when no gate is in the code
        live = [(o, n, rx) for o, n, rx in paths if rx is not None or o.split(".")[0] in _PATH_HEADS]
        gates = {".h" if rx is not None else o.split(".")[0] for o, _, rx in live}
        suffixes = index.renames("suffix")
        return cls(
            live_paths=live, path_gates=tuple(sorted(gates)), substring=re.compile(trie_regex(substring)),
            substring_items=list(substring.items()), word_keys=frozenset(index.renames("word")),
            suffix=re.compile(r"\b\w+(?:" + "|".join(re.escape(k) for k in suffixes) + r")\b" if suffixes else r"(?!x)x"),
            field_hints={},
        )


_HEX_TAIL = re.compile(r"_[0-9A-F]{8}$")


def _build_families(index: SymbolIndex) -> dict[str, int]:
    """`NA_SE_SY_` -> how many different words follow it in decomp constants (NA_SE_SY_DECIDE, NA_SE_SY_CURSOR...).
    A prefix that only ever continues one way (`EFF_` of EFF_DUST_TYPE_0..4) is not a family."""
    following: dict[str, set[str]] = {}
    for name in index.constant_names():
        i = name.find("_", 1)
        while 0 < i < len(name) - 1:
            j = name.find("_", i + 1)
            following.setdefault(name[: i + 1], set()).add(name[i + 1: j if j > 0 else len(name)])
            i = j
    return {prefix: len(words) for prefix, words in following.items()}


def _in_family(name: str, families: dict[str, int], minimum: int) -> bool:
    """Whether some underscore prefix of `name` is a decomp family of at least `minimum` members."""
    i = name.find("_", 1)
    while 0 < i < len(name) - 1:
        if families.get(name[: i + 1], 0) >= minimum:
            return True
        i = name.find("_", i + 1)
    return False


def _families(index: SymbolIndex) -> dict[str, int]:
    return index.derived("validate.families", _build_families)


def _tables(index: SymbolIndex) -> RenameTables:
    return index.derived("validate.renames", RenameTables.build)


def prose_prototypes(prose: str) -> dict[str, set]:
    """Functions whose prototype the prose names, `EnMyActor_SetupIdle(EnMyActor* this)`: name -> {(arity, False)}."""
    found: dict[str, set] = {}
    if "(" not in prose or "`" not in prose:
        return found
    for m in (m for span in _INLINE.findall(prose) if "(" in span for m in _PROSE_PROTO.finditer(span)):
        params = m.group(2).strip()
        if params == "void":
            found.setdefault(m.group(1), set()).add((0, False))
        elif params and all(_PARAM.match(p) for p in params.split(",")):
            found.setdefault(m.group(1), set()).add((params.count(",") + 1, False))
    return found


class NameChecks:
    """Names of one example's C blocks, checked against the index and the example's own declarations."""

    def __init__(self, ctx: Context, parsed: list[Parsed], facts: CFacts) -> None:
        self.ctx, self.parsed, self.facts = ctx, parsed, facts
        self.index: SymbolIndex = ctx.index
        self.policy: CheckPolicy = ctx.policy
        self.protos = prose_prototypes(ctx.prose)
        self._text_decls: dict[str, bool] = {}
        self._own_upper = {p.upper() for p in facts.prefixes}
        self._variables: dict[str, str | None] = {}  # variable -> type (the declarations never change)
        self._members: dict | None = None  # (base, member) -> type, once inferred member types are final
        self._fields_seen: set[bytes] = set()  # member expressions checked (by source text)
        self._chains: dict[bytes, str | None] = {}  # member chain -> type (see chain_type)

    def run(self) -> None:
        checked = [p for p in self.parsed if p.block.cap != "skip" and (p.error_line is None or p.block.line_map is not None)
                   and not p.block.counterexample]
        for p in checked:
            self.check_calls(p)
        self.infer_member_types(checked)
        self._members = {}
        for p in checked:
            self.check_fields(p)
            if p.block.cap is None:  # constants, includes and assets: the answer's code only
                self.check_constants(p)
                self.check_includes(p)
        self.check_assets([p for p in checked if p.block.cap is None])

    # -- calls --------------------------------------------------------------------------------------------
    def check_calls(self, p: Parsed) -> None:
        ctx, index, policy, facts = self.ctx, self.index, self.policy, self.facts
        words = index.renames("word")
        b = p.block
        for call in p.calls:
            name, nargs = call.name, call.nargs
            local = facts.functions.get(name) or self.protos.get(name)
            if local is None and name in facts.names:
                continue  # a local function pointer or macro
            if name in policy.known_calls or name.startswith(policy.macro_prefixes):
                continue
            known = index.arities(name)
            macro = index.macro_arity(name)
            if known is None and macro is not None:
                known = macro
            elif known is not None and macro is not None:
                known = (known[0] | macro[0], known[1] or macro[1])
            if local is None and known is None:
                if index.is_macro(name) or name in words:
                    continue  # a macro of unknown arity; an old name (OLD_NAME reports it with the current one)
                prefix = name.split("_", 1)[0]
                engine = "_" in name and prefix in index.module_prefixes()
                if not engine and ((b.cap is None and name in facts.user_calls) or ("_" in name and prefix in facts.prefixes)):
                    # the answer calls the user's own function (their code calls it too), or one named like its own actor
                    ctx.add("LOCAL_HELPER_CALL", f"`{name}` is called but not shown in the answer", b.where, b.cap)
                    continue
                hint = index.suggest(name, kinds=("functions", "macros"))
                mean = f"; did you mean `{hint[0]}`?" if hint else ""
                ctx.add("UNKNOWN_FUNCTION", f"`{name}` is not a decomp function{mean}", b.where, b.cap)
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
            ctx.add("ARG_COUNT", f"`{name}` takes {expected} argument(s), called with {nargs}", b.where, b.cap)

    # -- constants ----------------------------------------------------------------------------------------
    def check_constants(self, p: Parsed) -> None:
        index, facts, policy = self.index, self.facts, self.policy
        tables = _tables(index)
        for name, start in p.constants:
            if (name in facts.names or name in facts.functions or name in policy.known_calls or name in self.protos
                    or name in policy.known_constants or index.has_constant(name) or index.has_symbol(name)):
                continue
            if name in tables.word_keys or tables.substring.search(name):
                continue  # an old name: the naming check reports it with the current one
            if name.split("_", 1)[0] in self._own_upper or name in policy.table_names(self.ctx.all_text):
                continue  # the answer's own constant (EN_MY_NPC_..., an actor id it adds to the table)
            if _HEX_TAIL.search(name) or not _in_family(name, _families(index), policy.min_family):
                continue  # not a claim about a decomp family of constants (an enum local to one .c file, D_8012ABCD)
            if not p.is_use(start):
                continue  # (a comment, a string, a macro body, a name it declares, a call: checked as a call)
            hint = index.suggest(name, kinds=("enums", "defines"))
            mean = f"; did you mean `{hint[0]}`?" if hint else ""
            self.ctx.add("UNKNOWN_CONSTANT", f"`{name}` ({p.block.at_line(p.code_line(start))}) is not a decomp constant, "
                         f"enum member or macro{mean}", p.block.where)

    # -- includes -----------------------------------------------------------------------------------------
    def check_includes(self, p: Parsed) -> None:
        index, policy = self.index, self.policy
        for path, _ in p.includes:
            name = path.rsplit("/", 1)[-1]
            if name in policy.removed_headers:
                self.ctx.add("UNKNOWN_INCLUDE", f"`{path}` no longer exists in the decomp ({policy.removed_headers[name]})",
                             p.block.where)
            elif index.has_headers() and not index.has_header(path) and name.startswith(policy.dead_header_prefixes):
                self.ctx.add("UNKNOWN_INCLUDE", f"`{path}` is not a decomp header", p.block.where)

    # -- member chains ------------------------------------------------------------------------------------
    def declared_in_text(self, name: str) -> bool:
        """Whether the answer text declares `name` somewhere (`s16 timer;`): a field the answer tells you to add.
        Only the places the name occurs are looked at (a scan of the whole text for declarations costs more)."""
        found = self._text_decls.get(name)
        if found is None:
            text, found = self.ctx.all_text, False
            at = text.find(name)
            while at >= 0 and not found:
                end = at + len(name)
                found = (not (text[at - 1:at].isalnum() or text[at - 1:at] == "_")
                         and _DECL_TAIL.match(text, end) is not None
                         and _DECL_HEAD.search(text, max(0, at - 160), at) is not None)
                at = text.find(name, end)
            self._text_decls[name] = found
        return found

    def _resolve(self, type_name: str | None) -> str | None:
        if type_name is None:
            return None
        if type_name in self.facts.structs:
            return type_name
        return self.index.resolve_struct(type_name) or type_name

    def member_type(self, base: str | None, member: str) -> str | None:
        memo = self._members
        if memo is None:
            return self._member_type(base, member)
        key = (base, member)
        if key not in memo:
            memo[key] = self._member_type(base, member)
        return memo[key]

    def _member_type(self, base: str | None, member: str) -> str | None:
        facts, index = self.facts, self.index
        if base is not None:
            local = facts.structs.get(base)
            if local is not None and local.get(member):
                return self._resolve(base_type_name(local[member]))
            ftype = index.field_type(base, member)
            if ftype is not None:
                return self._resolve(index.resolve_struct(ftype) or base_type_name(ftype))
        inferred = facts.inferred.get((base, member))
        if inferred is not None:
            return inferred
        if base is None or base in facts.structs or index.resolve_struct(base) is None:
            member_default = self.policy.member_types.get(member)
            return self._resolve(member_default) if member_default else None
        return None

    def variable_type(self, name: str) -> str | None:
        if name in self._variables:
            return self._variables[name]
        if name in self.facts.var_types:
            result = self.facts.var_types[name]
        elif name in self.policy.var_types:
            result = self.policy.var_types[name]
        else:
            gtype = self.index.global_type(name)
            result = base_type_name(gtype) if gtype else None
        self._variables[name] = result = self._resolve(result)
        return result

    def type_of(self, node, memo: dict, p: Parsed) -> str | None:
        """The type name of an expression node of block `p`."""
        key = node.id
        if key in memo:
            return memo[key]
        t = node.type
        result = None
        if t == "identifier":
            result = self.variable_type(p.text(node))
        elif t == "field_expression":
            access = p.member_access(node)
            if access is not None:
                result = self.member_type(self.type_of(access[0], memo, p), access[1])
        elif t in ("parenthesized_expression", "pointer_expression", "subscript_expression"):
            inner = node.child_by_field_id(FIELD.argument) or (node.named_children[0] if node.named_children else None)
            result = self.type_of(inner, memo, p) if inner is not None else None
        elif t == "cast_expression":
            tn = node.child_by_field_id(FIELD.type)
            if tn is not None:
                result = self._resolve(base_type_name(p.text(tn)))
        elif t == "call_expression":
            fn = node.child_by_field_id(FIELD.function)
            if fn is not None and fn.type == "identifier":
                result = self._resolve(self.policy.call_types.get(p.text(fn)))
        memo[key] = result
        return result

    def chain_type(self, chain: bytes) -> str | None:
        """The type of a member chain written `a->b.c` (no spaces, casts or subscripts), as `type_of` gives it for
        its nodes; memoised by text, so only once the inferred member types are final."""
        memo = self._chains
        if chain not in memo:
            m = _CHAIN.fullmatch(chain)
            memo[chain] = (self.variable_type(chain.decode()) if m is None
                           else self.member_type(self.chain_type(m.group(1)), m.group(2).decode()))
        return memo[chain]

    def infer_member_types(self, parsed: list[Parsed]) -> None:
        """`Collider_InitCylinder(play, &this->collider)`: a member of unknown type passed by address to a known
        function has the type of that parameter."""
        index, inferred = self.index, self.facts.inferred
        memo: dict = {}
        known: set[bytes] = set()  # `&this->actor`: arguments whose member type is known (it stays known)
        for p in parsed:
            for call in p.calls:
                if not call.takes_address or not index.has_function(call.name):
                    continue
                for i, arg in enumerate(call.args):
                    if p.src[arg.start_byte] != 38:  # `&` (the source byte first: asking a node costs more)
                        continue
                    types = index.param_types(call.name, i)
                    text = p.src[arg.start_byte:arg.end_byte]
                    if len(types) != 1 or text in known or arg.type != "pointer_expression":
                        continue
                    target = arg.child_by_field_id(FIELD.argument)
                    access = p.member_access(target) if target is not None and target.type == "field_expression" else None
                    if access is None:
                        continue
                    base = self.type_of(access[0], memo, p)
                    if self.member_type(base, access[1]) is not None:
                        known.add(text)
                        continue
                    resolved = index.resolve_struct(next(iter(types)))
                    if resolved is not None:
                        inferred[(base, access[1])] = resolved

    def _struct_has(self, struct: str, member: str) -> bool | None:
        local = self.facts.structs.get(struct)
        if local is not None and (member in local or "\0open" in local):
            return True
        if self.index.field_type(struct, member) is not None:
            return True
        if self.index.is_open_struct(struct):
            return None
        if local is None and self.index.struct_fields(struct) is None:
            return None
        return False

    def check_fields(self, p: Parsed) -> None:
        memo: dict = {}
        index, ctx, seen = self.index, self.ctx, self._fields_seen
        for node, text in p.fields:
            if text in seen:
                continue  # the same member expression again: types are the example's, its finding is already made
            seen.add(text)
            chain = _CHAIN.fullmatch(text)
            if chain is not None:  # `this->actor.world`: taken apart from its text (asking the tree costs more)
                arg, member = None, chain.group(2).decode()
            else:
                access = p.member_access(node)
                if access is None:
                    continue
                arg, member = access
            if member in self.facts.names or index.is_macro(member):
                continue  # (a field alias: `#define vTimer actionVar1`)
            base = self.chain_type(chain.group(1)) if chain is not None else self.type_of(arg, memo, p)
            if base is None:
                continue
            if self._struct_has(base, member) is False and not self.declared_in_text(member):
                shown = base.split("::")[0]
                hints = _tables(index).field_hints
                hint = hints.get((base, member))
                if hint is None:
                    names = [f.name for f in index.struct_fields(base) or ()] or list(self.facts.structs.get(base, ()))
                    hint = difflib.get_close_matches(member, names, n=1, cutoff=0.6)
                    if len(hints) >= 4096:
                        hints.clear()
                    hints[(base, member)] = hint
                mean = f"; did you mean `{hint[0]}`?" if hint else ""
                ctx.add("UNKNOWN_FIELD", f"`{shown}` has no field `{member}`{mean}", p.block.where, p.block.cap)

    # -- assets -------------------------------------------------------------------------------------------
    def check_assets(self, parsed: list[Parsed]) -> None:
        """An asset symbol (DList, skeleton...) of an object the actor never loads: its own object (from the
        profile the answer shows, or the decomp actor it edits), objects it names, and the keeps."""
        index, policy = self.index, self.policy
        if not index.has_assets():
            return
        if not any(b"ActorProfile" in p.src and b"OBJECT_" in p.src for p in parsed):
            return  # only a profile the answer shows says which object the actor loads
        used = [(p, name) for p in parsed for name in p.asset_names()]
        if not used:
            return
        objects = {name for p in parsed for name, start in p.constants if name.startswith("OBJECT_") and p.is_use(start)}
        loaded = {index.object_file(o) for o in objects} | set(policy.keep_objects)
        for p, name in used:
            if name in self.facts.names:
                continue
            owner = index.asset(name)
            if owner is None or owner[1] not in policy.asset_kinds or owner[0] in loaded or owner[0].startswith("ovl_"):
                continue  # (an overlay's own assets are part of its code)
            self.ctx.add("ASSET_NOT_LOADED", f"`{name}` is a {owner[1]} of {owner[0]}, which this actor does not load "
                         f"({', '.join(sorted(o for o in objects))})", p.block.where)


# ---------------------------------------------------------------------------------------------------------
# naming era and renamed names
# ---------------------------------------------------------------------------------------------------------

def _relevant_sentences(prose: str, relevant) -> list[str]:
    """The pieces of `_SENTENCE.split(prose)` on the lines holding one of the `relevant` words (as substrings)."""
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


def check_naming(ctx: Context, code: str) -> None:
    """Old names in the answer's code are errors; in its prose (outside history sentences) warnings."""
    policy, index = ctx.policy, ctx.index
    tables = _tables(index)
    era = policy.era_words
    # the tokens this check can report (era names, renamed words), found in one scan; no other token matters
    naming_words = index.derived("validate.naming " + era.key, lambda i: Tokens(era.words | i.renames("word").keys())).found

    code_words = naming_words(code)
    prose_words: set[str] = set()
    words = index.renames("word")
    relevant = naming_words(ctx.prose)
    # prose that names only current-era words can change the result only by mixing them with old names in the code
    if relevant and (code_words & policy.era_old or not relevant <= policy.era_new):
        inline_words = naming_words(" ".join(_INLINE.findall(ctx.prose)))
        suspicious = (relevant & policy.era_old) or (inline_words & words.keys())
        if suspicious or inline_words & policy.era_new:
            sentences = [s for s in _relevant_sentences(ctx.prose, relevant)
                         if s and any(w in s for w in relevant) and not policy.history_words.search(s)]
            joined = "\n".join(sentences)  # (tokens never span the joins)
            prose_words = {w for w in policy.era_words.found(joined) if w in policy.era_old or w != "play"}
            prose_words |= naming_words(" ".join(_INLINE.findall(joined)))
    used = code_words | prose_words
    old = sorted(used & policy.era_old)
    new = sorted(used & policy.era_new)

    def cap_for(found: set | str) -> str | None:
        in_code = bool(code_words & found) if isinstance(found, set) else found in code_words
        return None if in_code else "warning"

    if old and new:
        ctx.add("NAMING_ERA_MIX", f"mixes old names ({', '.join(old)}) with current ones ({', '.join(new)})", "output")
    elif old:
        ctx.add("OLD_NAME", "uses old names: " + ", ".join(f"`{o}` (now `{policy.era_map.get(o, '?')}`)" for o in old), "output",
                cap_for(set(old)))
    for w in sorted(used & words.keys()):
        if w in policy.era_old or index.has_symbol(w):
            continue
        new_name = words[w]
        head = _WORD.match(new_name)
        if head and (index.has_symbol(head.group(0)) or head.group(0) in policy.known_calls):
            ctx.add("OLD_NAME", f"`{w}` was renamed to `{new_name}`", "output", cap_for(w))
    suffixes = index.renames("suffix")
    for m in (tables.suffix.finditer(code) if any(sfx in code for sfx in suffixes) else ()):
        w = m.group(0)
        if not index.has_symbol(w):
            for suffix, repl in suffixes.items():
                if w.endswith(suffix):
                    ctx.add("OLD_NAME", f"`{w}` is now `{w[: -len(suffix)]}{repl}`", "output")
    for m in tables.substring.finditer(code):
        start, end = m.start(), m.end()
        while start > 0 and (code[start - 1].isalnum() or code[start - 1] == "_"):
            start -= 1
        while end < len(code) and (code[end].isalnum() or code[end] == "_"):
            end += 1
        w = code[start:end]
        if index.has_symbol(w):
            continue
        for old_part, new_part in tables.substring_items:
            if old_part in w and index.has_symbol(w.replace(old_part, new_part)):
                ctx.add("OLD_NAME", f"`{w}` is now `{w.replace(old_part, new_part)}`", "output")
                break
    for old_path, new_path, include_rx in (tables.live_paths if any(g in code for g in tables.path_gates) else ()):
        if include_rx is not None:
            if old_path in code and include_rx.search(code):
                ctx.add("OLD_NAME", f"`{old_path}` no longer exists ({new_path})", "output")
        elif old_path in code and not _path_exists(index, old_path):
            ctx.add("OLD_NAME", f"`{old_path.rstrip('.[')}` is now `{new_path.rstrip('.[')}`", "output")


def _path_exists(index: SymbolIndex, path: str) -> bool:
    head, _, rest = path.partition(".")
    member = re.match(r"\w+", rest)
    return member is None or index.field_type(_PATH_HEADS[head], member.group(0)) is not None
