"""The Jinja2 environment prompt templates run in: sandboxed, confined to their folders, bounded in size and work.

Jinja2's SandboxedEnvironment blocks unsafe attributes but not work: it folds constant expressions at compile
time (`{{ 10 ** 100000000 }}` hangs while loading) and lets `'x' * 3000000000` allocate gigabytes. Here nothing
is folded at compile time; every arithmetic operator, `~`, string method, filter and loop is checked against
ootgen.limits before it runs, and the loader reads only regular files whose real path stays in its folder.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import os
import re
import string
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

from .limits import LIMITS
from .yamlfile import read_text


class TemplateLimitExceeded(SecurityError):
    """A template operation would pass one of the limits in ootgen.limits."""


# --- the loader ------------------------------------------------------------------------------------------


class ConfinedLoader(jinja2.BaseLoader):
    """Loads `name` from the first folder that has it; the file's real path must stay inside that folder."""

    def __init__(self, folders: list[Path]):
        self.folders = [Path(folder) for folder in folders]

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        parts = jinja2.loaders.split_template_path(template)  # refuses '..' and absolute names
        for folder in self.folders:
            path = folder.joinpath(*parts)
            if not os.path.lexists(path):
                continue
            text = read_text(path, "template", max_bytes=LIMITS.template_file_bytes, folder=folder)
            mtime = path.stat().st_mtime
            return text, str(path), lambda path=path, mtime=mtime: path.exists() and path.stat().st_mtime == mtime
        raise jinja2.TemplateNotFound(template)

    def list_templates(self) -> list[str]:
        return sorted({str(p.relative_to(folder)) for folder in self.folders for p in folder.rglob("*") if p.is_file()})

    def digest(self) -> str:
        """Hash of every file in the folders (each checked like a template it could include)."""
        blob = hashlib.sha256()
        for folder in self.folders:
            for path in sorted(folder.rglob("*")):
                if path.is_file() or path.is_symlink():
                    blob.update(str(path.relative_to(folder)).encode())
                    blob.update(read_text(path, "template", max_bytes=LIMITS.template_file_bytes, folder=folder).encode())
        return blob.hexdigest()[:16]


# --- compile: no constant folding, every loop and `~` goes through the environment ------------------------


class _NoFoldCodeGenerator(CodeGenerator):
    def _output_child_to_const(self, node: nodes.Expr, frame: Any, finalize: Any) -> str:
        if isinstance(node, nodes.TemplateData):
            return super()._output_child_to_const(node, frame, finalize)
        raise nodes.Impossible()  # evaluated at render time, inside the limits


def _environment_call(method: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    return nodes.Call(nodes.EnvironmentAttribute(method, lineno=lineno), args, [], None, None, lineno=lineno)


class _RouteThroughEnvironment(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.For:
        self.generic_visit(node)
        node.iter = _environment_call("bounded_iter", [node.iter], node.lineno)  # type: ignore[list-item]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Call:
        self.generic_visit(node)
        return _environment_call("bounded_concat", [nodes.List(list(node.nodes), lineno=node.lineno)], node.lineno)


# --- render-time budget -----------------------------------------------------------------------------------


class _Budget:
    """What one render may still do: range/loop steps and characters built."""

    def __init__(self) -> None:
        self.steps = LIMITS.template_loop_steps
        self.output = LIMITS.template_output_chars


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("ootgen_template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:
        budget = _Budget()
        _BUDGET.set(budget)
    return budget


class BoundedTemplate(jinja2.Template):
    """Renders with a fresh budget and stops as soon as the output passes its limit."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        token = _BUDGET.set(_Budget())
        try:
            return "".join(self.generate(*args, **kwargs))
        finally:
            _BUDGET.reset(token)

    def generate(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        budget = _budget()
        for chunk in super().generate(*args, **kwargs):
            budget.output -= len(chunk)
            if budget.output < 0:
                raise TemplateLimitExceeded(f"the rendered prompt is longer than {LIMITS.template_output_chars} characters")
            yield chunk


# --- size checks ------------------------------------------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


def _refuse(what: str) -> TemplateLimitExceeded:
    return TemplateLimitExceeded(what + " (see README, Limits)")


def _check_length(what: str, length: int, *, items: bool = False) -> None:
    limit = LIMITS.template_sequence_items if items else LIMITS.template_string_chars
    if length > limit:
        unit = "items" if items else "characters"
        raise _refuse(f"{what} would build {length} {unit}, more than the {limit} allowed")


def _check_value(what: str, value: Any) -> Any:
    if isinstance(value, str):
        _check_length(what, len(value))
    elif isinstance(value, (list, tuple)):
        _check_length(what, len(value), items=True)
    elif isinstance(value, int) and value.bit_length() > LIMITS.template_int_bits:
        raise _refuse(f"{what} made an integer of {value.bit_length()} bits, more than the {LIMITS.template_int_bits} allowed")
    return value


def _check_width(what: str, width: Any) -> None:
    if isinstance(width, int) and width > LIMITS.template_string_chars:
        raise _refuse(f"{what} with width {width}, more than the {LIMITS.template_string_chars} characters allowed")


def _check_percent_format(what: str, text: str) -> None:
    for match in _PERCENT_SPEC.finditer(text):
        for number in match.groups():
            if number == "*":
                raise _refuse(f"{what}: '*' widths are not allowed in templates")
            if number is not None:
                _check_width(what, int(number))


def _check_format_spec(what: str, text: str) -> None:
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # str.format raises the same error itself
    for _, _, spec, _ in fields:
        if not spec:
            continue
        if "{" in spec:
            raise _refuse(f"{what}: nested format specs are not allowed in templates")
        for number in _DIGITS.findall(spec):
            _check_width(what, int(number))


def _estimate_replace(what: str, text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        hits = len(text) + 1 if old == "" else text.count(old)
        _check_length(what, len(text) + hits * max(0, len(new) - len(old)))


def _estimate_join(what: str, items: Any, separator: Any) -> None:
    if isinstance(items, (list, tuple)) and all(isinstance(item, str) for item in items):
        gap = len(separator) if isinstance(separator, str) else 0
        _check_length(what, sum(map(len, items)) + gap * max(0, len(items) - 1))


def _check_binop(operator: str, left: Any, right: Any) -> None:
    what = f"'{operator}'"
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        bits = (abs(left).bit_length() - 1) * right
        if bits > LIMITS.template_int_bits:
            raise _refuse(f"'**' would make an integer of about {bits} bits, more than the {LIMITS.template_int_bits} allowed")
    elif operator == "*" and ints:
        bits = left.bit_length() + right.bit_length()
        if bits > LIMITS.template_int_bits + 1:
            raise _refuse(f"'*' would make an integer of about {bits} bits, more than the {LIMITS.template_int_bits} allowed")
    elif operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
                _check_length(what, len(sequence) * max(0, count), items=not isinstance(sequence, str))
    elif operator == "+":
        for kind in (str, (list, tuple)):
            if isinstance(left, kind) and isinstance(right, kind):
                _check_length(what, len(left) + len(right), items=kind is not str)
    elif operator == "%" and isinstance(left, str):
        _check_percent_format(what, left)


_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill"}


def _check_method_call(method: Any, args: tuple, kwargs: dict) -> None:
    owner, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(owner, str):
        return
    what = f"str.{name}()"
    if name in _WIDTH_METHODS and args:
        _check_width(what, args[0])
    elif name == "expandtabs":
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int):
            _check_length(what, len(owner) * max(1, size))
    elif name == "replace" and len(args) >= 2:
        _estimate_replace(what, owner, args[0], args[1])
    elif name == "join" and args:
        _estimate_join(what, list(args[0]) if isinstance(args[0], (list, tuple)) else args[0], owner)


def _guard_filter(name: str, function: Callable) -> Callable:
    """Filters are called directly by compiled templates: check their arguments and results here."""
    what = f"filter '{name}'"

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        values = [a for a in args if not isinstance(a, (jinja2.Environment, jinja2.runtime.Context, jinja2.nodes.EvalContext))]
        value = values[0] if values else None
        rest = values[1:]
        if name == "center":
            _check_width(what, rest[0] if rest else kwargs.get("width"))
        elif name == "indent":
            width = rest[0] if rest else kwargs.get("width", 4)
            lines = str(value).count("\n") + 1
            pad = width if isinstance(width, int) else len(str(width))
            _check_length(what, len(str(value)) + lines * max(0, pad))
        elif name in ("batch", "slice"):
            count = rest[0] if rest else kwargs.get("linecount" if name == "batch" else "slices")
            if isinstance(count, int):
                _check_length(what, count, items=True)
        elif name == "format" and isinstance(value, str):
            _check_percent_format(what, value)
        elif name == "replace" and len(rest) >= 2:
            _estimate_replace(what, value, rest[0], rest[1])
        elif name == "join":
            _estimate_join(what, value, rest[0] if rest else kwargs.get("d", ""))
        return _check_value(what, function(*args, **kwargs))

    return guarded


# --- the environment --------------------------------------------------------------------------------------


class BoundedEnvironment(SandboxedEnvironment):
    """SandboxedEnvironment + ConfinedLoader + no compile-time folding + the limits of ootgen.limits."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _NoFoldCodeGenerator
    template_class = BoundedTemplate

    def __init__(self, folders: list[Path], **options: Any):
        self.confined_loader = ConfinedLoader(folders)
        super().__init__(loader=self.confined_loader, undefined=jinja2.StrictUndefined, optimized=False, **options)
        self.filters["tojson_pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False)
        self.filters = {name: _guard_filter(name, function) for name, function in self.filters.items()}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        try:
            tree = super()._parse(source, name, filename)
        except ValueError as error:  # an integer literal past Python's digit limit, raised by the lexer
            digits = re.search(r"\d{1000,}", source)
            line = source.count("\n", 0, digits.start()) + 1 if digits else 1
            raise jinja2.TemplateSyntaxError(f"number literal too long: {error}", line, name, filename) from None
        return _RouteThroughEnvironment().visit(tree)

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _check_value(f"'{operator}'", super().call_binop(context, operator, left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_method_call(__obj, args, kwargs)
        return _check_value(f"{getattr(__obj, '__name__', 'call')}()", super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text = value.__self__

        def checked(*args: Any, **kwargs: Any) -> str:
            _check_format_spec("str.format()", text)
            return _check_value("str.format()", wrapped(*args, **kwargs))

        return checked

    def concat(self, parts: Iterable[str]) -> str:
        """Joins the output of a block, a macro or `{% set %}...{% endset %}`."""
        pieces = list(parts)
        _check_length("a block's output", sum(map(len, pieces)))
        return "".join(pieces)

    def bounded_concat(self, parts: list) -> str:
        """The `~` operator."""
        pieces = [str(part) for part in parts]
        _check_length("'~'", sum(map(len, pieces)))
        return "".join(pieces)

    def bounded_iter(self, iterable: Any) -> Iterator:
        """Every `{% for %}` loop: each step counts against the render's budget."""
        budget = _budget()
        for item in iterable:
            budget.steps -= 1
            if budget.steps < 0:
                raise _refuse(f"loops ran more than {LIMITS.template_loop_steps} steps in one render")
            yield item
