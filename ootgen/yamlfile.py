"""Safe YAML reading that remembers where every key came from, so errors can name file and line.

Only PyYAML's SafeLoader is used; unsafe tags, duplicate keys, tabs, alias bombs, too many nodes, huge and
non-UTF-8 files, and files whose real path leaves their folder (a symlink pointing elsewhere) are refused with
one ConfigError each. The limits are in ootgen.limits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .limits import LIMITS

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


def confine(path: Path, folder: Path | None = None, what: str = "file") -> Path:
    """The real path of `path`, refused when it leaves `folder` (by default the folder the path names).

    Paths are taken as written (`..` included); what is refused is a symlink, or a symlinked folder, that
    makes the file ootgen actually opens lie somewhere else.
    """
    folder = path.parent if folder is None else folder
    real_folder = Path(os.path.realpath(folder))
    real = Path(os.path.realpath(path))
    if real == real_folder or real_folder in real.parents:
        return real
    link = f"a symlink to {os.readlink(path)}" if path.is_symlink() else f"resolved to {real}"
    raise ConfigError(
        f"{what} leaves its folder {folder}: it is {link}",
        file=str(path),
        expected=f"a file inside {folder} (symlinks may not point outside it)",
    )


def read_bytes_capped(path: Path, what: str, max_bytes: int, *, folder: Path | None = None) -> bytes:
    """The bytes of a regular file inside its folder, at most `max_bytes` of them (else one clear error)."""
    if not path.exists():
        raise ConfigError(f"{what} not found", file=str(path))
    real = confine(path, folder, what)
    if not real.is_file():
        raise ConfigError(f"{what} is not a regular file", file=str(path))
    size = real.stat().st_size
    if size > max_bytes:
        raise ConfigError(f"{what} is {size} bytes, larger than the {max_bytes} allowed", file=str(path),
                          expected="a smaller file (see README, Limits)")
    try:
        with open(real, "rb") as fh:
            raw = fh.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as error:
        raise ConfigError(f"cannot read {what}: {error.strerror}", file=str(path)) from None
    if len(raw) > max_bytes:
        raise ConfigError(f"{what} is larger than the {max_bytes} bytes allowed", file=str(path))
    return raw


def read_text(path: Path, what: str = "file", *, max_bytes: int = LIMITS.yaml_file_bytes, folder: Path | None = None) -> str:
    """Read a UTF-8 text file with one clear error for every way it can fail."""
    raw = read_bytes_capped(path, what, max_bytes, folder=folder)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError("is not valid UTF-8 text", file=str(path), line=line, expected="a UTF-8 encoded file") from None


def parse_yaml(text: str, file: str, *, line_offset: int = 0) -> tuple[Any, SourceMap]:
    """Parse YAML text safely; return the data and a SourceMap of every key and list item."""
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same nodes and marks, ~9x faster
    _check_node_count(text, file, line_offset, loader_class)
    loader = loader_class(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 + line_offset if mark else None
            problem = error.problem or "invalid YAML"
            rows = text.split("\n")
            at_tab = mark is not None and mark.line < len(rows) and rows[mark.line][mark.column : mark.column + 1] == "\t"
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


def load_yaml_file(path: Path, what: str = "YAML file", *, folder: Path | None = None) -> tuple[Any, SourceMap]:
    return parse_yaml(read_text(path, what, folder=folder), str(path))


def _check_node_count(text: str, file: str, line_offset: int, loader_class: type) -> None:
    """Count nodes from the event stream (constant memory) before any node tree is built."""
    counted = (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.AliasEvent)
    count = 0
    loader = loader_class(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, counted):
                count += 1
                if count > LIMITS.yaml_nodes:
                    raise ConfigError(
                        f"YAML has more than {LIMITS.yaml_nodes} nodes (keys, values and list items)",
                        file=file,
                        line=event.start_mark.line + 1 + line_offset if event.start_mark else None,
                        expected="a smaller file (see README, Limits)",
                    )
    except yaml.YAMLError:
        return  # the real parse below reports syntax errors with their line
    finally:
        loader.dispose()


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
        if total > LIMITS.yaml_expanded_nodes:
            raise ConfigError(
                f"YAML expands to more than {LIMITS.yaml_expanded_nodes} nodes through aliases (an alias bomb?)",
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
