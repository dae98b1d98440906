"""The model table (configs/models.yaml): prices, accepted parameters, structured-output support.

Model facts are data; this module only reads them, resolves aliases and prices usage.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .schemas import validate_file_data
from .yamlfile import load_yaml_file


@dataclass(frozen=True)
class ModelInfo:
    id: str
    known: bool
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    cache_read_per_mtok: float | None = None
    batch_multiplier: float = 0.5
    max_output_tokens: int = 32000
    accepts_temperature: bool = False
    accepts_top_p: bool = False
    accepts_effort: bool = False
    structured_outputs: bool = False

    @property
    def structured(self) -> bool:
        """Ask for output_config json_schema: for models that support it, and for unknown ones (an id not in the
        table is most likely a newer model); the reply is validated against the schema either way."""
        return self.structured_outputs or not self.known

    @property
    def priced(self) -> bool:
        return self.input_per_mtok is not None

    def cost(self, usage: Usage, *, batch: bool = False) -> float | None:
        """Dollars for `usage`, or None when the model's prices are unknown."""
        prices = (self.input_per_mtok, self.output_per_mtok, self.cache_write_per_mtok, self.cache_read_per_mtok)
        if None in prices:
            return None
        inp, out, write, read = (float(p or 0.0) for p in prices)
        dollars = (
            usage.input_tokens * inp
            + usage.output_tokens * out
            + usage.cache_creation_input_tokens * write
            + usage.cache_read_input_tokens * read
        ) / 1_000_000
        return dollars * (self.batch_multiplier if batch else 1.0)


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def as_dict(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


class ModelTable:
    def __init__(self, models: dict[str, ModelInfo], aliases: dict[str, str], retired: dict[str, dict], file: str):
        self._models = models
        self._aliases = aliases
        self._retired = retired
        self.file = file

    @property
    def ids(self) -> list[str]:
        return sorted(self._models)

    @property
    def names(self) -> list[str]:
        """Every id and alias the table knows."""
        return self.ids + sorted(self._aliases)

    def resolve(self, name: str, *, source: str | None = None) -> ModelInfo:
        """The model's facts; unknown ids get an unpriced entry; retired ids are an error."""
        model_id = self._aliases.get(name, name)
        if model_id in self._retired:
            entry = self._retired[model_id]
            raise ConfigError(
                f"model '{name}' is retired; use '{entry['replacement']}' instead",
                file=source or self.file,
                key="model",
                expected="a current model id: " + ", ".join(self.ids),
            )
        if model_id in self._models:
            return self._models[model_id]
        return ModelInfo(id=model_id, known=False)

    def suggestion(self, name: str) -> str | None:
        hint = difflib.get_close_matches(name, self.ids + list(self._aliases), n=1, cutoff=0.6)
        return hint[0] if hint else None


def load_model_table(path: Path) -> ModelTable:
    data, source = load_yaml_file(path, "model table")
    if not isinstance(data, dict):
        raise ConfigError("the model table must be a YAML mapping", file=str(path), line=1)
    validate_file_data(data, "models", source, str(path), "model table")
    multipliers = data["default_multipliers"]
    models: dict[str, ModelInfo] = {}
    aliases: dict[str, str] = {}
    for index, entry in enumerate(data["models"]):
        if entry["id"] in models:
            raise ConfigError(f"duplicate model id '{entry['id']}'", file=str(path), line=source.locate(("models", index))[1], key=f"models[{index}].id")
        inp = entry["input_per_mtok"]
        models[entry["id"]] = ModelInfo(
            id=entry["id"],
            known=True,
            input_per_mtok=inp,
            output_per_mtok=entry["output_per_mtok"],
            cache_write_per_mtok=entry.get("cache_write_per_mtok", inp * multipliers["cache_write"]),
            cache_read_per_mtok=entry.get("cache_read_per_mtok", inp * multipliers["cache_read"]),
            batch_multiplier=entry.get("batch_multiplier", multipliers["batch"]),
            max_output_tokens=entry["max_output_tokens"],
            accepts_temperature=entry["accepts_temperature"],
            accepts_top_p=entry.get("accepts_top_p", False),
            accepts_effort=entry.get("accepts_effort", False),
            structured_outputs=entry["structured_outputs"],
        )
        for alias in entry.get("aliases", []):
            aliases[alias] = entry["id"]
    retired = {entry["id"]: entry for entry in data.get("retired", [])}
    return ModelTable(models, aliases, retired, str(path))
