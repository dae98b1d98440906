"""Typed, immutable run settings, built once from the merged and schema-validated preset mapping.

The classes hold no defaults: every value comes from the preset chain or, for a key the chain leaves out, from
the built-in configs/default.yaml (load.py fills those in before building). `build` refuses a mapping whose keys
differ from the fields, so the schema, default.yaml and these classes cannot drift apart silently.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar


@dataclass(frozen=True, slots=True)
class CompilerSettings:
    checkout: str | None
    version: str | None


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    examples_per_call: int
    max_tokens: int
    effort: str | None
    temperature: float | None
    max_attempts_factor: float
    malformed_retries: int


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    model: str | None
    max_tokens: int
    effort: str | None
    candidates_per_call: int


@dataclass(frozen=True, slots=True)
class ConcurrencySettings:
    max: int
    min: int
    sdk_max_retries: int
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class BaseWeights:
    technical_accuracy: float
    usefulness: float


@dataclass(frozen=True, slots=True)
class UsefulnessWeights:
    clarity: float
    completeness: float
    practical_value: float
    level_of_detail: float
    teaching_value: float


@dataclass(frozen=True, slots=True)
class Bonuses:
    code_example: float
    correct_terminology: float


@dataclass(frozen=True, slots=True)
class Penalties:
    technical_issue: float
    max_technical_issues: int
    low_usefulness: float
    low_usefulness_below: float
    static_error: float
    static_warning: float


@dataclass(frozen=True, slots=True)
class ScoringSettings:
    threshold: float
    min_technical_accuracy: int
    base_weights: BaseWeights
    usefulness_weights: UsefulnessWeights
    bonuses: Bonuses
    penalties: Penalties


@dataclass(frozen=True, slots=True)
class BatchSettings:
    max_requests: int
    max_bytes: int
    wave_requests: int
    first_requests: int


@dataclass(frozen=True, slots=True)
class DedupSettings:
    enabled: bool
    near_threshold: float
    num_perm: int


@dataclass(frozen=True, slots=True)
class GroundingSettings:
    enabled: bool | None  # None: on exactly when decomp_dir is set
    decomp_dir: str | None
    index: str | None
    types: tuple[str, ...]
    file_patterns: tuple[str, ...]
    min_lines: int
    max_lines: int
    share: float

    @property
    def on(self) -> bool:
        """Grounding runs when a checkout is configured, unless `enabled: false`; `enabled: true` without a
        checkout is an error (load.py's _check_plan_options)."""
        return self.enabled is not False and bool(self.decomp_dir or self.enabled)


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    max_cost_usd: float | None


@dataclass(frozen=True, slots=True)
class HfSplits:
    train: float
    validation: float
    test: float


@dataclass(frozen=True, slots=True)
class HfSection:
    """`export.hf` as configured (hf.py normalises the split shares and adds the dedup settings)."""

    name: str | None
    license: str | None
    language: tuple[str, ...]
    rows: str
    file_format: str
    splits: HfSplits


@dataclass(frozen=True, slots=True)
class ExportSettings:
    alpaca_multi_turn: str
    empty_input: str
    hf: HfSection


@dataclass(frozen=True, slots=True)
class LaddersSettings:
    enabled: bool
    types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CrossValidationSettings:
    rule: str


@dataclass(frozen=True, slots=True)
class Settings:
    """Every run setting (configs/default.yaml documents each key)."""

    model: str
    models_table: str
    num_examples: int
    output: str
    seed: int
    types_dirs: tuple[str, ...]
    extra_types_dirs: tuple[str, ...]
    template_dirs: tuple[str, ...]
    context_dirs: tuple[str, ...]
    symbols: str  # "default" or a path
    checks: str
    compiler: CompilerSettings
    mix: Mapping[str, float]  # only the types the preset names; the others weigh their own `weight`
    complexities: tuple[str, ...]
    templates: Mapping[str, str]  # role -> template file name
    generation: GenerationSettings
    judge: JudgeSettings
    concurrency: ConcurrencySettings
    scoring: ScoringSettings
    batch: BatchSettings
    dedup: DedupSettings
    grounding: GroundingSettings
    budget: BudgetSettings
    export: ExportSettings
    judges: tuple[str, ...] | None  # cross-validation judges; None: the one judge model
    cross_validation: CrossValidationSettings
    questions: str | None
    ladders: LaddersSettings

    @property
    def grounding_on(self) -> bool:
        return self.grounding.on

    @property
    def judge_model_id(self) -> str:
        """`judge.model`, or the generator model when it is null."""
        return self.judge.model or self.model

    @property
    def judge_model_ids(self) -> tuple[str, ...]:
        """The models that review every candidate: `judges`, else the one judge model."""
        return self.judges or (self.judge_model_id,)

    @property
    def named_models(self) -> tuple[tuple[str, tuple[str | int, ...]], ...]:
        """Every model id the config names, with the key path that names it: `model`, `judge.model` when set,
        each of `judges` (the model table check and the cost check both walk these)."""
        judge = ((self.judge.model, ("judge", "model")),) if self.judge.model else ()
        return ((self.model, ("model",)), *judge, *((name, ("judges", index)) for index, name in enumerate(self.judges or ())))


T = TypeVar("T")
_HINTS: dict[type, dict[str, Any]] = {}  # resolved field types per class (resolving is the slow part of build)


def build(cls: type[T], data: Mapping[str, Any], where: str = "", **extra: Any) -> T:
    """`cls` from a validated mapping whose keys are exactly its fields (a mismatch is a bug: say which keys);
    `extra` gives the fields that do not come from the mapping."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in extra]  # type: ignore[arg-type]
    if set(names) != set(data):
        missing, unknown = sorted(set(names) - set(data)), sorted(set(data) - set(names))
        raise TypeError(f"settings{where} do not match {cls.__name__}: missing {missing}, unknown {unknown}")
    hints = _HINTS.get(cls) or _HINTS.setdefault(cls, typing.get_type_hints(cls))
    return cls(**{name: _convert(hints[name], data[name], f"{where}.{name}") for name in names}, **extra)


def _convert(hint: Any, value: Any, where: str) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)  # type: ignore[arg-type]
    if origin is tuple:
        return tuple(value)
    if origin is Mapping:
        return types.MappingProxyType(dict(value))
    if hint is float:
        return float(value)  # YAML `5` for a number field
    return value
