"""What every static check family shares about one example: its blocks, prose, policy, index and findings."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..records import Example, Finding
from ..symbols import SymbolIndex
from .policy import CheckPolicy


@dataclass
class Block:
    """One fenced (or bare input) code block of an example."""

    lang: str  # "c", "asm", "diff" or "other"
    tag: str
    code: str
    start_line: int  # 1-based line of the first code line within its text
    where: str
    before: str  # prose just before the fence
    counterexample: bool = False
    cap: str | None = None  # maximum severity of findings from this block (user-supplied code); "skip": unchecked
    line_map: tuple[int, ...] | None = None  # code line i (0-based) -> line in its text, when not contiguous (diff)

    def at_line(self, code_line: int) -> str:
        """`line 12 of the output (fence 2)`: where line `code_line` of this block is in its example text."""
        text, _, fence = self.where.partition(" fence ")
        return f"line {self.text_line(code_line)} of the {text}" + (f" (fence {fence})" if fence else "")

    def text_line(self, code_line: int) -> int:
        """The line of the example text holding line `code_line` (1-based) of this block's code."""
        if self.line_map is not None and 0 < code_line <= len(self.line_map):
            return self.line_map[code_line - 1]
        return self.start_line + code_line - 1


@dataclass
class Context:
    example: Example
    index: SymbolIndex
    policy: CheckPolicy
    example_type: dict
    type_name: str
    prose: str = ""
    all_text: str = ""
    findings: list[Finding] = field(default_factory=list)
    _seen: set = field(default_factory=set)

    def add(self, code: str, message: str, where: str = "", cap: str | None = None) -> None:
        key = (code, message)
        if key not in self._seen:
            self._seen.add(key)
            self.findings.append(self.policy.finding(code, message, where, cap))
