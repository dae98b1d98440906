"""Plan-stage helper: real functions from the user's own decomp checkout, as `input` for code types.

With `grounding.enabled`, the planner samples function definitions from the symbol index that
`ootgen index DECOMP_DIR` built (it keeps each definition's file and line range), filtered by file
pattern and size, and reads their bodies from the checkout at run time. Nothing from the decomp is
stored in this repository.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import random
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .limits import LIMITS
from .settings import GroundingSettings
from .snapshot import positions, rng_from, rng_state
from .yamlfile import read_bytes_capped


@dataclass(frozen=True)
class SourceFunction:
    name: str
    file: str
    line: int
    end_line: int
    commit: str | None

    def as_dict(self) -> dict:
        return {"function": self.name, "file": self.file, "line": self.line, "end_line": self.end_line, "commit": self.commit}


class FunctionPool:
    """Deterministic, non-repeating draws of real functions matching the grounding settings."""

    def __init__(self, settings: GroundingSettings, index, seed: int, *, index_file: str | None = None):
        assert settings.decomp_dir is not None  # checked by load.py before any pool is made
        self.decomp_dir = Path(settings.decomp_dir)
        patterns = settings.file_patterns
        low, high = settings.min_lines, settings.max_lines
        commit = index.provenance.get("commit")
        self.functions = [
            SourceFunction(f.name, f.file, f.line, f.end_line, commit)
            for f in index.definitions()
            if low <= f.end_line - f.line + 1 <= high and any(fnmatch.fnmatch(f.file, p) for p in patterns)
        ]
        for file in sorted({f.file for f in self.functions}):
            _check_inside_checkout(file, self.decomp_dir, index_file)
        if not self.functions:
            raise ConfigError(
                "no function definitions in the symbol index match the grounding settings",
                key="grounding", expected="an index built by `ootgen index DECOMP_DIR` (see `symbols:`) and patterns/sizes that match",
            )
        self._rng = random.Random(seed)
        self._queue: list[SourceFunction] = []

    def fork(self, seed: int) -> FunctionPool:
        """The same functions, drawn in an order of their own (each plan stream draws independently)."""
        pool = copy.copy(self)
        pool._rng, pool._queue = random.Random(seed), []
        return pool

    def draw(self) -> SourceFunction:
        if not self._queue:
            self._queue = list(self.functions)
            self._rng.shuffle(self._queue)
        return self._queue.pop()

    def dump(self) -> dict:
        """The draw state as JSON data (the queue as positions in `functions`); load() puts it back."""
        return {"rng": rng_state(self._rng), "queue": positions(self.functions, self._queue)}

    def load(self, data: dict) -> None:
        self._rng.setstate(rng_from(data["rng"]))
        self._queue = [self.functions[n] for n in data["queue"]]

    def body(self, function: SourceFunction) -> str:
        path = self.decomp_dir / function.file
        try:
            raw = read_bytes_capped(path, "decomp source file", LIMITS.source_file_bytes, folder=self.decomp_dir)
        except ConfigError as error:
            raise ConfigError(error.message, file=error.file, line=error.line, key="grounding.decomp_dir", expected=error.expected) from None
        lines = raw.decode("utf-8", errors="replace").splitlines()
        return "\n".join(lines[function.line - 1 : function.end_line]).strip("\n")


def _check_inside_checkout(file: str, decomp_dir: Path, index_file: str | None) -> None:
    """An index names files relative to the checkout: `..`, an absolute path or a symlink must not read outside it."""
    normal = os.path.normpath(file)
    escapes = os.path.isabs(normal) or normal == ".." or normal.startswith(".." + os.sep)
    real_root = os.path.realpath(decomp_dir)
    real = os.path.realpath(decomp_dir / file)
    if escapes or not (real == real_root or real.startswith(real_root + os.sep)):
        how = "a path outside it" if escapes else f"resolves to {real}"
        raise ConfigError(
            f"the index names '{file}', which leaves the decomp checkout {decomp_dir} ({how})",
            file=index_file or "symbol index", key="grounding",
            expected="paths relative to the checkout, as `ootgen index DECOMP_DIR` writes them, and no symlinks out of it",
        )
