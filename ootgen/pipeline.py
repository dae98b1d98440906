"""Run loop piece: what one candidate goes through, the same for streaming, batch and resume.

generation reply -> candidates (static L1, grounding check, dedup) -> judge prompt -> each judge's
verdicts -> L3 score -> cross-validation rule -> accepted or rejected, stored in one transaction each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from .budget import BudgetStop
from .exchange import Answer, Exchange
from .generate import Reply
from .models import ModelInfo
from .plan import Task, generation_vars, judge_vars
from .records import Example, Finding, Turn
from .store import ACCEPTED, PENDING, REJECTED, RunStore, StoredCandidate

Event = Callable[[str, dict], None]


@dataclass(frozen=True)
class JudgeReply:
    """One judge model's answer for a group (None when it gave no usable reply)."""

    model: str
    answer: Answer | None


class CandidatePipeline:
    def __init__(self, project, store: RunStore, exchange: Exchange, emit: Event):
        from .dedup import Deduplicator
        from .symbols import SymbolIndex

        self.project = project
        self.config = project.config
        self.store = store
        self.exchange = exchange
        self.emit = emit
        self.model = project.models.resolve(self.config.model)
        self.judges: list[ModelInfo] = [project.models.resolve(m) for m in self.config.judge_model_ids]
        self.index = SymbolIndex.load(self.config.symbols)
        self.checks = project.checks
        from .validate.policy import compile_policy

        self.check_policy = compile_policy(self.checks)  # compiled once for every static L1 check of the run
        from .validate.compile import checkout_from_config, open_compiler

        self.compiler = open_compiler(checkout_from_config(self.config.compiler, self.config.grounding),
                                      version=self.config.compiler.version)  # L1 compiler layer, or why it is off
        dedup = self.config.dedup
        self.dedup_enabled = dedup.enabled
        self.dedup = Deduplicator(near_threshold=dedup.near_threshold, num_perm=dedup.num_perm)
        self.dedup_restored = not dedup.enabled  # a resume's index is restored when the first reply needs it
        self.scoring = self.config.scoring
        self.rule = self.config.cross_validation.rule

    def model_for(self, kind: str, model_id: str) -> ModelInfo:
        if kind == "generate":
            return self.model
        return next((m for m in self.judges if m.id == model_id), self.judges[0])

    # --- resume --------------------------------------------------------------------------------------

    def restore_dedup(self) -> None:
        """The dedup index exactly as the live run built it: every candidate that passed static L1 and was
        not itself a duplicate, whatever the judge later said, in insertion order.

        Called before the session's first candidate is checked, not at start: a resume sends its first
        requests without waiting for it (before this session stores a candidate, so the order is the same)."""
        if self.dedup_restored:
            return
        self.dedup_restored = True
        # Each entry's fingerprint was stored with it, so nothing is recomputed (a 100k run resumes in seconds).
        from .dedup import dedup_text

        self.dedup.restore_all((_dedup_key(task_idx, slot), fingerprint, dedup_text(instruction, input_text))
                               for task_idx, slot, fingerprint, instruction, input_text in self.store.dedup_entries())

    # --- generation ----------------------------------------------------------------------------------

    def generation_prompt(self, task: Task):
        return self.project.renderer.generation_prompt(
            generation_vars(task, self.project, structured=self.model.structured),
            override=self.project.types[task.type].generate_template,
        )

    async def ask_generation(self, task: Task) -> Answer | None:
        return await self.exchange.ask("generate", self.model, self.generation_prompt(task), task.index,
                                       self.config.generation, "generation_reply", slots=task.count)

    def static_findings(self, task: Task, slot: int, example: Example, example_type) -> list[dict]:
        """Static L1 (and the grounding check) for one candidate; an `error` finding rejects it unjudged."""
        from .validate.static import run_static_checks

        findings = [f.as_dict() for f in run_static_checks(example, self.index, self.check_policy,
                                                           example_type=example_type.as_template_vars())]
        source = task.source(slot)
        if source and example_type.grounded_input == "with_bug" and _same_code(example.input, source["body"]):
            findings.append({"code": "GROUNDING_NO_BUG", "severity": "error", "location": "input",
                             "message": f"the input is {source['function']} unchanged: no bug was introduced"})
        return findings

    def _examples(self, task: Task, reply: Reply) -> list[Example]:
        assert reply.data is not None
        example_type = self.project.types[task.type]
        return [example_from_reply(item, task, example_type, slot)
                for slot, item in enumerate(reply.data["examples"][: task.count])]

    async def compile_reply(self, task: Task, reply: Reply) -> list[list[Finding]] | None:
        """The compiler layer's findings of a reply, with gcc in a worker thread (not blocking the event loop);
        None when the layer is off."""
        from .validate.compile import CompileChecker, compile_findings

        if not isinstance(self.compiler, CompileChecker):
            return None
        return await asyncio.to_thread(compile_findings, self.compiler, self._examples(task, reply), self.check_policy)

    def candidates(self, task: Task, reply: Reply, compiled: list[list[Finding]] | None = None) -> list[dict]:
        """Candidate rows from a valid generation reply: static L1, then dedup of what passed it.

        `compiled`: the reply's compiler-layer findings from `compile_reply`, else computed here."""
        from .validate.compile import compile_findings

        example_type = self.project.types[task.type]
        self.restore_dedup()
        rows = []
        examples = self._examples(task, reply)
        if compiled is None:
            compiled = compile_findings(self.compiler, examples, self.check_policy)  # one gcc call for the reply
        for slot, example in enumerate(examples):
            findings = self.static_findings(task, slot, example, example_type) + [f.as_dict() for f in compiled[slot]]
            row = {"task_idx": task.index, "slot": slot, "example": example, "context": task.context,
                   "complexity": task.level(slot), "findings": findings, "status": PENDING,
                   "extras": _candidate_extras(task, slot)}
            errors = sorted({f["code"] for f in findings if f["severity"] == "error"})
            if errors:  # static L1 failed: never sent to the judge
                row.update(status=REJECTED, reason="static: " + ", ".join(errors))
            elif self.dedup_enabled:
                duplicate = self.dedup.add(_dedup_key(task.index, slot), _dedup_text(example))
                if duplicate is not None:
                    row.update(status=REJECTED, reason=f"duplicate ({duplicate.kind})")
                else:
                    row["dedup"] = self.dedup.last_fingerprint
            rows.append(row)
        return rows

    def accept_generation(self, task: Task, answer: Answer, compiled: list[list[Finding]] | None = None) -> None:
        """Store a valid generation reply and its candidates in one transaction."""
        reply = answer.reply
        rows = self.candidates(task, reply, compiled)
        made = len((reply.data or {})["examples"])
        if made < task.count:
            self.store.record_failure(task.index, "generate", f"short_reply: {made} of {task.count} examples")
        self.store.commit_generation(answer.row, rows, task.index)
        self.emit("generated", {"task": task.index, "candidates": len(rows),
                                "static_rejected": sum(r["status"] == REJECTED for r in rows)})

    # --- judging -------------------------------------------------------------------------------------

    def pending_group(self, cids: list[int]) -> list[StoredCandidate]:
        return self.store.candidates_by_ids(cids, PENDING)  # by primary key: no scan of every pending row

    def judge_prompt(self, context_id: str, group: list[StoredCandidate], model: ModelInfo):
        return self.project.renderer.judge_prompt(
            judge_vars([(c.example, c.complexity) for c in group], self.project, context_id, structured=model.structured,
                       findings=[c.findings for c in group])
        )

    async def judge(self, context_id: str, cids: list[int]) -> None:
        """Every configured judge reviews the group (cross-validation), then the verdicts are stored."""
        group = self.pending_group(cids)
        if not group:
            return
        replies: list[JudgeReply] = []
        for model in self.judges:
            try:
                answer = await self.exchange.ask("judge", model, self.judge_prompt(context_id, group, model), None,
                                                 self.config.judge, "judge_reply", items=len(group))
            except BudgetStop:  # the replies of the judges before this one are paid for: kept for the next run
                for reply in replies:
                    if reply.answer is not None and reply.answer.row is not None:
                        self.store.save_response(**reply.answer.row)
                raise
            replies.append(JudgeReply(model.id, answer))
        self.accept_judgement(group, replies)

    def accept_judgement(self, group: list[StoredCandidate], replies: list[JudgeReply]) -> None:
        """L3 scores from each judge's verdicts, combined by the cross-validation rule, stored in one
        transaction with the judge responses."""
        results = [self.decide(number, candidate, replies) for number, candidate in enumerate(group, 1)]
        self.store.commit_judgement([r.answer.row for r in replies if r.answer is not None and r.answer.row is not None], results)
        self.emit("judged", {"accepted": sum(r["status"] == ACCEPTED for r in results),
                             "rejected": sum(r["status"] == REJECTED for r in results)})

    def decide(self, number: int, candidate: StoredCandidate, replies: list[JudgeReply]) -> dict:
        """The verdict on candidate `number` of its group from every judge's reply."""
        from .validate.score import score_candidate

        example_type = self.project.types[candidate.example.type]
        findings = [_finding(f) for f in candidate.findings]
        opinions = []
        for judge in replies:
            verdict = verdicts_by_index(judge.answer.reply).get(number) if judge.answer is not None else None
            if verdict is None:
                continue
            breakdown = score_candidate(
                findings, verdict, requires_code=example_type.requires_code_in_output,
                has_code="```" in answer_text(candidate.example), scoring=self.scoring, checks=self.checks,
            )
            opinions.append((judge.model, verdict, breakdown))
        if not opinions:
            failed = any(judge.answer is None for judge in replies)
            return dict(cid=candidate.id, status=REJECTED, reason="judge_failed" if failed else "judge_missing_verdict",
                        verdict=None, score=None, breakdown=None)
        threshold = self.scoring.threshold
        accepted, score = combine(self.rule, [b for _, _, b in opinions], threshold)
        detail = _breakdown_dict(opinions[0][2])
        if len(opinions) > 1:
            detail["judges"] = [{"model": m, "score": round(b.score, 3), "accepted": b.accepted} for m, _, b in opinions]
            detail["rule"] = self.rule
            detail["disagreement"] = len({b.accepted for _, _, b in opinions}) > 1
        reason = None if accepted else f"low_score ({score:.1f} < {threshold})"
        if not accepted and detail.get("disagreement"):
            reason = f"judges_disagree ({self.rule}: {score:.1f})"
        floored = [b.rejection for _, _, b in opinions if b.rejection]
        if not accepted and floored and self.rule != "majority":
            reason = floored[0]
        return dict(cid=candidate.id, status=ACCEPTED if accepted else REJECTED, reason=reason,
                    verdict=opinions[0][1], score=round(score, 3), breakdown=detail)


def verdicts_by_index(reply: Reply) -> dict[int, dict]:
    return {v["index"]: v for v in (reply.data or {}).get("verdicts", [])}


def in_dedup_index(candidate: StoredCandidate) -> bool:
    """Whether the live run added this candidate to the dedup index (it passed static L1 and was no duplicate)."""
    reason = candidate.reason or ""
    return not (candidate.status == REJECTED and (reason.startswith("static:") or reason.startswith("duplicate")))


def combine(rule: str, breakdowns: list, threshold: float) -> tuple[bool, float]:
    """Cross-validation: `mean` of scores against the threshold, or `all` / `majority` of the judges' verdicts."""
    scores = [b.score for b in breakdowns]
    mean = sum(scores) / len(scores)
    # A breakdown that scores above the threshold yet is not accepted carries a static error, and one under the
    # technical-accuracy floor a judged wrong fact: either rejects for all.
    static_ok = not any((b.score >= threshold and not b.accepted) or b.rejection for b in breakdowns)
    if rule == "all":
        return all(b.accepted for b in breakdowns), min(scores)
    if rule == "majority":
        return sum(b.accepted for b in breakdowns) * 2 > len(breakdowns), mean
    return mean >= threshold and static_ok, mean


def example_from_reply(item: dict, task: Task, example_type, slot: int = 0) -> Example:
    turns = tuple(Turn(t["role"], t["content"].strip()) for t in item.get("turns") or [] if t.get("content", "").strip())
    instruction, output = item["instruction"].strip(), item["output"].strip()
    if example_type.turns is not None and turns:
        users = [t for t in turns if t.role == "user"]
        assistants = [t for t in turns if t.role == "assistant"]
        instruction = instruction or (users[0].content if users else "")
        output = output or (assistants[-1].content if assistants else "")
    else:
        turns = ()
    source = task.source(slot)
    input_text = (item.get("input") or "").strip() if example_type.carries_input else ""
    if source and example_type.grounded_input == "verbatim":
        input_text = source["body"]  # the real function, verbatim, whatever the model echoed
    return Example(instruction=instruction, output=output, input=input_text, type=task.type,
                   topic=(item.get("topic") or "").strip() or None, turns=turns)


def answer_text(example: Example) -> str:
    if example.turns:
        return "\n".join(t.content for t in example.turns if t.role == "assistant")
    return example.output


def _dedup_key(task_idx: int, slot: int) -> str:
    return f"t{task_idx}s{slot}"


def _dedup_text(example: Example) -> str:
    from .dedup import dedup_text

    return dedup_text(example.instruction, example.input)


def _candidate_extras(task: Task, slot: int) -> dict:
    extras: dict = {}
    source = task.source(slot)
    if source:
        extras["source"] = {k: v for k, v in source.items() if k != "body"}
    if task.ladder:
        extras["ladder"] = {"task": task.index, "step": slot + 1, "of": task.count, "level": task.level(slot)}
    if task.question(slot):
        extras["question"] = task.question(slot)
    return extras


def _same_code(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _finding(data: dict) -> Finding:
    return Finding(data["code"], data["severity"], data["message"], data.get("location", ""))


def _breakdown_dict(breakdown) -> dict:
    return {
        "score": breakdown.score, "base": breakdown.base, "bonuses": dict(breakdown.bonuses),
        "penalties": dict(breakdown.penalties), "accepted": breakdown.accepted, "static_only": breakdown.static_only,
    }
