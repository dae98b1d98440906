"""The main job: plan -> render -> generate -> validate (L1, L2, L3) -> dedup -> store -> export.

`run_dataset` is the library entry point behind `ootgen run`. It resumes from the run directory's
SQLite store, never re-pays for a stored response, and keeps going until `num_examples` candidates are
accepted, the attempt limit is reached, or the budget would be passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, RunAborted
from .generate import (
    AdaptiveLimiter,
    ClaudeClient,
    Reply,
    Request,
    TransientFailure,
    build_request,
    parse_reply,
)
from .models import ModelInfo, Usage
from .plan import Task, generation_vars, iter_plan, judge_vars
from .records import Example, Turn
from .store import ACCEPTED, PENDING, REJECTED, ResponseCache, RunStore

TRANSIENT_TASK_RETRIES = 4  # whole-task retries after the SDK's own retries gave up
EXPECTED_ACCEPT_RATE = 0.7  # prior for planning before any candidate has been judged


@dataclass(frozen=True)
class RunOptions:
    api_key: str | None
    run_dir: Path
    output: Path
    num_examples: int
    base_url: str | None = None
    concurrency: int | None = None
    max_cost: float | None = None
    use_cache: bool = True
    cache_path: Path | None = None
    force: bool = False
    batch: bool = False
    batch_poll_seconds: float = 30.0


@dataclass
class RunResult:
    accepted: int
    target: int
    complete: bool
    stop_reason: str
    totals: dict
    outputs: dict = field(default_factory=dict)


Event = Callable[[str, dict], None]


class _Run:
    def __init__(self, project, options: RunOptions, store: RunStore, emit: Event):
        from .dedup import Deduplicator, dedup_text
        from .symbols import SymbolIndex

        self.project = project
        self.config = project.config
        self.options = options
        self.store = store
        self.emit = emit
        self.target = options.num_examples
        gen = self.config["generation"]
        self.per_call = gen["examples_per_call"]
        self.max_candidates = math.ceil(self.target * gen.get("max_attempts_factor", 3.0)) + self.per_call
        self.malformed_retries = gen.get("malformed_retries", 2)
        self.model = project.models.resolve(self.config["model"])
        self.judge_model = project.models.resolve(self.config.judge_model_id)
        self.judge_models = [project.models.resolve(m) for m in (self.config.get("judges") or [self.config.judge_model_id])]
        self.index = SymbolIndex.load(self.config.get("symbols") or "default")
        self.checks = project.checks
        dedup_cfg = self.config.section("dedup")
        self.dedup_enabled = dedup_cfg.get("enabled", True)
        self.dedup = Deduplicator(near_threshold=dedup_cfg.get("near_threshold", 0.85), num_perm=dedup_cfg.get("num_perm", 64))
        self.dedup_text = dedup_text
        self.cache = ResponseCache(options.cache_path or ResponseCache.default_path()) if options.use_cache else None
        self.client: ClaudeClient | None = None
        concurrency = options.concurrency or self.config["concurrency"]["max"]
        self.limiter = AdaptiveLimiter(concurrency, min(self.config["concurrency"].get("min", 1), concurrency))
        self.spent = 0.0
        self.reserved = 0.0
        self.budget_hit = False
        self.warm_contexts: set[str] = set()
        self.busy_cold: set[str] = set()
        self.judge_failures: dict[int, int] = {}
        self.post_processing = 0  # generation jobs past their API call, checking and storing the reply
        self.wake = asyncio.Event()

    # --- setup ---------------------------------------------------------------------------------

    def resume_state(self) -> None:
        for candidate in self.store.candidates(order="id"):
            if candidate.status in (ACCEPTED, PENDING):
                self.dedup.add(str(candidate.id), self.dedup_text(candidate.example.instruction, candidate.example.input))
        totals = self.store.totals()
        self.spent = totals["cost_usd"] or 0.0

    def candidates_made(self) -> int:
        return self.store.count()

    # --- budget --------------------------------------------------------------------------------

    def worst_case_cost(self, request: Request, model: ModelInfo) -> float:
        if not model.priced:
            return 0.0
        tokens_in = request.estimated_input_tokens()
        return (tokens_in * model.cache_write_per_mtok + request.max_tokens * model.output_per_mtok) / 1_000_000

    def may_spend(self, amount: float) -> bool:
        cap = self.options.max_cost
        if cap is None:
            return True
        if self.spent + self.reserved + amount > cap:
            self.budget_hit = True
            return False
        return True

    # --- one API exchange, with reuse of stored and cached responses -----------------------------

    async def exchange(self, request: Request, model: ModelInfo, task_idx: int | None) -> tuple[Reply, dict | None]:
        """Reply for `request`, plus the response row to store with its effect (None when reused from the store)."""
        stored = self.store.get_response(request.key)
        if stored is not None:
            import json

            usage = Usage(**json.loads(stored["usage"]))
            return parse_reply(request, stored["text"] or "", stored["stop_reason"], usage, from_cache=True), None
        if self.cache is not None:
            hit = self.cache.get(request.key)
            if hit is not None:
                reply = parse_reply(request, hit[0], hit[1], hit[2], from_cache=True)
                if reply.data is not None:
                    self.emit("cache_hit", {"kind": request.kind})
                    return reply, self._response_row(request, reply, task_idx, cost=0.0)
        cost_cap = self.worst_case_cost(request, model)
        if not self.may_spend(cost_cap):
            raise _BudgetStop()
        self.reserved += cost_cap
        try:
            text, stop_reason, usage = await self.client.call(request)
        finally:
            self.reserved -= cost_cap
        cost = model.cost(usage)
        self.spent += cost or 0.0
        reply = parse_reply(request, text, stop_reason, usage)
        if reply.data is not None and self.cache is not None:
            self.cache.put(request.key, text, stop_reason, usage)
        self.emit("call", {"kind": request.kind, "usage": usage.as_dict(), "cost": cost, "spent": self.spent})
        return reply, self._response_row(request, reply, task_idx, cost=cost)

    def _response_row(self, request: Request, reply: Reply, task_idx: int | None, *, cost: float | None) -> dict:
        return dict(
            key=request.key, kind=request.kind, model=request.model, task_idx=task_idx, text=reply.text,
            stop_reason=reply.stop_reason, usage=reply.usage, cost=cost, batch=False,
            valid=reply.data is not None, error=reply.error, from_cache=reply.from_cache,
        )

    async def ask(self, kind: str, model: ModelInfo, prompt, task_idx: int | None, settings: dict, schema: str) -> tuple[Reply, dict | None] | None:
        """Ask until the reply is schema-valid (bounded re-asks); invalid replies are stored as paid-for failures."""
        for attempt in range(self.malformed_retries + 1):
            request = build_request(
                kind, model, prompt, max_tokens=settings["max_tokens"], schema_name=schema,
                effort=settings.get("effort"), temperature=settings.get("temperature"), attempt=attempt,
            )
            for transient in range(TRANSIENT_TASK_RETRIES + 1):
                try:
                    reply, row = await self.exchange(request, model, task_idx)
                    break
                except TransientFailure as failure:
                    self.store.record_failure(task_idx, kind, f"api_error: {failure}")
                    self.emit("failure", {"kind": kind, "reason": str(failure)})
                    if transient == TRANSIENT_TASK_RETRIES:
                        return None
                    await asyncio.sleep(min(2.0 ** transient, 30.0) * 0.5)
            if reply.data is not None:
                return reply, row
            if row is not None:
                self.store.save_response(**row)
            self.store.record_failure(task_idx, kind, f"bad_reply: {reply.error}")
            self.emit("failure", {"kind": kind, "reason": reply.error})
        return None

    # --- generation ------------------------------------------------------------------------------

    def generation_prompt(self, task: Task):
        structured = self.model.structured
        return self.project.renderer.generation_prompt(
            generation_vars(task, self.project, structured=structured), override=self.project.types[task.type].generate_template
        )

    async def generate(self, task: Task) -> None:
        try:
            result = await self.ask("generate", self.model, self.generation_prompt(task), task.index, self.config["generation"], "generation_reply")
        finally:
            self.busy_cold.discard(task.context)
        self.post_processing += 1
        self.wake.set()  # the scheduler may send the next call while this reply is checked and stored
        try:
            await asyncio.sleep(0)  # let the scheduler run first
            if result is None:
                self.store.set_task_state(task.index, "failed", "no valid reply")
                return
            self.warm_contexts.add(task.context)
            self.store_generation(task, *result)
        finally:
            self.post_processing -= 1

    def store_generation(self, task: Task, reply: Reply, row: dict | None) -> None:
        """Static L1 and dedup on a valid generation reply, then one transaction with its response."""
        from .validate.static import run_static_checks

        example_type = self.project.types[task.type]
        rows = []
        for slot, item in enumerate(reply.data["examples"][: task.count]):
            example = _example_from_reply(item, task, example_type, slot)
            findings = [f.as_dict() for f in run_static_checks(example, self.index, self.checks, example_type=example_type.as_template_vars())]
            candidate = {"task_idx": task.index, "slot": slot, "example": example, "context": task.context,
                         "complexity": task.level(slot), "findings": findings, "status": PENDING,
                         "extras": _candidate_extras(task, slot)}
            source = task.source(slot)
            if source and example_type.grounded_input == "with_bug" and _same_code(example.input, source["body"]):
                findings.append({"code": "GROUNDING_NO_BUG", "severity": "error", "location": "input",
                                 "message": f"the input is {source['function']} unchanged: no bug was introduced"})
            errors = [f for f in findings if f["severity"] == "error"]
            if errors:  # static L1 failed: never sent to the judge
                candidate.update(status=REJECTED, reason="static: " + ", ".join(sorted({f["code"] for f in errors})))
            elif self.dedup_enabled:
                duplicate = self.dedup.add(f"t{task.index}s{slot}", self.dedup_text(example.instruction, example.input))
                if duplicate is not None:
                    candidate.update(status=REJECTED, reason=f"duplicate ({duplicate.kind})")
            rows.append(candidate)
        if len(reply.data["examples"]) < task.count:
            self.store.record_failure(task.index, "generate", f"short_reply: {len(reply.data['examples'])} of {task.count} examples")
        self.store.commit_generation(row, rows, task.index)
        self.emit("generated", {"task": task.index, "candidates": len(rows), "static_rejected": sum(r["status"] == REJECTED for r in rows)})

    # --- judging ---------------------------------------------------------------------------------

    def pending_group(self, cids: list[int]) -> list:
        wanted = set(cids)
        by_id = {c.id: c for c in self.store.candidates(PENDING) if c.id in wanted}
        return [by_id[c] for c in cids if c in by_id]

    def judge_prompt(self, context_id: str, group: list, model: ModelInfo | None = None):
        model = model or self.judge_model
        structured = model.structured
        return self.project.renderer.judge_prompt(
            judge_vars([(c.example, c.complexity) for c in group], self.project, context_id, structured=structured,
                       findings=[c.findings for c in group])
        )

    async def judge(self, context_id: str, cids: list[int]) -> None:
        group = self.pending_group(cids)
        if not group:
            return
        replies = []
        for model in self.judge_models:  # cross-validation: every configured judge reviews the group
            result = await self.ask("judge", model, self.judge_prompt(context_id, group, model), None, self.config["judge"], "judge_reply")
            reply, row = result or (None, None)
            replies.append((model.id, reply, row))
        self.store_judgement(group, replies)

    def store_judgement(self, group: list, replies: list[tuple[str, Reply | None, dict | None]]) -> None:
        """L3 scores from each judge's L1/L2 verdicts, combined by the cross-validation rule, stored in one
        transaction with the judge responses."""
        from .validate.score import score_candidate

        scoring = self.config["scoring"]
        rule = self.config.section("cross_validation").get("rule", "mean")
        verdicts_by_judge = [
            (model_id, {v["index"]: v for v in reply.data["verdicts"]} if reply is not None else None) for model_id, reply, _ in replies
        ]
        results = []
        for number, candidate in enumerate(group, 1):
            example_type = self.project.types[candidate.example.type]
            findings = [_finding(f) for f in candidate.findings]
            opinions = []
            for model_id, verdicts in verdicts_by_judge:
                verdict = (verdicts or {}).get(number)
                if verdict is None:
                    continue
                breakdown = score_candidate(
                    findings, verdict, requires_code=example_type.requires_code_in_output,
                    has_code="```" in _answer_text(candidate.example), scoring=scoring, checks=self.checks,
                )
                opinions.append((model_id, verdict, breakdown))
            if not opinions:
                failed = any(verdicts is None for _, verdicts in verdicts_by_judge)
                reason = "judge_failed" if failed else "judge_missing_verdict"
                results.append(dict(cid=candidate.id, status=REJECTED, reason=reason, verdict=None, score=None, breakdown=None))
                continue
            accepted, score = _combine(rule, [b for _, _, b in opinions], scoring["threshold"])
            detail = _breakdown_dict(opinions[0][2])
            if len(opinions) > 1:
                votes = [b.accepted for _, _, b in opinions]
                detail["judges"] = [{"model": m, "score": round(b.score, 3), "accepted": b.accepted} for m, _, b in opinions]
                detail["rule"] = rule
                detail["disagreement"] = len(set(votes)) > 1
            verdict = opinions[0][1]
            reason = None if accepted else f"low_score ({score:.1f} < {scoring['threshold']})"
            if not accepted and detail.get("disagreement"):
                reason = f"judges_disagree ({rule}: {score:.1f})"
            results.append(dict(cid=candidate.id, status=ACCEPTED if accepted else REJECTED, reason=reason,
                                verdict=verdict, score=round(score, 3), breakdown=detail))
        self.store.commit_judgement([row for _, _, row in replies if row is not None], results)
        self.emit("judged", {"accepted": sum(r["status"] == ACCEPTED for r in results), "rejected": sum(r["status"] == REJECTED for r in results)})

    # --- scheduling ------------------------------------------------------------------------------

    def acceptance_rate(self) -> float:
        accepted, rejected = self.store.count(ACCEPTED), self.store.count(REJECTED)
        judged = accepted + rejected
        if judged < 6:
            return EXPECTED_ACCEPT_RATE
        return max(0.15, accepted / judged)

    async def execute(self) -> str:
        judge_batch = (self.config.get("judge") or {}).get("candidates_per_call", 3)
        states = self.store.task_states()
        plan = iter_plan(self.project)
        deferred: list[Task] = []
        inflight_gen: dict[asyncio.Task, Task] = {}
        inflight_judge: set[asyncio.Task] = set()
        queued: set[int] = set()  # candidate ids being judged or waiting for a judge call
        max_parallel = self.limiter.maximum
        exhausted = False

        def next_task() -> Task | None:
            for pos, task in enumerate(deferred):
                if self._may_start(task):
                    return deferred.pop(pos)
            for _ in range(10_000):
                task = next(plan)
                if states.get(task.index) == "done":
                    continue
                if task.index not in states:
                    self.store.save_tasks([task])
                    states[task.index] = "planned"
                if self._may_start(task):
                    return task
                deferred.append(task)
                if len(deferred) > 64:
                    return deferred.pop(0)
            return None

        while True:
            accepted = self.store.count(ACCEPTED)
            if accepted >= self.target:
                stop = "complete"
                break
            # Judge pending candidates in groups of one context (one pass over the pending rows).
            by_context: dict[str, list[int]] = {}
            for candidate in self.store.candidates(PENDING):
                if candidate.id not in queued:
                    by_context.setdefault(candidate.context, []).append(candidate.id)
            generating = {task.context for task in inflight_gen.values()}
            for context_id, ids in by_context.items():
                # Full groups go at once; a partial group goes when no generation for its context is in flight
                # (nothing more is coming for it soon), so paid-for candidates never wait for the run's end.
                while ids and (len(ids) >= judge_batch or context_id not in generating or exhausted):
                    if len(inflight_judge) + len(inflight_gen) >= max_parallel * 2:
                        break
                    group, ids[:] = ids[:judge_batch], ids[judge_batch:]
                    queued.update(group)
                    job = asyncio.create_task(self.judge(context_id, group))
                    inflight_judge.add(job)
            # Start generation while the expected yield of work in flight falls short of the target.
            rate = self.acceptance_rate()
            while not exhausted and not self.budget_hit and self.gen_calling_or_starting(inflight_gen) < max_parallel:
                in_pipeline = self.store.count(PENDING) + len(inflight_gen) * self.per_call
                if accepted + in_pipeline * rate >= self.target:
                    break
                if self.candidates_made() + len(inflight_gen) * self.per_call >= self.max_candidates:
                    exhausted = True
                    break
                task = next_task()
                if task is None:
                    break
                if task.context not in self.warm_contexts:
                    self.busy_cold.add(task.context)
                job = asyncio.create_task(self.generate(task))
                inflight_gen[job] = task
            if not inflight_gen and not inflight_judge:
                if self.store.count(PENDING) and not self.budget_hit:
                    exhausted = True  # flush the last partial judge groups
                    if any(c.id not in queued for c in self.store.candidates(PENDING)):
                        continue
                stop = "budget" if self.budget_hit else "attempt_limit"
                break
            self.wake.clear()
            waker = asyncio.ensure_future(self.wake.wait())
            done, _ = await asyncio.wait(set(inflight_gen) | inflight_judge | {waker}, return_when=asyncio.FIRST_COMPLETED)
            waker.cancel()
            done.discard(waker)
            for job in done:
                inflight_gen.pop(job, None)
                inflight_judge.discard(job)
                error = job.exception()
                if isinstance(error, _BudgetStop):
                    self.budget_hit = True
                elif error is not None:
                    for other in list(inflight_gen) + list(inflight_judge):
                        other.cancel()
                    raise error
            if self.budget_hit and not inflight_gen and not inflight_judge:
                stop = "budget"
                break
        # Calls already in flight are paid for: let them finish and store their results (surplus examples
        # stay in the store as accepted beyond the target) rather than throwing their responses away.
        leftovers = list(inflight_gen) + list(inflight_judge)
        if leftovers:
            outcomes = await asyncio.gather(*leftovers, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException) and not isinstance(outcome, (_BudgetStop, asyncio.CancelledError)):
                    raise outcome
        return stop

    def gen_calling_or_starting(self, inflight_gen: dict) -> int:
        """Generation jobs that hold or wait for an API slot (from creation until their reply arrives)."""
        return len(inflight_gen) - self.post_processing

    def _may_start(self, task: Task) -> bool:
        """Only one call at a time for a context whose cache prefix is not written yet."""
        return task.context in self.warm_contexts or task.context not in self.busy_cold


class _BudgetStop(Exception):
    pass


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


def _example_from_reply(item: dict, task: Task, example_type, slot: int = 0) -> Example:
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
    return Example(
        instruction=instruction,
        output=output,
        input=input_text,
        type=task.type,
        topic=(item.get("topic") or "").strip() or None,
        turns=turns,
    )


def _combine(rule: str, breakdowns: list, threshold: float) -> tuple[bool, float]:
    """Cross-validation: `mean` of scores against the threshold, or `all` / `majority` of the judges' verdicts."""
    scores = [b.score for b in breakdowns]
    mean = sum(scores) / len(scores)
    # A breakdown that scores above the threshold yet is not accepted carries a static error: that rejects for all.
    static_ok = not any(b.score >= threshold and not b.accepted for b in breakdowns)
    if rule == "all":
        return all(b.accepted for b in breakdowns), min(scores)
    if rule == "majority":
        return sum(b.accepted for b in breakdowns) * 2 > len(breakdowns), mean
    return mean >= threshold and static_ok, mean


def _answer_text(example: Example) -> str:
    if example.turns:
        return "\n".join(t.content for t in example.turns if t.role == "assistant")
    return example.output


def _finding(data: dict):
    from .records import Finding

    return Finding(data["code"], data["severity"], data["message"], data.get("location", ""))


def _breakdown_dict(breakdown) -> dict:
    return {
        "score": breakdown.score, "base": breakdown.base, "bonuses": dict(breakdown.bonuses),
        "penalties": dict(breakdown.penalties), "accepted": breakdown.accepted, "static_only": breakdown.static_only,
    }


def check_can_run(project, options: RunOptions) -> None:
    """Refusals that must happen before any request: no key, unknown cost with a cap."""
    from .errors import ApiKeyMissing

    if not options.api_key:
        raise ApiKeyMissing(
            "no API key: pass --api-key KEY or set ANTHROPIC_API_KEY (or use --dry-run to see the plan without one)",
            key="api key",
        )
    model = project.models.resolve(project.config["model"])
    for info in (model, project.models.resolve(project.config.judge_model_id)):
        if not info.known and options.max_cost is not None:
            raise ConfigError(
                f"model '{info.id}' is not in the model table, so its cost is unknown and --max-cost cannot be enforced",
                file=project.models.file, key="models", expected="an entry with prices for this model, or no --max-cost",
            )


def run_dataset(project, options: RunOptions, emit: Event | None = None) -> RunResult:
    """Run (or resume) a generation run and export its outputs. Blocks until done."""
    from .export import export_run

    emit = emit or (lambda _event, _data: None)
    check_can_run(project, options)
    store = RunStore.open_run_dir(options.run_dir)
    started = time.time()
    try:
        resuming = store.bind(
            work_hash=project.work_hash, config_hash=project.config_hash, settings=project.config.settings, force=options.force
        )
        store.set_meta("seed", project.config["seed"])
        store.set_meta("model", project.config["model"])
        store.set_meta("target", options.num_examples)
        run = _Run(project, options, store, emit)
        run.resume_state()
        emit("start", {"resuming": resuming, "accepted": store.count(ACCEPTED), "target": options.num_examples,
                       "spent": run.spent, "model": run.model.id, "known_model": run.model.known})
        try:
            stop = asyncio.run(_execute(run))
        except KeyboardInterrupt:  # Ctrl-C: everything stored stays; export what was accepted
            stop = "interrupted"
        except sqlite3.OperationalError as error:  # e.g. a full disk: the last transaction rolled back
            raise RunAborted(
                f"the run store could not be written ({error}); everything committed before is safe: "
                "free some space and run the same command again to resume",
                file=str(store.path),
            ) from None
    finally:
        with contextlib.suppress(sqlite3.Error):  # bookkeeping only; must not mask the real error
            store.set_meta("last_duration_seconds", round(time.time() - started, 3))
            store.set_meta("total_duration_seconds", round((store.get_meta("total_duration_seconds", 0) or 0) + time.time() - started, 3))
    totals = store.totals()
    outputs = export_run(store, project=project, output=options.output, target=options.num_examples, stop_reason=stop,
                         limiter_peak=run.limiter.peak)
    store.close()
    accepted = min(totals["accepted"], options.num_examples)
    result = RunResult(accepted, options.num_examples, accepted >= options.num_examples, stop, totals, outputs)
    emit("done", {"accepted": accepted, "target": options.num_examples, "stop": stop, "cost": totals["cost_usd"]})
    return result


async def _execute(run: _Run) -> str:
    import signal

    # SIGTERM stops the run like Ctrl-C does: the main task is cancelled, what is stored stays, and the
    # outputs are exported with what was accepted.
    main_task = asyncio.current_task()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    run.client = ClaudeClient(
        run.options.api_key, limiter=run.limiter, base_url=run.options.base_url,
        max_retries=run.config["concurrency"].get("sdk_max_retries", 4),
        timeout=run.config["concurrency"].get("timeout_seconds", 600),
    )
    try:
        if run.options.batch:
            from .batch import execute_batches

            return await execute_batches(run)
        return await run.execute()
    except asyncio.CancelledError:
        return "interrupted"
    finally:
        await run.client.close()
        if run.cache is not None:
            run.cache.close()
