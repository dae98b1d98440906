"""The static check policy of the validate stage, compiled once from configs/checks.yaml: severities, allowlists,
ranges, mnemonics and word lists as ready-to-match objects. Every check family (and the compiler layer) reads it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..records import Finding

_TABLE_ID = re.compile(r"\b[A-Z][A-Z0-9_]*\b")

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


def trie_regex(words: Iterable[str]) -> str:
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


class Words:
    """Case-insensitive search for any of a list of words or phrases. The text is casefolded and matched against
    a case-sensitive prefix trie: an IGNORECASE alternation (with a lookbehind first) is ~10x slower in `re`."""

    __slots__ = ("_rx", "_whole")

    def __init__(self, words: Iterable[str], *, whole_words: bool = False) -> None:
        folded = sorted({w.casefold() for w in words})
        self._whole = whole_words
        if not folded:
            self._rx = re.compile(r"(?!x)x")
        else:
            body = trie_regex(folded)
            self._rx = re.compile(rf"(?:{body})(?!\w)" if whole_words else body)

    def search(self, text: str) -> re.Match | None:
        """The first match; for whole words, the word start is checked here rather than with a lookbehind in the
        pattern (`re` can skip ahead to the words' first characters only when the pattern opens with them)."""
        folded = text.casefold()
        m = self._rx.search(folded)
        if self._whole:
            while m is not None and m.start() > 0 and (folded[m.start() - 1].isalnum() or folded[m.start() - 1] == "_"):
                m = self._rx.search(folded, m.start() + 1)
        return m


_IDENT = re.compile(r"[A-Za-z_]\w*")  # an identifier as the checks tokenise text


class Tokens:
    """Which of a fixed set of identifiers occur in a text as whole tokens of `_IDENT.findall(text)`, found with
    one prefix-trie scan: tokenising every word of a text to intersect with a few hundred names is ~5x slower."""

    __slots__ = ("_rx", "key", "words")

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(w for w in words if _IDENT.fullmatch(w))
        self.key = " ".join(sorted(self.words))  # names the word list (e.g. for SymbolIndex.derived)
        self._rx = re.compile(rf"(?:{trie_regex(sorted(self.words))})(?!\w)")

    def found(self, text: str) -> set[str]:
        out: set[str] = set()
        for m in self._rx.finditer(text):
            word = m.group()
            if word not in out and _token_start(text, m.start()):  # (a word found once needs no second look)
                out.add(word)
        return out


def _token_start(text: str, start: int) -> bool:
    """Whether `_IDENT.findall` starts a token at `start`: it skips the digits (and other non-ASCII word characters)
    that open a run of word characters, so only an [A-Za-z_] of the same run before `start` rules it out."""
    i = start - 1
    while i >= 0 and (text[i].isalnum() or text[i] == "_"):
        if text[i] == "_" or (text[i].isascii() and text[i].isalpha()):
            return False
        i -= 1
    return True


@dataclass(frozen=True)
class AddressRange:
    name: str
    start: int
    end: int

    def __contains__(self, value: int) -> bool:
        return self.start <= value <= self.end


@dataclass(frozen=True)
class CheckPolicy:
    """configs/checks.yaml compiled once (see `compile_policy`); immutable and shared by every check."""

    severity: dict[str, str]
    known_calls: frozenset[str]
    macro_prefixes: tuple[str, ...]
    min_chars: dict[str, int]
    input_check: bool
    input_max: str
    input_skip: frozenset[str]
    counterexample: Words
    fix_words: Words
    c_tags: frozenset[str]
    asm_tags: frozenset[str]
    diff_tags: frozenset[str]
    other_tags: frozenset[str]
    ranges: tuple[AddressRange, ...]
    hardware: tuple[AddressRange, ...]
    vram: AddressRange | None
    vram_words: Words
    ram_claim: Words
    not_ram_words: Words
    mnemonics: frozenset[str]
    registers: frozenset[str]
    directives: frozenset[str]
    branches: frozenset[str]
    modify_words: Words
    delay_words: Words
    era_old: frozenset[str]
    era_new: frozenset[str]
    era_map: dict[str, str]
    era_words: Tokens  # era_old | era_new
    history_words: Words
    var_types: dict[str, str]
    member_types: dict[str, str]
    call_types: dict[str, str]
    known_constants: frozenset[str]
    min_family: int
    table_prefixes: tuple[str, ...]
    table_words: tuple[str, ...]
    removed_headers: dict[str, str]
    dead_header_prefixes: tuple[str, ...]
    keep_objects: tuple[str, ...]
    asset_kinds: frozenset[str]
    checks: dict[str, Any]  # the raw mapping, for the scorer's penalties

    def table_names(self, text: str) -> frozenset[str]:
        """The ids an answer adds to a decomp table (`ACTOR_EN_MY_NPC` when the text names DEFINE_ACTOR or the
        actor table): the answer's own constants, though they look like the decomp's."""
        if not any(word in text for word in self.table_words):
            return frozenset()
        return frozenset(w for w in _TABLE_ID.findall(text) if w.startswith(self.table_prefixes))

    def finding(self, code: str, message: str, where: str = "", cap: str | None = None) -> Finding:
        """A Finding with the severity checks.yaml gives `code`, lowered to `cap` for code the user supplied."""
        severity = self.severity.get(code, "warning")
        if cap is not None and cap in SEVERITY_RANK and SEVERITY_RANK[severity] > SEVERITY_RANK[cap]:
            severity = cap
        return Finding(code, severity, message, where)


def compile_policy(checks: dict | CheckPolicy) -> CheckPolicy:
    """Compile a checks.yaml mapping (already validated against schemas/checks.schema.json); a policy passes through."""
    if isinstance(checks, CheckPolicy):
        return checks
    allow = checks.get("allow", {})
    fences = checks.get("fences", {})
    ram = checks.get("ram", {})
    asm = checks.get("asm", {})
    naming = checks.get("naming", {})
    inp = checks.get("input", {})
    assets = checks.get("assets", {})
    constants = checks.get("constants", {})
    includes = checks.get("includes", {})
    era_old: set[str] = set()
    era_new: set[str] = set()
    era_map: dict[str, str] = {}
    for pair in naming.get("era_pairs", []):
        era_old.update(pair["old"])
        era_new.update(pair["new"])
        era_map.update(zip(pair["old"], pair["new"], strict=False))
    vram = ram.get("vram_range")
    return CheckPolicy(
        severity={code: spec["severity"] for code, spec in checks.get("findings", {}).items()},
        known_calls=frozenset(allow.get("libultra", []) + allow.get("libc", []) + allow.get("macros", [])),
        macro_prefixes=tuple(allow.get("macro_prefixes", [])),
        min_chars=dict(checks.get("min_output_chars", {"default": 0})),
        input_check=inp.get("check", True),
        input_max=inp.get("max_severity", "warning"),
        input_skip=frozenset(inp.get("skip_types", [])),
        counterexample=Words(checks.get("counterexample_words", []), whole_words=True),
        fix_words=Words(checks.get("fix_words", []), whole_words=True),
        c_tags=frozenset(t.lower() for t in fences.get("c", ["c"])),
        asm_tags=frozenset(t.lower() for t in fences.get("asm", ["asm"])),
        diff_tags=frozenset(t.lower() for t in fences.get("diff", ["diff", "patch"])),
        other_tags=frozenset(t.lower() for t in fences.get("other", [])),
        ranges=tuple(AddressRange(r.get("name", ""), r["start"], r["end"]) for r in ram.get("ranges", [])),
        hardware=tuple(AddressRange(r.get("name", ""), r["start"], r["end"]) for r in ram.get("hardware_ranges", [])),
        vram=AddressRange("VRAM", vram["start"], vram["end"]) if vram else None,
        vram_words=Words(ram.get("vram_context_words", [])),
        ram_claim=Words(ram.get("ram_claim_words", []), whole_words=True),
        not_ram_words=Words(ram.get("not_ram_words", []), whole_words=True),
        mnemonics=frozenset(str(m).lower() for m in asm.get("mnemonics", [])),
        registers=frozenset(str(r).lower() for r in asm.get("registers", [])),
        directives=frozenset(str(d).lower() for d in asm.get("directives", [])),
        branches=frozenset(asm.get("branch_mnemonics", ["j", "jal", "jr", "jalr"])),
        modify_words=Words(asm.get("modify_words", [])),
        delay_words=Words(asm.get("delay_slot_words", ["delay slot"])),
        era_old=frozenset(era_old),
        era_new=frozenset(era_new),
        era_map=era_map,
        era_words=Tokens(era_old | era_new),
        history_words=Words(naming.get("history_words", [])),
        var_types=dict(checks.get("types", {}).get("variables", {})),
        member_types=dict(checks.get("types", {}).get("members", {})),
        call_types=dict(checks.get("types", {}).get("calls", {})),
        known_constants=frozenset(allow.get("constants", [])),
        min_family=int(constants.get("min_family", 3)),
        table_prefixes=tuple(constants.get("table_prefixes", [])),
        table_words=tuple(constants.get("table_words", [])),
        removed_headers=dict(includes.get("removed", {})),
        dead_header_prefixes=tuple(includes.get("dead_prefixes", [])),
        keep_objects=tuple(assets.get("keep_objects", [])),
        asset_kinds=frozenset(assets.get("checked_kinds", [])),
        checks=checks,
    )
