"""Markdown shape of an answer for the static checks: code fences (their language and whether they quote a
counterexample), unclosed fences, empty or short outputs, missing code or input."""

from __future__ import annotations

import re

from .context import Block, Context
from .policy import CheckPolicy

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^\s`{]*)")

Fence = tuple[str, str, int, str]  # (tag, code, first code line, prose line before)


def split_fences(text: str) -> tuple[list[Fence], str, int | None]:
    """(fences as (tag, code, first line, prose before), prose outside fences, line of an unclosed fence)."""
    if "```" not in text and "~~~" not in text:
        return [], text, None  # no line can open a fence
    fences: list[Fence] = []
    prose: list[str] = []
    body: list[str] = []
    open_mark: str | None = None
    tag, start, before = "", 0, ""
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


def is_counterexample(before: str, policy: CheckPolicy) -> bool:
    """A fence is a quoted bad example when the sentence introducing it says so, unless it announces a fix."""
    last = last_sentence(before)
    return bool(policy.counterexample.search(last)) and not policy.fix_words.search(last)


def last_sentence(line: str) -> str:
    """The last sentence of one line (the prose line before a fence): the text after the last run of blanks that
    follows `.`, `!` or `?`, found from the end (a regex split would try a lookbehind at every character)."""
    line = line.strip()
    end = len(line)
    while True:
        stop = max(line.rfind(".", 0, end), line.rfind("!", 0, end), line.rfind("?", 0, end))
        if stop < 0:
            return line
        if line[stop + 1: stop + 2].isspace():
            return line[stop + 1:].lstrip()
        end = stop


_ASM_LOOK = re.compile(r"^\s*(?:[\w.]+:\s*)?[a-z][a-z0-9.]*\s+\$?(?:zero|at|v[01]|a[0-3]|t\d|s\d|sp|ra|fp|gp|f\d{1,2})\b", re.M)
_C_LOOK = re.compile(r";\s*(?://.*)?$|^\s*#\s*(?:include|define|if)|^\s*(?:typedef|struct|void|s8|u8|s16|u16|s32|u32|f32|static)\b"
                     r"|->|\)\s*\{\s*$", re.M)


def classify(tag: str, code: str, policy: CheckPolicy) -> str:
    """"c", "asm", "diff" or "other": by the fence tag, or by the look of untagged code."""
    if tag in policy.c_tags:
        return "c"
    if tag in policy.asm_tags:
        return "asm"
    if tag in policy.diff_tags:
        return "diff"
    if tag:
        return "other"
    if len(_ASM_LOOK.findall(code)) >= 2 or (_ASM_LOOK.search(code) and ";" not in code):
        return "asm"
    return "c" if _C_LOOK.search(code) else "other"


def answer_blocks(ctx: Context, answers: list[tuple[str, str]]) -> tuple[list[Block], list[str]]:
    """The code blocks and prose of the assistant texts, reporting the Markdown shape findings on the way."""
    policy, ex = ctx.policy, ctx.example
    blocks: list[Block] = []
    prose_parts: list[str] = []
    has_code = False
    min_chars = policy.min_chars.get(ctx.type_name, policy.min_chars.get("default", 0))
    for where, text in answers:
        if not text.strip():
            ctx.add("EMPTY_OUTPUT", f"{where} is empty", where)
            continue
        fences, prose, unclosed = split_fences(text)
        if unclosed is not None:
            ctx.add("UNCLOSED_FENCE", f"code fence opened at line {unclosed} of {where} is never closed", where)
        prose_parts.append(prose)
        for i, (tag, code, start, before) in enumerate(fences, 1):
            has_code = True
            lang = classify(tag, code, policy)
            blocks.append(Block(lang, tag, code, start, f"{where} fence {i}", before,
                                counterexample=is_counterexample(before, policy)))
    if not answers:
        ctx.add("EMPTY_OUTPUT", "no assistant turn", "output")
    # a dialogue may have short turns; its length is that of all assistant turns together
    total = sum(len(t.strip()) for _, t in answers)
    if 0 < total < min_chars:
        ctx.add("TOO_SHORT", f"the output has {total} characters, fewer than {min_chars}", "output")
    if ctx.example_type.get("requires_code_in_output") and not has_code and any(t.strip() for _, t in answers):
        ctx.add("MISSING_CODE", "this type requires code in the output and there is no code fence", "output")
    if ctx.example_type.get("carries_input") and not ex.turns and not ex.input.strip():
        ctx.add("MISSING_INPUT", "this type carries an input and the input is empty", "input")
    return blocks, prose_parts


def user_blocks(ctx: Context, texts: list[tuple[str, str]]) -> list[Block]:
    """Code the user supplies (input, user turns): checked with findings capped, or not at all ("skip")."""
    policy = ctx.policy
    check = policy.input_check and ctx.type_name not in policy.input_skip
    cap = policy.input_max if check else "skip"
    out = []
    for where, text in texts:
        if not text.strip():
            continue
        fences, _, _ = split_fences(text)
        if fences:
            for i, (tag, code, start, before) in enumerate(fences, 1):
                out.append(Block(classify(tag, code, policy), tag, code, start, f"{where} fence {i}", before, cap=cap))
        elif where == "input":
            kind = ctx.example_type.get("input_kind")
            lang = {"c_code": "c", "mips_asm": "asm"}.get(kind or "") or classify("", text, policy)
            if lang == "c" and classify("", text, policy) == "asm":
                lang = "asm"  # the user pasted assembly where the type expects C: check it as assembly
            out.append(Block(lang, "", text, 1, "input", "", cap=cap))
    return out


def diff_as_c(block: Block) -> Block | None:
    """The lines a ```diff/```patch fence adds (and its context lines), as a C block mapped to their text lines;
    None when the diff touches no C file."""
    lines = block.code.split("\n")
    files = [ln[4:].strip() for ln in lines if ln.startswith(("+++ ", "--- "))]
    if files and not any(f.endswith((".c", ".h")) for f in files):
        return None
    kept: list[str] = []
    line_map: list[int] = []
    for n, ln in enumerate(lines):
        if ln.startswith(("+++", "---", "@@", "diff ", "index ")) or ln.startswith("-"):
            continue
        kept.append(ln[1:] if ln[:1] in "+ " else ln)
        line_map.append(block.start_line + n)
    if not kept:
        return None
    return Block("c", block.tag, "\n".join(kept), block.start_line, block.where, block.before,
                 counterexample=block.counterexample, cap=block.cap, line_map=tuple(line_map))
