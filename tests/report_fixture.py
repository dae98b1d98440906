"""A realistic run database for report tests and development, built only through RunStore's public methods.

`python -m tests.report_fixture DIR` writes one to DIR/run.sqlite (for looking at a report by hand).
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ootgen.models import Usage
from ootgen.plan import Task
from ootgen.records import Example, Turn
from ootgen.store import ACCEPTED, PENDING, REJECTED, RunStore

TYPES = ("code_explanation", "debugging_help", "conversational")
CONTEXTS = ("actor_system", "player_system", "save_data")
COMPLEXITIES = ("beginner", "intermediate", "advanced")
THRESHOLD = 6.0
PLANTED_SCRIPT = "<script>window.ootgenPwned = 'script'</script>"
# Markup that runs without a <script> tag when a page inserts it as HTML.
PLANTED_HANDLER = '<img src="x" onerror="window.ootgenPwned = \'onerror\'">'

SLOTS = 4
TASKS = 10

_SUBJECTS = ("EnItem00_Init", "Player_UpdateCommon", "Flags_GetSwitch", "Actor_Kill", "SkelAnime_Update",
             "Collider_InitCylinder", "Message_StartTextbox", "Sram_WriteSave", "Camera_Update", "ObjSwitch_Init")


@dataclass
class RunFacts:
    """What the fixture put in the database, for tests to compare a report against."""

    accepted: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason group -> count
    finding_codes: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)  # reason group -> count


def _usage(seed: int, *, judge: bool) -> Usage:
    return Usage(
        input_tokens=900 + 37 * seed, output_tokens=(600 if judge else 2400) + 11 * seed,
        cache_creation_input_tokens=4200 if seed == 0 else 0, cache_read_input_tokens=0 if seed == 0 else 4200,
    )


def _response(key: str, kind: str, task_idx: int | None, seed: int) -> dict:
    usage = _usage(seed, judge=kind == "judge")
    cost = (usage.input_tokens * 3 + usage.output_tokens * 15 + usage.cache_creation_input_tokens * 3.75
            + usage.cache_read_input_tokens * 0.3) / 1_000_000
    return dict(key=key, kind=kind, model="claude-sonnet-4-5", task_idx=task_idx, text="{}", stop_reason="end_turn",
                usage=usage, cost=cost, batch=False, valid=True, error=None, from_cache=False)


def _example(task: Task, slot: int) -> Example:
    subject = _SUBJECTS[(task.index + slot) % len(_SUBJECTS)]
    instruction = f"Explain what {subject} does in the {task.context.replace('_', ' ')} and when the game calls it."
    code = f"void {subject}(Actor* thisx, PlayState* play) {{\n    Actor_SetScale(thisx, 0.01f);\n}}"
    output = (f"`{subject}` runs once per frame while the actor is alive. It reads `play->state.frames` "
              f"and updates the actor's position:\n\n```c\n{code}\n```\n\nSee also `Actor_UpdateAll`.")
    if task.index == 2 and slot == 1:
        output += f"\n\nAnd a stray tag the model wrote: {PLANTED_SCRIPT} & <b>bold</b> {PLANTED_HANDLER}"
    turns: tuple[Turn, ...] = ()
    if task.type == "conversational":
        turns = (Turn("user", instruction), Turn("assistant", output), Turn("user", "And for the child form?"),
                 Turn("assistant", "The same, with `LINK_IS_CHILD` checked first."))
    return Example(instruction=instruction, output=output, input=code if task.type == "debugging_help" else "",
                   type=task.type, topic=f"{subject} basics", turns=turns)


def _verdict(index: int, accuracy: int, issues: list[str], summary: str) -> dict:
    return {
        "index": index, "technical_accuracy": accuracy, "technical_issues": issues, "uses_correct_terminology": accuracy > 4,
        "usefulness": {"clarity": 7, "completeness": 6, "practical_value": 7, "level_of_detail": 6, "teaching_value": 7},
        "summary": summary,
    }


def _commit_judgement(store: RunStore, response: dict | None, results: list[dict]) -> None:
    # commit_judgement is changing from one response (or None) to a list of responses; serve both.
    if "responses" in inspect.signature(store.commit_judgement).parameters:
        store.commit_judgement([] if response is None else [response], results)
    else:
        store.commit_judgement(response, results)


def _count(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def build_run(run_dir: Path) -> RunFacts:
    """Create run_dir/run.sqlite with TASKS x SLOTS candidates: static and duplicate rejections at
    generation, then judged ones accepted or rejected on score, a failed judge call, and API failures."""
    facts = RunFacts()
    store = RunStore.open_run_dir(run_dir)
    try:
        store.bind(work_hash="w" * 16, config_hash="c" * 16, force=False,
                   settings={"model": "claude-sonnet-4-5", "seed": 42, "scoring": {"threshold": THRESHOLD}})
        store.set_meta("seed", 42)
        store.set_meta("model", "claude-sonnet-4-5")
        store.set_meta("target", 30)
        store.set_meta("total_duration_seconds", 754.2)
        tasks = [
            Task(index=i, type=TYPES[i % 3], context=CONTEXTS[(i // 3) % 3], complexity=COMPLEXITIES[(i * 2) % 3],
                 topics=tuple(f"topic {i}.{s}" for s in range(SLOTS)), instructions=("question",) * SLOTS)
            for i in range(TASKS)
        ]
        store.save_tasks(tasks)
        for task in tasks:
            rows = []
            for slot in range(SLOTS):
                n = task.index * SLOTS + slot
                findings = []
                status, reason = PENDING, None
                if n % 9 == 4:
                    findings.append({"code": "UNKNOWN_FUNCTION", "severity": "error",
                                     "message": "EnFoo_Bar is not in the decomp index", "location": "output:3"})
                    status, reason = REJECTED, "static: UNKNOWN_FUNCTION"
                elif n % 11 == 7:
                    status, reason = REJECTED, "duplicate (near)"
                if n % 5 == 1:
                    findings.append({"code": "OLD_NAME", "severity": "warning",
                                     "message": "globalCtx was renamed to play", "location": "output:1"})
                if n % 7 == 3:
                    findings.append({"code": "LOCAL_HELPER_CALL", "severity": "info",
                                     "message": "EnMyNpc_SetupIdle is never shown", "location": "output:5"})
                for finding in findings:
                    _count(facts.finding_codes, finding["code"])
                if reason:
                    _count(facts.reasons, reason.split(":")[0].split(" (")[0])
                    facts.rejected += 1
                rows.append({"task_idx": task.index, "slot": slot, "example": _example(task, slot), "context": task.context,
                             "complexity": task.complexity, "findings": findings, "status": status, "reason": reason})
            store.commit_generation(_response(f"gen-{task.index}", "generate", task.index, task.index), rows, task.index)
        store.record_failure(3, "generate", "api_error: 529 overloaded_error: Overloaded")
        store.record_failure(3, "generate", "api_error: 429 rate_limit_error: <too many requests>")
        store.record_failure(None, "judge", "bad_reply: reply is not valid JSON (line 1 column 5)")
        store.record_failure(7, "generate", "short_reply: 3 of 4 examples")
        for reason in ("api_error", "api_error", "bad_reply", "short_reply"):
            _count(facts.failures, reason)

        pending = list(store.candidates(PENDING))
        for start in range(0, len(pending), 3):
            group = pending[start : start + 3]
            call = start // 3
            if call == 4:  # the judge never answered this group
                results = [dict(cid=c.id, status=REJECTED, reason="judge_failed", verdict=None, score=None, breakdown=None)
                           for c in group]
                for _ in group:
                    _count(facts.reasons, "judge_failed")
                _commit_judgement(store, None, results)
                facts.rejected += len(group)
                continue
            results = []
            for number, candidate in enumerate(group, 1):
                score = round(3.0 + ((candidate.id * 37) % 14) * 0.5, 3)  # 3.0 .. 9.5
                accepted = score >= THRESHOLD
                issues = [] if accepted else ["claims the update runs twice per frame", "wrong <struct> field name"]
                verdict = _verdict(number, 8 if accepted else 4, issues,
                                   "Accurate and well explained." if accepted else "Confuses Update with Draw.")
                breakdown = {"score": score, "base": score, "bonuses": {}, "penalties": {}, "accepted": accepted,
                             "static_only": False}
                reason = None if accepted else f"low_score ({score:.1f} < {THRESHOLD})"
                results.append(dict(cid=candidate.id, status=ACCEPTED if accepted else REJECTED, reason=reason,
                                    verdict=verdict, score=score, breakdown=breakdown))
                if accepted:
                    facts.accepted += 1
                else:
                    facts.rejected += 1
                    _count(facts.reasons, "low_score")
            _commit_judgement(store, _response(f"judge-{call}", "judge", None, call), results)
    finally:
        store.close()
    return facts


if __name__ == "__main__":
    print(build_run(Path(sys.argv[1])))
