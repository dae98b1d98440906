"""Generate stage, Message Batches flavour (`ootgen run --batch`): half price, asynchronous.

Work goes in waves: a generation wave, then a judge wave for the candidates it produced. Each batch id
is stored the moment the API returns it, so a restarted run resumes polling instead of paying again.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass

from .generate import Request, build_request, key_rejected, parse_reply, usage_from
from .store import ACCEPTED, PENDING

MAX_REQUESTS_PER_BATCH = 100_000  # the API's per-batch request limit
MAX_BATCH_BYTES = 200 * 1024 * 1024  # stay under the API's 256 MB per-batch body limit


@dataclass(frozen=True)
class _Entry:
    """What a batch entry was for; stored as JSON beside the batch id."""

    key: str
    kind: str
    schema: str
    model: str
    task_idx: int | None = None
    context: str | None = None
    cids: tuple[int, ...] = ()


async def execute_batches(run) -> str:
    """Waves of generation and judge batches until the target is accepted or the attempt limit is hit."""
    await _resume_open_batches(run)
    states = run.store.task_states()
    tasks_by_index = {}
    from .plan import iter_plan

    plan = iter_plan(run.project)
    while True:
        accepted = run.store.count(ACCEPTED)
        if accepted >= run.target:
            return "complete"
        if run.budget_hit:
            return "budget"
        pending = list(run.store.candidates(PENDING))
        if pending:
            await _judge_wave(run, pending)
            continue
        made = run.candidates_made()
        if made >= run.max_candidates:
            return "attempt_limit"
        rate = run.acceptance_rate()
        wanted = math.ceil((run.target - accepted) / rate / run.per_call)
        wanted = max(1, min(wanted, math.ceil((run.max_candidates - made) / run.per_call)))
        wave = []
        while len(wave) < wanted:
            task = next(plan)
            tasks_by_index[task.index] = task
            if states.get(task.index) == "done":
                continue
            if task.index not in states:
                run.store.save_tasks([task])
                states[task.index] = "planned"
            wave.append(task)
        await _generation_wave(run, wave)
        states.update(run.store.task_states())


async def _generation_wave(run, tasks) -> None:
    entries, requests = [], []
    for task in tasks:
        attempt = _invalid_replies(run, task.index)
        if attempt > run.malformed_retries:
            run.store.set_task_state(task.index, "failed", "no valid reply")
            continue
        settings = run.config["generation"]
        request = build_request("generate", run.model, run.generation_prompt(task), max_tokens=settings["max_tokens"],
                                schema_name="generation_reply", effort=settings.get("effort"),
                                temperature=settings.get("temperature"), attempt=attempt)
        stored = run.store.get_response(request.key)
        if stored is not None and stored["valid"]:
            reply = parse_reply(request, stored["text"], stored["stop_reason"], usage_from(json.loads(stored["usage"])), from_cache=True)
            run.store_generation(task, reply, None)
            continue
        entries.append(_Entry(request.key, "generate", "generation_reply", run.model.id, task_idx=task.index))
        requests.append(request)
    await _submit_and_collect(run, entries, requests)


async def _judge_wave(run, pending) -> None:
    size = (run.config.get("judge") or {}).get("candidates_per_call", 3)
    by_context: dict[str, list] = {}
    for candidate in pending:
        by_context.setdefault(candidate.context, []).append(candidate)
    entries, requests = [], []
    settings = run.config["judge"]
    for context_id, candidates in by_context.items():
        for start in range(0, len(candidates), size):
            group = candidates[start : start + size]
            request = build_request("judge", run.judge_model, run.judge_prompt(context_id, group), max_tokens=settings["max_tokens"],
                                    schema_name="judge_reply", effort=settings.get("effort"), temperature=None)
            entries.append(_Entry(request.key, "judge", "judge_reply", run.judge_model.id, context=context_id,
                                  cids=tuple(c.id for c in group)))
            requests.append(request)
    await _submit_and_collect(run, entries, requests)


async def _submit_and_collect(run, entries: list[_Entry], requests: list[Request]) -> None:
    if not entries:
        return
    budget = sum(run.worst_case_cost(r, run.model if r.kind == "generate" else run.judge_model) for r in requests)
    if not run.may_spend(budget * run.model.batch_multiplier):
        run.budget_hit = True
        return
    client = run.client.client
    for chunk_entries, chunk_requests in _chunks(entries, requests):
        body = [{"custom_id": r.key, "params": r.api_params()} for r in chunk_requests]
        try:
            batch = await client.messages.batches.create(requests=body)
        except run.client.anthropic.AuthenticationError:
            raise key_rejected() from None
        run.store.save_batch(batch.id, "mixed", [e.__dict__ for e in chunk_entries])
        run.emit("batch_created", {"batch": batch.id, "requests": len(body)})
    await _resume_open_batches(run)


def _chunks(entries, requests):
    start = 0
    while start < len(requests):
        size, end = 0, start
        while end < len(requests) and end - start < MAX_REQUESTS_PER_BATCH:
            size += len(requests[end].system) + len(requests[end].instructions) + len(requests[end].user) + 2048
            if size > MAX_BATCH_BYTES and end > start:
                break
            end += 1
        yield entries[start:end], requests[start:end]
        start = end


async def _resume_open_batches(run) -> None:
    for row in run.store.open_batches():
        entries = {e["key"]: _Entry(**{**e, "cids": tuple(e.get("cids") or ())}) for e in json.loads(row["request_keys"])}
        await _poll(run, row["id"])
        await _collect(run, row["id"], entries)
        run.store.close_batch(row["id"])


async def _poll(run, batch_id: str) -> None:
    client = run.client.client
    while True:
        batch = await client.messages.batches.retrieve(batch_id)
        counts = getattr(batch, "request_counts", None)
        run.emit("batch_poll", {"batch": batch_id, "status": batch.processing_status,
                                "succeeded": getattr(counts, "succeeded", None), "processing": getattr(counts, "processing", None)})
        if batch.processing_status == "ended":
            return
        await asyncio.sleep(run.options.batch_poll_seconds)


async def _collect(run, batch_id: str, entries: dict[str, _Entry]) -> None:
    client = run.client.client
    results = await client.messages.batches.results(batch_id)
    seen = set()
    async for item in results:
        entry = entries.get(item.custom_id)
        if entry is None or item.custom_id in seen:
            continue
        seen.add(item.custom_id)
        result = item.result
        if result.type != "succeeded":
            run.store.record_failure(entry.task_idx, entry.kind, f"batch_{result.type}: {batch_id}")
            run.emit("failure", {"kind": entry.kind, "reason": f"batch {result.type}"})
            if entry.kind == "judge":
                _count_judge_failure(run, entry.cids)  # they stay pending for the next wave, a bounded number of times
            continue
        message = result.message
        text = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text")
        usage = usage_from(message.usage)
        model = run.model if entry.kind == "generate" else run.judge_model
        cost = model.cost(usage, batch=True)
        run.spent += cost or 0.0
        run.emit("call", {"kind": entry.kind, "usage": usage.as_dict(), "cost": cost, "spent": run.spent})
        request = _KeyOnly(entry.key, entry.schema)
        reply = parse_reply(request, text, message.stop_reason, usage)
        row = dict(key=entry.key, kind=entry.kind, model=entry.model, task_idx=entry.task_idx, text=text,
                   stop_reason=message.stop_reason, usage=usage, cost=cost, batch=True,
                   valid=reply.data is not None, error=reply.error, from_cache=False)
        if entry.kind == "generate":
            task = _task(run, entry.task_idx)
            if reply.data is None:
                run.store.save_response(**row)
                run.store.record_failure(entry.task_idx, "generate", f"bad_reply: {reply.error}")
            else:
                run.store_generation(task, reply, row)
        else:
            group = run.pending_group(list(entry.cids))
            if reply.data is None:
                run.store.save_response(**row)
                run.store.record_failure(None, "judge", f"bad_reply: {reply.error}")
            valid = reply.data is not None
            run.store_judgement(group, [(entry.model, reply if valid else None, row if valid else None)])
    missing = set(entries) - seen
    for key in missing:
        run.store.record_failure(entries[key].task_idx, entries[key].kind, f"batch_missing_result: {batch_id}")


@dataclass(frozen=True)
class _KeyOnly:
    key: str
    schema_name: str


def _count_judge_failure(run, cids) -> None:
    failed = []
    for cid in cids:
        run.judge_failures[cid] = run.judge_failures.get(cid, 0) + 1
        if run.judge_failures[cid] > run.malformed_retries:
            failed.append(cid)
    group = run.pending_group(failed)
    if group:
        run.store_judgement(group, [(run.judge_model.id, None, None)])


def _invalid_replies(run, task_idx: int) -> int:
    return run.store.db.execute(
        "SELECT COUNT(*) FROM requests WHERE task_idx=? AND kind='generate' AND valid=0", (task_idx,)
    ).fetchone()[0]


def _task(run, task_idx: int):
    row = run.store.db.execute("SELECT * FROM tasks WHERE idx=?", (task_idx,)).fetchone()
    from .plan import Task

    extras = json.loads(row["extras"] or "{}")
    return Task.from_stored(row["idx"], row["type"], row["context"], row["complexity"], tuple(json.loads(row["topics"])),
                            tuple(json.loads(row["instructions"])), extras)
