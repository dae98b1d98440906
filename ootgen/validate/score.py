"""Layer 3 of the validate stage: score = base + bonuses - penalties (configs/default.yaml `scoring:`), clamped 0..10.

Without a judge verdict ("static-only"), L1 accuracy is 1.0 minus the checks.yaml penalty of each static finding
and L2 usefulness is a neutral 0.7: static checks say nothing about clarity or teaching value, and 0.7 keeps a
clean static-only example just above the default threshold (6.0) while one static error still rejects it.
"""

from __future__ import annotations

from dataclasses import asdict

from ..records import Finding, ScoreBreakdown
from ..settings import ScoringSettings

STATIC_ONLY_USEFULNESS = 0.7
_TERMINOLOGY_BREAKERS = ("UNKNOWN_FUNCTION", "OLD_NAME", "NAMING_ERA_MIX")


def _weighted(values: dict, weights: dict) -> float:
    total = sum(weights.values())
    return sum(values.get(k, 0.0) * w for k, w in weights.items()) / total if total else 0.0


def score_candidate(
    findings: list[Finding],
    verdict: dict | None,
    *,
    requires_code: bool,
    has_code: bool,
    scoring: ScoringSettings,
    checks: dict,
    known_identifiers: int = 1,
) -> ScoreBreakdown:
    """L3 score of one candidate. `verdict` is one item of the judge reply (schemas/judge_reply.schema.json) or None.

    `known_identifiers` (decomp names the answer uses, static-only terminology bonus) defaults to 1 so callers
    that do not count them are not penalised."""
    spec = checks.get("findings", {})
    static_only = verdict is None
    if verdict is None:
        deduction = sum(spec.get(f.code, {}).get("penalty", 0.0) for f in findings)
        accuracy = max(0.0, 1.0 - deduction)
        usefulness = STATIC_ONLY_USEFULNESS
    else:
        accuracy = verdict["technical_accuracy"] / 10.0
        usefulness = _weighted({k: v / 10.0 for k, v in verdict["usefulness"].items()}, asdict(scoring.usefulness_weights))
    base = 10.0 * _weighted({"technical_accuracy": accuracy, "usefulness": usefulness}, asdict(scoring.base_weights))

    bonuses: dict[str, float] = {}
    if has_code:  # a fence where the type asks for code, or any fence at all
        bonuses["code_example"] = scoring.bonuses.code_example
    if verdict is None:
        terminology = known_identifiers > 0 and not any(f.code in _TERMINOLOGY_BREAKERS for f in findings)
    else:
        terminology = bool(verdict.get("uses_correct_terminology"))
    if terminology:
        bonuses["correct_terminology"] = scoring.bonuses.correct_terminology

    p = scoring.penalties
    penalties: dict[str, float] = {}
    if verdict is not None:
        issues = min(len(verdict.get("technical_issues", [])), p.max_technical_issues)
        if issues:
            penalties["technical_issue"] = issues * p.technical_issue
    if usefulness < p.low_usefulness_below:
        penalties["low_usefulness"] = p.low_usefulness
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = sum(1 for f in findings if f.severity == "warning")
    if errors:
        penalties["static_error"] = errors * p.static_error
    if warnings:
        penalties["static_warning"] = warnings * p.static_warning
    if requires_code and not has_code:
        pass  # MISSING_CODE is a static finding already; no second penalty here

    score = min(10.0, max(0.0, base + sum(bonuses.values()) - sum(penalties.values())))
    score = round(score, 2)
    # The floor: a judged answer with a wrong fact is rejected however useful it reads (static-only scoring has no
    # judge accuracy to hold to it).
    floor = scoring.min_technical_accuracy
    rejection = None
    if verdict is not None and verdict["technical_accuracy"] < floor:
        rejection = f"low_technical_accuracy ({verdict['technical_accuracy']} < {floor})"
    accepted = score >= scoring.threshold and errors == 0 and rejection is None
    return ScoreBreakdown(score=score, base=round(base, 2), bonuses=bonuses, penalties=penalties,
                          accepted=accepted, static_only=static_only, rejection=rejection)
