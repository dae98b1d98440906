"""MIPS assembly for the static checks: R4300 mnemonics, register names, and a changed branch or jump whose
delay slot the answer never mentions."""

from __future__ import annotations

import re

from .context import Block, Context

_ASM_COMMENT = re.compile(r"/\*.*?\*/|(?:#|//|;).*$")
_LABEL = re.compile(r"^\s*[\w.$]+:")
_DOLLAR = re.compile(r"\$([A-Za-z0-9]+)")
_BARE_REG = re.compile(r"^(?:[atvsk]\d+|f\d+|r\d+)$")
_OPERAND_SPLIT = re.compile(r"[\s,()]+")


def check_assembly(ctx: Context, blocks: list[Block]) -> None:
    policy = ctx.policy
    branch_in_answer = False
    for b in blocks:
        if b.lang != "asm" or b.cap == "skip":
            continue
        for n, raw in enumerate(b.code.split("\n"), b.start_line):
            line = _ASM_COMMENT.sub("", raw)
            while True:
                m = _LABEL.match(line)
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
                ctx.add("ASM_BAD_MNEMONIC", f"`{parts[0]}` is not an R4300 instruction ({b.where} line {n})", b.where, b.cap)
            elif b.cap is None and not b.counterexample and (mnemonic in policy.branches or (mnemonic.startswith("b") and mnemonic != "break")):
                branch_in_answer = True
            if len(parts) < 2:
                continue
            operands = parts[1]
            for reg in _DOLLAR.findall(operands):
                if reg.lower() not in policy.registers:
                    ctx.add("ASM_BAD_REGISTER", f"`${reg}` is not a MIPS register ({b.where} line {n})", b.where, b.cap)
            for tok in _OPERAND_SPLIT.split(operands):
                if tok and _BARE_REG.match(tok.lower()) and tok.lower() not in policy.registers:
                    ctx.add("ASM_BAD_REGISTER", f"`{tok}` is not a MIPS register ({b.where} line {n})", b.where, b.cap)
    if branch_in_answer and not policy.delay_words.search(ctx.all_text):
        changing = ctx.type_name == "code_modification" or policy.modify_words.search(ctx.example.instruction) \
            or policy.modify_words.search(ctx.prose)
        if changing:
            ctx.add("ASM_DELAY_SLOT", "the answer changes code with a branch or jump and never mentions the delay slot", "output")
