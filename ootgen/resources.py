"""Where the built-in declarative files live: the repository checkout, or the copy inside the wheel.

The wheel carries configs/, templates/, contexts/ and schemas/ under ootgen/_data (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
DATA_KINDS = ("configs", "templates", "contexts", "schemas")


def data_root() -> Path:
    """The folder holding configs/, templates/, contexts/ and schemas/."""
    bundled = _PACKAGE_DIR / "_data"
    if (bundled / "configs").is_dir():
        return bundled
    return _PACKAGE_DIR.parent  # running from a source checkout (or an editable install)


def builtin_preset(name: str) -> Path | None:
    """`default` -> <data_root>/configs/default.yaml, when such a preset exists."""
    if "/" in name or "\\" in name or name.endswith((".yaml", ".yml")):
        return None
    candidate = data_root() / "configs" / f"{name}.yaml"
    return candidate if candidate.is_file() else None


def schema_path(name: str) -> Path:
    return data_root() / "schemas" / f"{name}.schema.json"


def default_symbol_index() -> Path:
    return _PACKAGE_DIR / "data" / "oot_symbols.json.gz"
