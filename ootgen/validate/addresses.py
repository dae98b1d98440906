"""N64 addresses for the static checks: a KSEG0/KSEG1 address beyond the 8 MB of RDRAM, an overlay "loaded"
outside RAM, a RAM address written below 0x80000000, and a C pointer made from such a number."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

from .context import Context
from .policy import CheckPolicy

# literal first (the lookbehind after it) so that `re` can skip ahead to candidates
_HEX = re.compile(r"0(?<!\w0)[xX]([89ABab][0-9A-Fa-f]{7})(?!\w)")
_PROSE_ADDR = re.compile(r"[Aa](?<!\w[Aa])[Dd][Dd][Rr][Ee][Ss][Ss](?:[Ee][Ss])?\s+(?:[Oo][Ff]\s+|[Aa][Tt]\s+)?"
                         r"([89ABab][0-9A-Fa-f]{7})\b")
_LOW_HEX = re.compile(r"0(?<!\w0)[xX]([0-7][0-9A-Fa-f]{7})(?!\w)")
_POINTER_CAST = re.compile(r"\(\s*(?:const\s+|volatile\s+)*[A-Za-z_]\w*\s*\*+\s*\)\s*\(?\s*0[xX]([0-9A-Fa-f]{5,8})(?![\w.])")
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?](?=\s)|\n|$)")


def _sentence_at(text: str, start: int, end: int) -> str:
    left = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start))
    right_dot, right_nl = text.find(". ", end), text.find("\n", end)
    right = min(x for x in (right_dot, right_nl, len(text)) if x >= 0)
    return text[left + 1: right]


def _ranges(policy: CheckPolicy) -> str:
    return ", ".join(f"{r.name} 0x{r.start:08X}-0x{r.end:08X}" for r in policy.ranges)


def _prose_addresses(text: str) -> Iterable[re.Match]:
    """`_PROSE_ADDR.finditer(text)`, tried only where the casefolded text says "address" (the pattern starts with a
    character class, so `re` would try it at every a/A of the prose)."""
    folded = text.casefold()  # (casefold: re.I also matches e.g. the long s)
    if "address" not in folded:
        return ()
    if len(folded) != len(text):  # a character folded to several: offsets differ, scan the whole text
        return _PROSE_ADDR.finditer(text)
    found = []
    at = folded.find("address")
    while at >= 0:
        m = _PROSE_ADDR.match(text, at)  # (the lookbehind still sees the text before `at`)
        if m is not None:
            found.append(m)
        at = folded.find("address", at + 1)
    return found


def check_addresses(ctx: Context, text: str, c_code: str) -> None:
    policy = ctx.policy
    upper = None
    hex_matches = _HEX.finditer(text) if "0x" in text or "0X" in text else ()
    for m in itertools.chain(hex_matches, _prose_addresses(text)):
            value = int(m.group(1), 16)
            if any(value in r for r in policy.ranges) or any(value in r for r in policy.hardware):
                continue
            if policy.vram is not None and value in policy.vram:
                # overlay code is linked (not loaded) at these addresses: fine when the text says so
                context = text[max(0, m.start() - 80): m.end() + 40]
                if policy.vram_words.search(context):
                    continue
                if upper is None:
                    upper = text.upper()
                if f"_{m.group(1).upper()}" in upper:
                    continue  # an overlay link (VRAM) address or a func_/D_ symbol's address
            ctx.add("BAD_RAM_ADDRESS", f"0x{value:08X} is outside N64 RAM ({_ranges(policy)})", "output")
    if "0x" in text or "0X" in text:
        for m in _LOW_HEX.finditer(text):
            sentence = _sentence_at(text, m.start(), m.end())
            near = sentence[max(0, sentence.find(m.group(0)) - 24): sentence.find(m.group(0)) + 16]
            if policy.ram_claim.search(near) and not policy.not_ram_words.search(near):
                value = int(m.group(1), 16)
                ctx.add("BAD_RAM_ADDRESS", f"0x{value:08X} is given as a RAM address, but the CPU sees RAM at "
                        f"0x80000000 and up ({_ranges(policy)})", "output")
    for m in _POINTER_CAST.finditer(c_code) if "0x" in c_code or "0X" in c_code else ():
        value = int(m.group(1), 16)
        if 0x10000 <= value <= 0xFFFFFF or 0x10000000 <= value < 0x80000000:
            ctx.add("BAD_RAM_ADDRESS", f"a pointer to 0x{value:08X} is not a CPU address of RAM ({_ranges(policy)}); "
                    "a physical address needs PHYSICAL_TO_VIRTUAL", "output")
