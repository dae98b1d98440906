"""Read the decomp's own `CC_CHECK` command line out of a checkout's Makefile, without running make.

Running make on the decomp Makefile creates build folders and stops without a MIPS toolchain, so its variables
are evaluated here: assignments (`=`, `:=`, `?=`, `+=`), `ifeq`/`ifneq`/`ifdef`/`ifndef` chains and `$(VAR)`
references. `$(shell ...)` runs nothing: `echo X | tr A B` is emulated, every other command expands to "".
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_ASSIGN = re.compile(r"^\s*(?:export\s+|override\s+)*([A-Za-z_][\w.]*)\s*(::=|:=|\?=|\+=|=)\s*(.*?)\s*$")
_COND = re.compile(r"^\s*(else\s+)?(ifeq|ifneq|ifdef|ifndef)\b\s*(.*?)\s*$")
_TR = re.compile(r"^\s*echo\s+(.*?)\s*\|\s*tr\s+(\S+)\s+(\S+)\s*$")

# Used only for a piece the Makefile does not define (said so in CompileFlags.notes): the CC_CHECK of the
# decomp at the pinned commit (see /work/shared/COMPILER_NOTES.md).
DEFAULT_CC_CHECK = ("gcc -nostdinc -fno-builtin -fsyntax-only -funsigned-char -std=gnu90 -D_LANGUAGE_C "
                    "$(CPP_DEFINES) $(MIPS_BUILTIN_DEFS) $(GBI_DEFINES) $(INC) $(CHECK_WARNINGS) -m32")
DEFAULTS = {
    "MIPS_BUILTIN_DEFS": "-D_MIPS_ISA_MIPS2=2 -D_MIPS_ISA=_MIPS_ISA_MIPS2 -D_ABIO32=1 -D_MIPS_SIM=_ABIO32 "
                         "-D_MIPS_SZINT=32 -D_MIPS_SZLONG=32 -D_MIPS_SZPTR=32",
    "GBI_DEFINES": "-DF3DEX_GBI_2",
    "INC": "-Iinclude -Iinclude/libc -Isrc -I$(BUILD_DIR) -I. -I$(EXTRACTED_DIR)",
    "VERSION": "gc-eu-mq-dbg",
}
# What an answer's errors must be, whatever the Makefile says.
REQUIRED_ERRORS = ("-Werror=implicit-function-declaration", "-Werror=incompatible-pointer-types")
_DROP = frozenset(("-MD", "-MP", "-MMD"))


@dataclass(frozen=True)
class CompileFlags:
    """gcc and its arguments (without the input file), include folders made absolute; notes say what was assumed."""

    gcc: str
    args: tuple[str, ...]
    version: str
    notes: tuple[str, ...]


class _Vars:
    def __init__(self, overrides: dict[str, str]) -> None:
        self.values: dict[str, tuple[str, bool]] = {k: (v, False) for k, v in overrides.items()}
        self.fixed = frozenset(overrides)  # command-line style: the Makefile cannot change them

    def get(self, name: str) -> str:
        value, recursive = self.values.get(name, ("", False))
        return self.expand(value) if recursive else value

    def assign(self, name: str, op: str, text: str) -> None:
        if name in self.fixed:
            return
        if op == "?=":
            if name not in self.values:
                self.values[name] = (text, True)
        elif op in (":=", "::="):
            self.values[name] = (self.expand(text), False)
        elif op == "+=":
            old, recursive = self.values.get(name, ("", True))
            added = text if recursive else self.expand(text)
            self.values[name] = ((old + " " + added).strip(), recursive)
        else:
            self.values[name] = (text, True)

    def expand(self, text: str, depth: int = 0) -> str:
        if "$" not in text or depth > 20:
            return text
        out, i = [], 0
        while i < len(text):
            c = text[i]
            if c != "$" or i + 1 >= len(text):
                out.append(c)
                i += 1
                continue
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt in "({":
                close = ")" if nxt == "(" else "}"
                level, j = 1, i + 2
                while j < len(text) and level:
                    level += {nxt: 1, close: -1}.get(text[j], 0)
                    j += 1
                out.append(self._reference(text[i + 2 : j - 1], depth))
                i = j
            else:
                out.append(self.get(nxt))
                i += 2
        return "".join(out)

    def _reference(self, body: str, depth: int) -> str:
        name, _, arg = body.partition(" ")
        if not arg:
            return self.get(self.expand(name, depth + 1))
        if name == "shell":
            m = _TR.match(self.expand(arg, depth + 1))
            if m:
                src, dst = _tr_set(m.group(2)), _tr_set(m.group(3))
                dst = dst + dst[-1:] * (len(src) - len(dst))
                return m.group(1).translate(str.maketrans(src, dst[: len(src)]))
        return ""  # other functions (wildcard, dir, error, ...) are not needed for the compiler flags


def _tr_set(spec: str) -> str:
    spec = spec.strip("'\"")
    out: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def _condition(vars_: _Vars, kind: str, arg: str) -> bool:
    if kind in ("ifdef", "ifndef"):
        defined = bool(vars_.get(vars_.expand(arg).strip()))
        return defined if kind == "ifdef" else not defined
    arg = arg.strip()
    if arg.startswith("("):
        a, _, b = arg[1:-1].partition(",")
    else:
        parts = shlex.split(arg)
        a, b = (parts + ["", ""])[:2]
    equal = vars_.expand(a).strip() == vars_.expand(b).strip()
    return equal if kind == "ifeq" else not equal


def evaluate_makefile(text: str, overrides: dict[str, str] | None = None, include_dir: Path | None = None) -> _Vars:
    """The Makefile's variables as make would see them at the end of parsing (rules and recipes ignored)."""
    vars_ = _Vars(overrides or {})
    # stack of (this branch active, some branch of the chain already taken, parent active)
    stack: list[tuple[bool, bool, bool]] = []
    lines = _logical_lines(text)
    for line in lines:
        if line.startswith("\t"):
            continue  # recipe
        stripped = line.split("#", 1)[0].rstrip() if "#" in line else line.rstrip()
        active = stack[-1][0] if stack else True
        m = _COND.match(stripped)
        if m and not m.group(1):
            now = active and _condition(vars_, m.group(2), m.group(3))
            stack.append((now, now, active))
            continue
        if m or stripped.strip() == "else":
            if stack:
                _, taken, parent = stack.pop()
                now = parent and not taken and (not m or _condition(vars_, m.group(2), m.group(3)))
                stack.append((now, taken or now, parent))
            continue
        if stripped.strip() == "endif":
            if stack:
                stack.pop()
            continue
        if not active:
            continue
        inc = re.match(r"^\s*-?include\s+(\S+)\s*$", stripped)
        if inc and include_dir is not None:
            path = include_dir / vars_.expand(inc.group(1))
            if path.is_file():
                for inner in _logical_lines(path.read_text(encoding="utf-8", errors="replace")):
                    am = _ASSIGN.match(inner)
                    if am:
                        vars_.assign(am.group(1), am.group(2), am.group(3))
            continue
        am = _ASSIGN.match(stripped)
        if am:
            vars_.assign(am.group(1), am.group(2), am.group(3))
    return vars_


def _logical_lines(text: str) -> list[str]:
    return text.replace("\\\n", " ").split("\n")


def read_cc_check(checkout: Path, version: str | None = None) -> CompileFlags:
    """The CC_CHECK command of the checkout's Makefile, include folders absolute, dependency-file flags dropped."""
    notes: list[str] = []
    makefile = checkout / "Makefile"
    text = makefile.read_text(encoding="utf-8", errors="replace") if makefile.is_file() else ""
    if not text:
        notes.append("no Makefile: documented default CC_CHECK flags used")
    overrides = {"VERSION": version} if version else {}
    # CC_CHECK is defined for the IDO build (the decomp's default); ask for it whatever .make_options.mk says
    overrides["COMPILER"] = "ido"
    vars_ = evaluate_makefile(text, overrides, checkout)
    for name, default in DEFAULTS.items():
        if not vars_.get(name).strip():
            vars_.assign(name, "=", default)
            if text:
                notes.append(f"Makefile has no {name}: default `{default}` used")
    command = vars_.get("CC_CHECK").strip()
    if not command or command.startswith("@"):
        command = vars_.expand(DEFAULT_CC_CHECK)
        if text:
            notes.append("Makefile has no CC_CHECK: the documented default command used")
    words = shlex.split(command)
    gcc, args = words[0], []
    for word in words[1:]:
        if word in _DROP or word.startswith("-MF"):
            continue
        if word.startswith("-I"):
            path = Path(word[2:])
            word = "-I" + str(path if path.is_absolute() else (checkout / path).resolve())
        args.append(word)
    for flag in REQUIRED_ERRORS:
        if flag not in args:
            args.append(flag)
    return CompileFlags(gcc, tuple(args), vars_.get("VERSION"), tuple(notes))
