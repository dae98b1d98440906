"""Run loop piece: one question to Claude, answered from the run store, the response cache or the API.

The retry budget of one request, stated once: the SDK retries transport errors and 429/529/5xx
(`concurrency.sdk_max_retries`, honouring retry-after); on top of that we re-ask only when a reply is
unusable (malformed or truncated JSON, or a transport failure the SDK gave up on), at most
`generation.malformed_retries` more times. So one question costs at most
(1 + malformed_retries) x (1 + sdk_max_retries) HTTP attempts. An exception from our own code is a
bug: it is never retried.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from .budget import Budget, WorstCase
from .generate import ClaudeClient, Reply, Request, TransientFailure, build_request, parse_reply
from .models import ModelInfo, Usage
from .settings import GenerationSettings, JudgeSettings
from .store import ResponseCache, RunStore

Event = Callable[[str, dict], None]
SHAPE_MARGIN = 1.1  # a request of a counted shape is estimated at its ratio plus 10 %


@dataclass(frozen=True)
class Answer:
    """A schema-valid reply, and the response row to store with its effect (None when it came from the store)."""

    reply: Reply
    row: dict | None


def response_row(request_key: str, kind: str, model: str, task_idx: int | None, reply: Reply, *,
                 cost: float | None, batch: bool) -> dict:
    return dict(key=request_key, kind=kind, model=model, task_idx=task_idx, text=reply.text,
                stop_reason=reply.stop_reason, usage=reply.usage, cost=cost, batch=batch,
                valid=reply.data is not None, error=reply.error, from_cache=reply.from_cache)


class Exchange:
    def __init__(self, store: RunStore, cache: ResponseCache | None, budget: Budget, emit: Event, *, reasks: int):
        self.store = store
        self.cache = cache
        self.budget = budget
        self.emit = emit
        self.reasks = reasks  # re-asks after an unusable reply
        self.client: ClaudeClient | None = None  # set when the event loop runs
        self._tokens_per_char: dict[tuple[str, str, str], asyncio.Future[float]] = {}  # prompt shape -> tokens/char

    # --- reuse: what was already paid for ---------------------------------------------------------

    def stored(self, request: Request) -> Reply | None:
        """The reply stored in this run for exactly this request (valid or not)."""
        row = self.store.get_response(request.key)
        if row is None:
            return None
        usage = Usage(**json.loads(row["usage"]))
        return parse_reply(request, row["text"] or "", row["stop_reason"], usage, from_cache=True)

    def cached(self, request: Request, task_idx: int | None) -> Answer | None:
        """A valid reply from the cross-run response cache (costs nothing in this run)."""
        if self.cache is None:
            return None
        hit = self.cache.get(request.key)
        if hit is None:
            return None
        reply = parse_reply(request, hit[0], hit[1], hit[2], from_cache=True)
        if reply.data is None:
            return None
        self.emit("cache_hit", {"kind": request.kind})
        return Answer(reply, response_row(request.key, request.kind, request.model, task_idx, reply, cost=0.0, batch=False))

    def first_open_attempt(self, build: Callable[[int], Request]) -> tuple[int, Reply | None]:
        """The first attempt whose request has no unusable stored reply: (attempt, its stored valid reply or None).

        Streaming, batch and resume all walk the same attempts, so they ask the same requests."""
        for attempt in range(self.reasks + 1):
            reply = self.stored(build(attempt))
            if reply is None or reply.data is not None:
                return attempt, reply
        return self.reasks + 1, None

    # --- the API -----------------------------------------------------------------------------------

    async def send(self, request: Request, model: ModelInfo, task_idx: int | None) -> Answer:
        """The reply to `request` (valid or not) from the store, the cache or one paid API call."""
        stored = self.stored(request)
        if stored is not None:
            return Answer(stored, None)
        cached = self.cached(request, task_idx)
        if cached is not None:
            return cached
        assert self.client is not None
        worst = await self.worst_case(request, model)
        # BudgetStop when even the floor can never fit; near the cap max_tokens is lowered to what is left.
        reserved, max_tokens = await self.budget.reserve(worst, request)
        lowered = max_tokens < request.max_tokens
        try:
            text, stop_reason, usage = await self.client.call(replace(request, lowered_max_tokens=max_tokens) if lowered else request)
        except BaseException:
            await self.budget.settle(reserved, None)
            raise
        cost = model.cost(usage)
        await self.budget.settle(reserved, cost, request, usage.output_tokens, worst.per_output_token * usage.output_tokens)
        reply = parse_reply(request, text, stop_reason, usage)
        if lowered and stop_reason == "max_tokens":
            reply = replace(reply, error=f"truncated at max_tokens {max_tokens}, lowered near the --max-cost cap")
        if reply.data is not None and self.cache is not None:
            self.cache.put(request.key, text, stop_reason, usage)
        self.emit("call", {"kind": request.kind, "usage": usage.as_dict(), "cost": cost, "spent": self.budget.spent})
        return Answer(reply, response_row(request.key, request.kind, request.model, task_idx, reply, cost=cost, batch=False))

    async def worst_case(self, request: Request, model: ModelInfo, *, batch: bool = False) -> WorstCase:
        """The most `request` can cost, its input counted by the API under a cap (streaming and batch alike)."""
        return self.budget.worst_case(request, model, batch=batch, input_tokens=await self.input_tokens(request, model))

    async def input_tokens(self, request: Request, model: ModelInfo) -> int | None:
        """Input tokens for the budget under a cap: counted by the API (messages.count_tokens) for the first
        request of each prompt shape (model, role, cached context), scaled by length for the others."""
        if self.budget.cap is None or not model.priced:
            return None
        assert self.client is not None
        chars = request.chars
        shape = (request.model, request.kind, request.system)
        pending = self._tokens_per_char.get(shape)
        if pending is None:  # the first request of this shape counts; concurrent ones wait for its ratio
            pending = self._tokens_per_char[shape] = asyncio.get_running_loop().create_future()
            try:
                counted = await self.client.count_tokens(request)
            except BaseException:
                del self._tokens_per_char[shape]
                pending.cancel()
                raise
            pending.set_result(counted / max(chars, 1))
            return counted
        ratio = await asyncio.shield(pending)
        return math.ceil(chars * ratio * SHAPE_MARGIN)

    async def ask(self, kind: str, model: ModelInfo, prompt, task_idx: int | None,
                  settings: GenerationSettings | JudgeSettings, schema: str,
                  items: int | None = None, slots: int = 1) -> Answer | None:
        """A schema-valid answer, re-asking an unusable reply at most `reasks` times; None when none came."""

        def build(attempt: int) -> Request:
            return question(kind, model, prompt, settings, schema, attempt, items, slots)

        first, _ = self.first_open_attempt(build)
        for attempt in range(first, self.reasks + 1):
            request = build(attempt)
            try:
                answer = await self.send(request, model, task_idx)
            except TransientFailure as failure:  # the SDK's own retries are spent: one re-ask
                self.store.record_failure(task_idx, kind, f"api_error: {failure}")
                self.emit("failure", {"kind": kind, "reason": str(failure)})
                continue
            if answer.reply.data is not None:
                return answer
            self.record_unusable(kind, task_idx, answer)
        return None

    def record_unusable(self, kind: str, task_idx: int | None, answer: Answer) -> None:
        """An unusable reply is stored as a paid-for failure (so resume does not ask it again)."""
        if answer.row is not None:
            self.store.save_response(**answer.row)
        self.store.record_failure(task_idx, kind, f"bad_reply: {answer.reply.error}")
        self.emit("failure", {"kind": kind, "reason": answer.reply.error})


def question(kind: str, model: ModelInfo, prompt, settings: GenerationSettings | JudgeSettings, schema: str, attempt: int,
             items: int | None = None, slots: int = 1) -> Request:
    """The request for attempt `attempt` of one question (attempt separates deliberate re-asks)."""
    temperature = settings.temperature if isinstance(settings, GenerationSettings) else None  # the judge sets none
    return build_request(kind, model, prompt, max_tokens=settings.max_tokens, schema_name=schema,
                         effort=settings.effort, temperature=temperature,
                         attempt=attempt, items=items, slots=slots)
