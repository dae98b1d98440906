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
import itertools
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from .exchange import Answer, question, response_row
from .generate import ClaudeClient, Request, parse_reply, usage_from
from .pipeline import JudgeReply
from .plan import Task
from .scheduler import QuotaPlanner
from .store import StoredCandidate

# The API's limits per batch: 100,000 requests and 256 MB (docs.anthropic.com, "Create a Message Batch").
# configs/default.yaml `batch:` sets what a run uses, at most these (the schema enforces it).
API_MAX_REQUESTS_PER_BATCH = 100_000
API_MAX_BATCH_BYTES = 256_000_000
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
        self.planner = QuotaPlanner(parts.project, self.store, self.targets)
        self.retry_tasks: list[Task] = []  # tasks whose last reply was unusable: re-asked in the next wave
        self.entry_failures: Counter[str] = Counter()  # errored / expired / missing results per request key
        limits = self.config.batch
        self.max_requests = min(limits.max_requests, API_MAX_REQUESTS_PER_BATCH)
        self.max_bytes = min(limits.max_bytes, API_MAX_BATCH_BYTES)
        self.wave_requests = limits.wave_requests  # bounds a wave's memory; a wave spans several batches
        # The session's first batch is small, so its first request does not wait for a whole batch to be built.
        self.first_requests = min(limits.first_requests, self.max_requests)

    async def execute(self) -> str:
        await self._resume_open_batches()
        while True:
            self.planner.advance()
            if self.planner.finished:
                return "complete" if self.planner.complete else "attempt_limit"
            if self.budget.exhausted:
                return "budget"
            # At most a wave's worth of pending candidates, as (id, context) only: memory stays bounded.
            limit = max(1, self.wave_requests * self.targets.judge_batch // len(self.pipeline.judges))
            pending = self.store.pending_ids_by_context(limit)
            if pending:
                await self._judge_wave(pending)
                continue
            wave = self._wave_tasks()
            first = next(wave, None)
            if first is None:
                return "attempt_limit"
            await self._generation_wave(itertools.chain([first], wave))

    def _wave_tasks(self) -> Iterator[Task]:
        """The last wave's unusable replies again, then the open waves' tasks, lowest index first, at most a
        wave's worth of new ones: taken from the planner as the batches fill, not all before the first one."""
        retries, self.retry_tasks = self.retry_tasks, []
        yield from retries
        for _ in range(self.wave_requests):
            task = self.planner.next()
            if task is None:
                return
            yield task

    # --- generation ------------------------------------------------------------------------------------

    def _generation_request(self, task: Task) -> Request | None:
        """The request still to send for `task`, or None when the task is settled (from the store or cache)."""
        model = self.pipeline.model
        prompt = self.pipeline.generation_prompt(task)
        settings = self.config.generation

        def build(attempt: int) -> Request:
            return question("generate", model, prompt, settings, "generation_reply", attempt, slots=task.count)

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

    async def _generation_wave(self, wave: Iterable[Task]) -> None:
        tasks: list[Task] = []  # the wave's tasks, read back once its batches are collected

        def work() -> Iterator[tuple[_Entry, Request]]:  # built as the batches fill, not all at once
            for task in wave:
                tasks.append(task)
                request = self._generation_request(task)
                if request is not None:
                    yield _Entry(request.key, "generate", "generation_reply", request.model, task_idx=task.index), request

        if not await self._submit_and_collect(work()):
            return
        for task in tasks:  # read back what the wave produced; an unusable reply is asked again next wave
            if self._generation_request(task) is not None:
                self.retry_tasks.append(task)
            else:
                self.planner.settled(task)

    # --- judging ---------------------------------------------------------------------------------------

    def _judge_requests(self, context_id: str, group: list[StoredCandidate]) -> list[Request]:
        """The judge requests still to send for `group`; when none is left, the group is decided and stored."""
        settings = self.config.judge
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

    async def _judge_wave(self, pending: list[tuple[int, str]]) -> None:
        """Judge requests for `pending` (id, context) in groups of one context; each group is read from the
        store when its requests are built, so only the requests of the batch being filled are in memory."""
        size = self.targets.judge_batch

        def groups() -> Iterator[tuple[str, list[int]]]:
            start = 0
            while start < len(pending):
                context_id = pending[start][1]
                end = start
                while end < len(pending) and end - start < size and pending[end][1] == context_id:
                    end += 1
                yield context_id, [cid for cid, _ in pending[start:end]]
                start = end

        def work() -> Iterator[tuple[_Entry, Request]]:
            for context_id, cids in groups():
                group = self.pipeline.pending_group(cids)
                if not group:
                    continue
                for request in self._judge_requests(context_id, group):
                    yield _Entry(request.key, "judge", "judge_reply", request.model, context=context_id,
                                 cids=tuple(c.id for c in group)), request

        await self._submit_and_collect(work())

    # --- batches ---------------------------------------------------------------------------------------

    async def _submit_and_collect(self, work: Iterable[tuple[_Entry, Request]]) -> bool:
        """Send the requests as batches within the per-batch limits, each created as soon as it is full (so
        several are in flight and only one batch's requests are in memory), then store every result.
        False when the budget refused a batch (the batches created before it are still collected)."""
        reserved, refused = 0.0, False
        try:
            for chunk in _chunks(_unique(work), self.max_requests, self.max_bytes, self.first_requests):
                worst = 0.0
                for _, request, _ in chunk:  # input tokens counted by the API (once per prompt shape), not guessed
                    cost = await self.exchange.worst_case(request, self.pipeline.model_for(request.kind, request.model), batch=True)
                    worst += cost.at(request.max_tokens)
                if not self.budget.reserve_now(worst):
                    refused = True
                    break
                reserved += worst
                # The custom ids are stored before the batch is created: a kill in between never pays twice.
                intent = self.store.save_batch_intent([asdict(e) for e, _, _ in chunk])
                # An API refusal (a 401 included) leaves as run.py's one-line error; the intent stays for resume.
                batch = await self.client.client.messages.batches.create(requests=[body for _, _, body in chunk])  # type: ignore[misc]
                self.store.set_batch_id(intent, batch.id)
                self.first_requests = self.max_requests
                self.emit("batch_created", {"batch": batch.id, "requests": len(chunk)})
                del chunk
            await self._resume_open_batches()
        finally:
            self.budget.release_now(reserved, 0.0)
        return not refused

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


def _unique(work: Iterable[tuple[_Entry, Request]]) -> Iterator[tuple[_Entry, Request]]:
    """Each request key once per wave: two tasks can ask the very same question (a custom id must be unique in a
    batch, and one answer serves both: the wave's read-back finds it stored under that key)."""
    seen: set[str] = set()
    for entry, request in work:
        if entry.key not in seen:
            seen.add(entry.key)
            yield entry, request


def _chunks(work: Iterable[tuple[_Entry, Request]], max_requests: int, max_bytes: int, first_requests: int
            ) -> Iterator[list[tuple[_Entry, Request, dict]]]:
    """(entry, request, batch body item) lists of at most `max_requests` items (the first one: `first_requests`)
    whose JSON request bodies total at most `max_bytes` (a single larger request still goes alone), filled
    lazily from `work`."""
    chunk: list[tuple[_Entry, Request, dict]] = []
    size, limit = 0, first_requests
    for entry, request in work:
        body = {"custom_id": request.key, "params": request.api_params()}
        # The item's JSON plus its separator in the {"requests": [...]} body the SDK sends.
        item_bytes = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()) + 2
        if chunk and (len(chunk) >= limit or size + item_bytes + _BODY_OVERHEAD > max_bytes):
            yield chunk
            chunk, size, limit = [], 0, max_requests
        chunk.append((entry, request, body))
        size += item_bytes
    if chunk:
        yield chunk


_BODY_OVERHEAD = 64  # {"requests":[ ... ]} around the items
