"""Generate stage, Message Batches flavour (`ootgen run --batch`): half price, asynchronous.

Work goes in waves: a generation wave, then judge waves for the candidates it produced. Candidates go
through the same pipeline as in streaming (re-asks of unusable replies, every configured judge, the
same scoring and dedup). Every collected response is stored first; what a wave produced is then read
back from the store, exactly as a resumed run would read it.

No batch is paid for twice: its custom ids are stored *before* it is created, and a run that finds
such a record without a batch id looks the batch up (batches.list, then its results' custom ids)
before it creates another.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from collections import Counter
from dataclasses import asdict, dataclass

from .exchange import Answer, question, response_row
from .generate import ClaudeClient, Request, key_rejected, parse_reply, usage_from
from .pipeline import JudgeReply
from .plan import Task
from .scheduler import PlanCursor, acceptance_rate
from .store import ACCEPTED, PENDING, StoredCandidate

MAX_REQUESTS_PER_BATCH = 100_000  # the API's per-batch request limit
MAX_BATCH_BYTES = 200 * 1024 * 1024  # stay under the API's 256 MB per-batch body limit
LOOKUP_SLACK_SECONDS = 120  # clock skew allowed when matching an unrecorded batch by its creation time


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


class BatchRun:
    def __init__(self, parts, client: ClaudeClient):
        self.parts = parts
        self.store = parts.store
        self.pipeline = parts.pipeline
        self.exchange = parts.exchange
        self.budget = parts.budget
        self.targets = parts.targets
        self.emit = parts.emit
        self.client = client
        self.config = parts.project.config
        self.cursor = PlanCursor(parts.project, self.store)
        self.retry_tasks: list[Task] = []  # tasks whose last reply was unusable: re-asked in the next wave
        self.entry_failures: Counter[str] = Counter()  # errored / expired / missing results per request key

    async def execute(self) -> str:
        await self._resume_open_batches()
        while True:
            if self.store.count(ACCEPTED) >= self.targets.num:
                return "complete"
            if self.budget.exhausted:
                return "budget"
            pending = list(self.store.candidates(PENDING))
            if pending:
                await self._judge_wave(pending)
                continue
            wave = self.retry_tasks + self._new_tasks()
            self.retry_tasks = []
            if not wave:
                return "attempt_limit"
            await self._generation_wave(wave)

    def _new_tasks(self) -> list[Task]:
        targets = self.targets
        made = self.store.count()
        if made >= targets.max_candidates:
            return []
        wanted = math.ceil((targets.num - self.store.count(ACCEPTED)) / acceptance_rate(self.store) / targets.per_call)
        wanted = max(1, min(wanted, math.ceil((targets.max_candidates - made) / targets.per_call)))
        tasks: list[Task] = []
        while len(tasks) < wanted:
            task = self.cursor.next()
            if task is None:
                break
            tasks.append(task)
        return tasks

    # --- generation ------------------------------------------------------------------------------------

    def _generation_request(self, task: Task) -> Request | None:
        """The request still to send for `task`, or None when the task is settled (from the store or cache)."""
        model = self.pipeline.model
        prompt = self.pipeline.generation_prompt(task)
        settings = self.config["generation"]

        def build(attempt: int) -> Request:
            return question("generate", model, prompt, settings, "generation_reply", attempt)

        attempt, stored = self.exchange.first_open_attempt(build)
        if stored is not None:
            self.pipeline.accept_generation(task, Answer(stored, None))
            return None
        if attempt > self.exchange.reasks or self.entry_failures[build(attempt).key] > self.exchange.reasks:
            self.store.set_task_state(task.index, "failed", "no valid reply")
            return None
        request = build(attempt)
        cached = self.exchange.cached(request, task.index)
        if cached is not None:
            self.pipeline.accept_generation(task, cached)
            return None
        return request

    async def _generation_wave(self, tasks: list[Task]) -> None:
        entries, requests = [], []
        for task in tasks:
            request = self._generation_request(task)
            if request is not None:
                entries.append(_Entry(request.key, "generate", "generation_reply", request.model, task_idx=task.index))
                requests.append(request)
        if not await self._submit_and_collect(entries, requests):
            return
        for task in tasks:  # read back what the wave produced; an unusable reply is asked again next wave
            if self._generation_request(task) is not None:
                self.retry_tasks.append(task)

    # --- judging ---------------------------------------------------------------------------------------

    def _judge_requests(self, context_id: str, group: list[StoredCandidate]) -> list[Request]:
        """The judge requests still to send for `group`; when none is left, the group is decided and stored."""
        settings = self.config["judge"]
        replies, missing = [], []
        for model in self.pipeline.judges:
            prompt = self.pipeline.judge_prompt(context_id, group, model)

            def build(attempt: int, model=model, prompt=prompt) -> Request:
                return question("judge", model, prompt, settings, "judge_reply", attempt, len(group))

            attempt, stored = self.exchange.first_open_attempt(build)
            if stored is not None:
                replies.append(JudgeReply(model.id, Answer(stored, None)))
            elif attempt > self.exchange.reasks or self.entry_failures[build(attempt).key] > self.exchange.reasks:
                replies.append(JudgeReply(model.id, None))
            else:
                request = build(attempt)
                cached = self.exchange.cached(request, None)
                if cached is not None:
                    replies.append(JudgeReply(model.id, cached))
                else:
                    missing.append(request)
        if not missing:
            self.pipeline.accept_judgement(group, replies)
        return missing

    async def _judge_wave(self, pending: list[StoredCandidate]) -> None:
        by_context: dict[str, list[StoredCandidate]] = {}
        for candidate in pending:
            by_context.setdefault(candidate.context, []).append(candidate)
        size = self.targets.judge_batch
        entries, requests = [], []
        for context_id, candidates in by_context.items():
            for start in range(0, len(candidates), size):
                group = candidates[start : start + size]
                for request in self._judge_requests(context_id, group):
                    entries.append(_Entry(request.key, "judge", "judge_reply", request.model, context=context_id,
                                          cids=tuple(c.id for c in group)))
                    requests.append(request)
        await self._submit_and_collect(entries, requests)

    # --- batches ---------------------------------------------------------------------------------------

    async def _submit_and_collect(self, entries: list[_Entry], requests: list[Request]) -> bool:
        """Send the requests as batches and store every result; False when the budget refused them."""
        if not entries:
            return True
        worst = sum(self.budget.worst_case(r, self.pipeline.model_for(r.kind, r.model), batch=True) for r in requests)
        if not self.budget.reserve_now(worst):
            return False
        try:
            for chunk_entries, chunk_requests in _chunks(entries, requests):
                body = [{"custom_id": r.key, "params": r.api_params()} for r in chunk_requests]
                intent = self.store.save_batch_intent([asdict(e) for e in chunk_entries])
                try:
                    batch = await self.client.client.messages.batches.create(requests=body)  # type: ignore[arg-type]
                except self.client.anthropic.AuthenticationError:
                    raise key_rejected() from None
                self.store.set_batch_id(intent, batch.id)
                self.emit("batch_created", {"batch": batch.id, "requests": len(body)})
            await self._resume_open_batches()
        finally:
            self.budget.release_now(worst, 0.0)
        return True

    async def _resume_open_batches(self) -> None:
        for row in self.store.open_batches():
            entries = {e["key"]: _Entry(**{**e, "cids": tuple(e.get("cids") or ())}) for e in json.loads(row["request_keys"])}
            batch_id = row["id"]
            if row["status"] == "creating":  # killed between recording the ids and storing the batch id
                batch_id = await self._find_batch(set(entries), row["created"])
                if batch_id is None:
                    self.store.drop_batch_intent(row["id"])
                    continue  # never created: its work is planned again
                self.store.set_batch_id(row["id"], batch_id)
            await self._poll(batch_id)
            await self._collect(batch_id, entries)
            self.store.close_batch(batch_id)

    async def _find_batch(self, keys: set[str], recorded: float) -> str | None:
        """The batch created with exactly these custom ids after `recorded`, if the API has one."""
        since = dt.datetime.fromtimestamp(recorded - LOOKUP_SLACK_SECONDS, tz=dt.timezone.utc)
        known = self.store.batch_ids()
        async for batch in self.client.client.messages.batches.list(limit=100):
            if batch.created_at < since:
                break  # newest first: everything further is older
            counts = batch.request_counts
            total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired
            if batch.id in known or total != len(keys):
                continue
            await self._poll(batch.id)
            ids = {item.custom_id async for item in await self.client.client.messages.batches.results(batch.id)}
            if ids == keys:
                self.emit("batch_found", {"batch": batch.id})
                return batch.id
        return None

    async def _poll(self, batch_id: str) -> None:
        batches = self.client.client.messages.batches
        while True:
            batch = await batches.retrieve(batch_id)
            counts = batch.request_counts
            self.emit("batch_poll", {"batch": batch_id, "status": batch.processing_status,
                                     "succeeded": counts.succeeded, "processing": counts.processing})
            if batch.processing_status == "ended":
                return
            await asyncio.sleep(self.parts.options.batch_poll_seconds)

    async def _collect(self, batch_id: str, entries: dict[str, _Entry]) -> None:
        """Store every result (valid or not); the next wave reads them back through the pipeline."""
        results = await self.client.client.messages.batches.results(batch_id)
        seen = set()
        async for item in results:
            entry = entries.get(item.custom_id)
            if entry is None or item.custom_id in seen:
                continue
            seen.add(item.custom_id)
            result = item.result
            if result.type != "succeeded":
                self.entry_failures[entry.key] += 1
                self.store.record_failure(entry.task_idx, entry.kind, f"batch_{result.type}: {batch_id}")
                self.emit("failure", {"kind": entry.kind, "reason": f"batch {result.type}"})
                continue
            message = result.message
            text = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text")
            usage = usage_from(message.usage)
            cost = self.pipeline.model_for(entry.kind, entry.model).cost(usage, batch=True)  # each model's own multiplier
            self.budget.release_now(0.0, cost)
            self.emit("call", {"kind": entry.kind, "usage": usage.as_dict(), "cost": cost, "spent": self.budget.spent})
            items = len(entry.cids) if entry.kind == "judge" else None
            reply = parse_reply(_KeyOnly(entry.key, entry.schema, items), text, message.stop_reason, usage)  # type: ignore[arg-type]
            self.store.save_response(**response_row(entry.key, entry.kind, entry.model, entry.task_idx, reply, cost=cost, batch=True))
            if reply.data is None:
                self.store.record_failure(entry.task_idx, entry.kind, f"bad_reply: {reply.error}")
                self.emit("failure", {"kind": entry.kind, "reason": reply.error})
        for key in set(entries) - seen:
            self.entry_failures[key] += 1
            self.store.record_failure(entries[key].task_idx, entries[key].kind, f"batch_missing_result: {batch_id}")


@dataclass(frozen=True)
class _KeyOnly:
    key: str
    schema_name: str
    items: int | None = None


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
