"""Plain, immutable records passed between pipeline stages (load -> plan -> ... -> export)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    content: str


@dataclass(frozen=True)
class Example:
    """One training example as generated or as read from a JSONL file.

    Multi-turn dialogues keep every turn in `turns`; `instruction`/`output` then hold the first user
    message and the last assistant message so that single-turn tools still see something sensible.
    """

    instruction: str
    output: str
    input: str = ""
    type: str | None = None
    topic: str | None = None
    turns: tuple[Turn, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One static L1 finding. severity is "error", "warning" or "info"."""

    code: str
    severity: str
    message: str
    location: str = ""

    def as_dict(self) -> dict:
        return {"code": self.code, "severity": self.severity, "message": self.message, "location": self.location}


@dataclass(frozen=True)
class ScoreBreakdown:
    """Layer 3: score = base + bonuses - penalties, clamped to 0..10."""

    score: float
    base: float
    bonuses: dict = field(default_factory=dict)
    penalties: dict = field(default_factory=dict)
    accepted: bool = False
    static_only: bool = False
    rejection: str | None = None  # a rejection the score alone does not explain (the technical-accuracy floor)


LEVELS = ("beginner", "intermediate", "advanced")


@dataclass(frozen=True)
class Topic:
    """One thing a context's examples can be about, and the types/levels a sensible request exists for.

    `angles` are sub-topics the planner cycles through so repeated uses of a topic ask different things.
    `line` is the front-matter line (for errors).
    """

    topic: str
    types: tuple[str, ...]
    levels: tuple[str, ...] = LEVELS
    angles: tuple[str, ...] = ()
    line: int | None = None

    def suits(self, type_name: str, level: str | None = None) -> bool:
        return type_name in self.types and (level is None or level in self.levels)
