"""Safe YAML reading that remembers where every key came from, so errors can name file and line.

Only PyYAML's SafeLoader is used; unsafe tags, duplicate keys, tabs, alias bombs, huge and non-UTF-8
files are refused with one ConfigError each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_EXPANDED_NODES = 200_000  # an alias bomb expands past this long before it fills memory

KeyPath = tuple


@dataclass
class SourceMap:
    """key path (tuple of str/int) -> (file, line) of the YAML node that set it."""

    lines: dict = field(default_factory=dict)

    def locate(self, path: KeyPath) -> tuple[str | None, int | None]:
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None, None
            path = path[:-1]

    def update(self, other: SourceMap) -> None:
        self.lines.update(other.lines)


def format_key(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def read_text(path: Path, what: str = "file") -> str:
    """Read a UTF-8 text file with one clear error for every way it can fail."""
    if not path.exists():
        raise ConfigError(f"{what} not found", file=str(path))
    if not path.is_file():
        raise ConfigError(f"{what} is not a regular file", file=str(path))
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"{what} is {size} bytes, larger than the {MAX_FILE_BYTES} allowed", file=str(path))
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError("is not valid UTF-8 text", file=str(path), line=line, expected="a UTF-8 encoded file") from None


def parse_yaml(text: str, file: str, *, line_offset: int = 0) -> tuple[Any, SourceMap]:
    """Parse YAML text safely; return the data and a SourceMap of every key and list item."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml when present: same nodes and marks, ~9x faster
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 + line_offset if mark else None
            problem = error.problem or "invalid YAML"
            rows = text.split("\n")
            at_tab = bool(mark) and mark.line < len(rows) and rows[mark.line][mark.column : mark.column + 1] == "\t"
            if at_tab or "\\t" in str(problem) or "tab" in str(problem).lower():  # libyaml does not say "tab"
                problem = "a tab character cannot indent YAML; use spaces"
            raise ConfigError(f"YAML syntax error: {problem}", file=file, line=line) from None
        except yaml.YAMLError as error:
            raise ConfigError(f"YAML syntax error: {error}", file=file) from None
        if node is None:
            return None, SourceMap()
        _check_expansion(node, file, line_offset)
        source = SourceMap()
        _record_lines(node, (), file, line_offset, source)
        try:
            data = loader.construct_document(node)
        except yaml.constructor.ConstructorError as error:
            mark = error.problem_mark
            raise ConfigError(
                f"unsupported YAML tag: {error.problem}",
                file=file,
                line=(mark.line + 1 + line_offset) if mark else None,
                expected="plain YAML (only safe tags are allowed)",
            ) from None
        return data, source
    finally:
        loader.dispose()


def load_yaml_file(path: Path, what: str = "YAML file") -> tuple[Any, SourceMap]:
    return parse_yaml(read_text(path, what), str(path))


def _check_expansion(root: yaml.Node, file: str, line_offset: int) -> None:
    """Refuse YAML whose aliases would expand into an enormous document (a 'billion laughs')."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = 1  # guards against recursive aliases
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
        memo[key] = total
        if total > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"YAML expands to more than {MAX_EXPANDED_NODES} nodes through aliases (an alias bomb?)",
                file=file,
                line=node.start_mark.line + 1 + line_offset,
            )
        return total

    size(root)


def _record_lines(node: yaml.Node, path: KeyPath, file: str, line_offset: int, source: SourceMap) -> None:
    source.lines.setdefault(path, (file, node.start_mark.line + 1 + line_offset))
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1 + line_offset
            if key in seen and key is not None:
                raise ConfigError(
                    f"duplicate key '{key}' (first set on line {seen[key]})",
                    file=file,
                    line=line,
                    key=format_key(path + (key,)),
                )
            seen[key] = line
            source.lines[path + (key,)] = (file, line)
            _record_lines(value_node, path + (key,), file, line_offset, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            source.lines[path + (index,)] = (file, item.start_mark.line + 1 + line_offset)
            _record_lines(item, path + (index,), file, line_offset, source)
