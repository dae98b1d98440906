"""Layer 1 static checks of the validate stage: runs each check family over one example against the decomp
SymbolIndex and the compiled CheckPolicy.

Families: markdown (fences, shape), cstructure (preprocessing, parsing, C_SYNTAX), names (calls, constants,
includes, member chains, assets, naming era), assembly (MIPS), addresses (N64 RAM). The policy is data in
configs/checks.yaml, compiled once by `compile_policy`; this module only drives the families.
"""

from __future__ import annotations

from ..records import Example, Finding
from ..symbols import SymbolIndex
from .addresses import check_addresses
from .assembly import check_assembly
from .context import Block, Context
from .cstructure import parse_blocks
from .markdown import answer_blocks, diff_as_c, user_blocks
from .markdown import split_fences as _split_fences
from .names import NameChecks, check_naming
from .policy import CheckPolicy, compile_policy

__all__ = ["CheckPolicy", "compile_policy", "run_static_checks", "split_fences"]

split_fences = _split_fences


def run_static_checks(example: Example, index: SymbolIndex, checks: CheckPolicy | dict, *,
                      example_type: dict | None = None) -> list[Finding]:
    """All static L1 findings of one example (every assistant turn of a dialogue), in a stable order.

    `checks` is a CheckPolicy (compile it once with `compile_policy`) or the checks.yaml mapping (compiled per call)."""
    policy = compile_policy(checks)
    example_type = example_type or {}
    ctx = Context(example, index, policy, example_type, example_type.get("name") or example.type or "")
    ex = example
    answers = answer_texts(ex)
    users = [(f"turn {i + 1}", t.content) for i, t in enumerate(ex.turns) if t.role != "assistant"]
    blocks, prose_parts = answer_blocks(ctx, answers)
    supplied = user_blocks(ctx, [("input", ex.input), *users])
    ctx.prose = "\n".join(prose_parts)
    ctx.all_text = "\n".join(t for _, t in answers)

    diffs = [d for d in (diff_as_c(b) for b in blocks if b.lang == "diff") if d is not None]
    c_blocks = [b for b in blocks + diffs + supplied if b.lang == "c" and b.code.strip()]
    if c_blocks:
        parsed, facts = parse_blocks(ctx, c_blocks)
        NameChecks(ctx, parsed, facts).run()
    answer_code = [b for b in blocks + diffs if b.lang in ("c", "other") and not b.counterexample]
    check_naming(ctx, "\n".join(b.code for b in answer_code))
    check_assembly(ctx, blocks + supplied)
    check_addresses(ctx, ctx.all_text, "\n".join(b.code for b in answer_code if b.lang == "c"))
    return ctx.findings


def answer_texts(example: Example) -> list[tuple[str, str]]:
    """(where, text) of the answer: the output, or every assistant turn of a dialogue."""
    if example.turns:
        return [(f"turn {i + 1}", t.content) for i, t in enumerate(example.turns) if t.role == "assistant"]
    return [("output", example.output)]


def answer_code_blocks(example: Example, policy: CheckPolicy) -> list[Block]:
    """The fenced code blocks of the answer (for a later layer such as the compiler)."""
    ctx = Context(example, SymbolIndex({}), policy, {}, "")
    blocks, _ = answer_blocks(ctx, answer_texts(example))
    return blocks
