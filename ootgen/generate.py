"""Pipeline stage 4, generate: call Claude (official SDK, AsyncAnthropic) with bounded, adaptive concurrency.

Requests are plain data hashed by their exact parameters, so the run store and the response cache can
recognise a request whose response was already paid for. Replies are validated against the reply schema.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2

from .errors import ModelNotFound, OotgenError, RunAborted
from .models import ModelInfo, Usage

CHARS_PER_TOKEN = 3.3


@dataclass(frozen=True)
class Request:
    """Everything that determines a response. `attempt` separates deliberate re-asks of the same prompt."""

    kind: str  # "generate" or "judge"
    model: str
    system: str
    user: str
    max_tokens: int
    schema_name: str
    structured: bool
    instructions: str = ""  # last cached system block (fixed instructions of the role and type)
    rules: str = ""  # cached system block between the context and the instructions (rules of the role, all types)
    effort: str | None = None
    temperature: float | None = None
    attempt: int = 0
    items: int | None = None  # judge: exactly this many verdicts, one per candidate index 1..items
    # max_tokens as sent when a cost cap lowered it (budget.py). Not part of the key: a complete reply answers the
    # question whatever room it had, so a resumed run finds it under the configured request; one cut short is
    # stored as unusable under that key and re-asked like any truncated reply.
    lowered_max_tokens: int | None = None
    # Candidates a generation call asks for (1 for a judge call): its output floor near the cap scales with it
    # (budget.py). Not part of the key: the prompt already says how many.
    slots: int = 1

    @property
    def key(self) -> str:
        fields = [self.kind, self.model, self.system, self.instructions, self.user, self.max_tokens, self.schema_name,
                  self.structured, self.effort, self.temperature, self.attempt]
        if self.items is not None:  # only then, so the keys of earlier runs stay valid
            fields.append(self.items)
        if self.rules:  # likewise
            fields.append(["rules", self.rules])
        blob = json.dumps(fields, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def api_params(self) -> dict:
        """Keyword arguments for `messages.create` (and the `params` of a batch entry)."""
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens if self.lowered_max_tokens is None else self.lowered_max_tokens,
            # A cache breakpoint on each system block: the context (shared by every call on it), the role's rules
            # (shared by its types) and the type's instructions.
            "system": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}
                       for text in (self.system, self.rules, self.instructions) if text],
            "messages": [{"role": "user", "content": self.user}],
        }
        output_config: dict[str, Any] = {}
        if self.structured:
            output_config["format"] = {"type": "json_schema", "schema": _api_schema(reply_schema(self.schema_name, self.items))}
        if self.effort:
            output_config["effort"] = self.effort
        if output_config:
            params["output_config"] = output_config
        if self.temperature is not None:
            params["temperature"] = self.temperature  # only set for models that accept it (see build_request)
        return params

    def estimated_input_tokens(self) -> int:
        """Offline estimate (Markdown and C run about 3.3 characters a token); the run counts with the API
        (messages.count_tokens) where the number matters, under a cost cap."""
        return math.ceil(self.chars / CHARS_PER_TOKEN) + 16

    @property
    def chars(self) -> int:
        """Characters of the prompt: every system block and the user message."""
        return len(self.system) + len(self.rules) + len(self.instructions) + len(self.user)


def build_request(kind: str, model: ModelInfo, prompt, *, max_tokens: int, schema_name: str,
                  effort: str | None, temperature: float | None, attempt: int = 0, items: int | None = None,
                  slots: int = 1) -> Request:
    """A Request with only the parameters this model accepts (per the model table)."""
    structured = model.structured
    return Request(
        kind=kind,
        model=model.id,
        system=prompt.system,
        instructions=prompt.instructions,
        rules=prompt.rules,
        user=prompt.user,
        max_tokens=min(max_tokens, model.max_output_tokens),
        schema_name=schema_name,
        structured=structured,
        effort=effort if (model.accepts_effort and effort) else None,
        temperature=temperature if (model.accepts_temperature and temperature is not None) else None,
        attempt=attempt,
        items=items,
        slots=slots,
    )


def reply_schema(name: str, items: int | None = None) -> dict:
    """The reply schema; with `items`, its one top-level array (judge: `verdicts`) must hold exactly that many."""
    from .schemas import load_schema

    schema = load_schema(name)  # cached and shared: never modified in place
    if items is None:
        return schema
    arrays = [key for key, prop in schema["properties"].items() if prop.get("type") == "array"]
    properties = {**schema["properties"], arrays[0]: {**schema["properties"][arrays[0]], "minItems": items, "maxItems": items}}
    return {**schema, "properties": properties}


@dataclass(frozen=True)
class Reply:
    request_key: str
    text: str
    stop_reason: str | None
    usage: Usage
    data: dict | None = None  # parsed and schema-valid, else None
    error: str | None = None  # why `data` is None
    from_cache: bool = False


def parse_reply(request: Request, text: str, stop_reason: str | None, usage: Usage, *, from_cache: bool = False) -> Reply:
    """Parse and validate a reply's JSON; a truncated or malformed reply gets an `error`, never raises."""
    from .schemas import schema_errors

    def failed(reason: str) -> Reply:
        return Reply(request.key, text, stop_reason, usage, None, reason, from_cache)

    if stop_reason == "max_tokens":
        return failed("truncated: stop_reason max_tokens")
    if stop_reason == "refusal":
        return failed("refused by the model")
    try:
        data = json.loads(_json_text(text))
    except ValueError as error:
        return failed(f"malformed JSON: {error}")
    errors = schema_errors(data, request.schema_name)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top)"
        return failed(f"reply does not match {request.schema_name} at {where}: {errors[0].message[:200]}")
    items = getattr(request, "items", None)
    if items is not None and request.schema_name == "judge_reply":
        indexes = sorted(v["index"] for v in data["verdicts"])
        if indexes != list(range(1, items + 1)):  # a missed verdict is re-asked, not a rejection
            return failed(f"judge reply has verdicts for candidates {indexes}, not 1..{items}")
    return Reply(request.key, text, stop_reason, usage, data, None, from_cache)


_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)\n```", re.DOTALL)


def _json_text(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("{"):
        return stripped
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start != -1 and end > start else stripped


def _api_schema(schema: dict) -> dict:
    """The reply schema as sent: drop annotation keys the API's constrained decoding does not need."""
    # The API's constrained decoding supports only plain schemas: numeric bounds and item counts are checked
    # locally (the prompt states how many candidates there are).
    dropped = {"$schema", "minimum", "maximum", "minItems", "maxItems"}
    if isinstance(schema, dict):
        return {k: _api_schema(v) for k, v in schema.items() if k not in dropped}
    if isinstance(schema, list):
        return [_api_schema(v) for v in schema]
    return schema


def key_rejected() -> RunAborted:
    """The one error for a 401: the run stops at once, and the message never contains the key."""
    return RunAborted("the API rejected the key (401 authentication_error); check --api-key or ANTHROPIC_API_KEY",
                      key="api key")


class AdaptiveLimiter:
    """A concurrency limit that halves on 429/529, pauses for retry-after, and grows back on success."""

    def __init__(self, maximum: int, minimum: int = 1):
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        # One request at a time until the API has answered once: a bad key or model then costs one
        # request, not a burst of them.
        self.limit = 1
        self._proven = False
        self.refusal: OotgenError | None = None  # set on 401 or an unknown model: no further request may leave
        self.in_flight = 0
        self.peak = 0
        self._successes = 0
        self._resume_at = 0.0
        self._cond = asyncio.Condition()
        self.throttle_events = 0

    async def acquire(self) -> None:
        async with self._cond:
            while True:
                wait = self._resume_at - time.monotonic()
                if wait <= 0 and self.in_flight < self.limit:
                    break
                try:
                    await asyncio.wait_for(self._cond.wait(), timeout=wait if wait > 0 else None)
                except asyncio.TimeoutError:
                    pass
            if self.refusal is not None:
                raise copy.copy(self.refusal)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    async def release(self) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def on_response(self, status: int, headers) -> None:
        """Called for every HTTP response, retries included (an httpx event hook)."""
        if status == 401:
            self.refusal = key_rejected()
            return
        if status in (429, 529):
            self.throttle_events += 1
            self.limit = max(self.minimum, self.limit // 2)
            self._successes = 0
            retry_after = _retry_after_seconds(headers)
            if retry_after:
                self._resume_at = max(self._resume_at, time.monotonic() + min(retry_after, 60.0))
        elif 200 <= status < 300:
            if not self._proven:
                self._proven = True
                self.limit = self.maximum
                return
            remaining = headers.get("anthropic-ratelimit-requests-remaining")
            if remaining is not None and remaining.strip().isdigit() and int(remaining) == 0:
                self.limit = max(self.minimum, self.limit - 1)
                return
            if time.monotonic() < self._resume_at:
                return  # answers to calls sent before the throttle do not earn growth during its pause
            self._successes += 1
            if self.limit < self.maximum and self._successes >= self.limit:
                self.limit += 1  # additive increase: one more slot per window of successes
                self._successes = 0


def _retry_after_seconds(headers) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None


STREAM_ABOVE_MAX_TOKENS = 16_000


@dataclass
class HttpCounts:
    """What went over the wire, counted at the HTTP transport the SDK uses (its retries included)."""

    attempts: int = 0  # HTTP requests sent
    retries: int = 0  # of which the SDK's retries (x-stainless-retry-count > 0)
    in_flight: int = 0
    peak_concurrency: int = 0  # most requests open at once, from send to the end of the body
    faults: dict[str, int] = field(default_factory=dict)  # by kind: rate_limited (429), overloaded (529), ...

    def count_fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def as_dict(self) -> dict:
        return {"attempts": self.attempts, "retries": self.retries, "peak_concurrency": self.peak_concurrency,
                "faults": dict(sorted(self.faults.items()))}


def fault_kind(status: int) -> str | None:
    if status == 429:
        return "rate_limited_429"
    if status == 529:
        return "overloaded_529"
    if status >= 500:
        return "server_error_5xx"
    if status >= 400:
        return f"refused_{status}"
    return None


class _CountingTransport(httpx2.AsyncBaseTransport):
    """Wraps the SDK's httpx2 transport: counts every attempt, fault and open request."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, counts: HttpCounts):
        self._inner = inner
        self._counts = counts

    async def handle_async_request(self, request):
        counts = self._counts
        counts.attempts += 1
        retry = request.headers.get("x-stainless-retry-count")
        if retry and retry.strip() not in ("", "0"):
            counts.retries += 1
        counts.in_flight += 1
        counts.peak_concurrency = max(counts.peak_concurrency, counts.in_flight)
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.TimeoutException:
            counts.in_flight -= 1
            counts.count_fault("timeout")
            raise
        except httpx2.TransportError:
            counts.in_flight -= 1
            counts.count_fault("connection")
            raise
        except BaseException:
            counts.in_flight -= 1
            raise
        kind = fault_kind(response.status_code)
        if kind:
            counts.count_fault(kind)
        response.stream = _ClosingStream(response.stream, counts)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _ClosingStream(httpx2.AsyncByteStream):
    """A response body that marks its request finished when it is closed (read to the end or abandoned)."""

    def __init__(self, inner, counts: HttpCounts):
        self._inner = inner
        self._counts = counts
        self._open = True

    async def __aiter__(self):
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx2.TransportError:
            self._counts.count_fault("connection")
            self._finished()  # a body cut off mid-way is not always closed by the SDK: it is over all the same
            raise

    async def aclose(self) -> None:
        self._finished()
        await self._inner.aclose()

    def _finished(self) -> None:
        if self._open:
            self._open = False
            self._counts.in_flight -= 1


class TransientFailure(Exception):
    """The API could not answer this time (after the SDK's own retries); the task may be tried later."""


class ClaudeClient:
    """Thin async wrapper over `anthropic.AsyncAnthropic` that reports every HTTP status to the limiter."""

    def __init__(self, api_key: str, *, limiter: AdaptiveLimiter, base_url: str | None = None,
                 max_retries: int = 4, timeout: float = 600.0):
        import anthropic

        self.anthropic = anthropic
        self._httpx = httpx2
        self.limiter = limiter

        async def on_response(response) -> None:
            limiter.on_response(response.status_code, response.headers)

        http_client = anthropic.DefaultAsyncHttpxClient(event_hooks={"response": [on_response]})
        self.http = HttpCounts()
        self._answered_models: set[str] = set()  # models the API has answered once
        self._first_call: dict[str, asyncio.Lock] = {}  # one request at a time per model until then
        # Count at the transport (every attempt the SDK makes); keeps the SDK's own transport settings.
        http_client._transport = _CountingTransport(http_client._transport, self.http)
        http_client._mounts = {pattern: _CountingTransport(t, self.http) if t is not None else None
                               for pattern, t in http_client._mounts.items()}
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout, http_client=http_client
        )

    async def call(self, request: Request) -> tuple[str, str | None, Usage]:
        """Send one request; return (text, stop_reason, usage). Raises TransientFailure or an OotgenError.

        Until a model has answered once its requests go one at a time, so a model the API does not know
        (a judge model too, after the generator proved the key) costs one request."""
        if request.model not in self._answered_models:
            async with self._first_call.setdefault(request.model, asyncio.Lock()):
                if request.model not in self._answered_models:  # else: answered while this call waited
                    answer = await self._send(request)
                    self._answered_models.add(request.model)
                    return answer
        return await self._send(request)

    async def _send(self, request: Request) -> tuple[str, str | None, Usage]:
        anthropic = self.anthropic
        params = request.api_params()
        temperature = params.pop("temperature", None)
        extra_body = {"temperature": temperature} if temperature is not None else None
        await self.limiter.acquire()
        try:
            if params["max_tokens"] > STREAM_ABOVE_MAX_TOKENS:
                # The SDK refuses long non-streaming requests; stream and collect the final message instead.
                async with self.client.messages.stream(**params, extra_body=extra_body) as stream:
                    message = await stream.get_final_message()
            else:
                message = await self.client.messages.create(**params, extra_body=extra_body)
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError, anthropic.NotFoundError,
                anthropic.BadRequestError) as error:
            refused = refusal(anthropic, error, request.model)
            if isinstance(error, anthropic.NotFoundError):
                self.limiter.refusal = refused  # no other request leaves (calls waiting included)
            raise refused from None
        except (anthropic.APIError, json.JSONDecodeError, self._httpx.HTTPError) as error:
            # Transport and overload errors the SDK gave up on, a 200 whose body is not JSON, a stream cut
            # mid-body. Anything else (a ValueError from our own code included) is a bug and propagates.
            raise TransientFailure(f"{type(error).__name__}: {_api_message(error)}") from None
        finally:
            await self.limiter.release()
        text = "".join(getattr(block, "text", "") for block in message.content if getattr(block, "type", "") == "text")
        return text, message.stop_reason, usage_from(message.usage)

    async def count_tokens(self, request: Request) -> int:
        """Input tokens of `request` by the API's own tokenizer (messages.count_tokens; free, not billed)."""
        params = request.api_params()
        anthropic = self.anthropic
        try:
            counted = await self.client.messages.count_tokens(model=params["model"], system=params["system"],
                                                              messages=params["messages"])
        except (anthropic.AuthenticationError, anthropic.NotFoundError) as error:
            raise refusal(anthropic, error, request.model) from None
        return int(counted.input_tokens)

    async def close(self) -> None:
        await self.client.close()


def refusal(anthropic: Any, error: Exception, model: str) -> OotgenError:
    """The one-line error for an API answer no retry changes: 401, 403, 404 (naming `model` when it is the
    unknown one), 400; any other API failure as a stopped run that the same command resumes."""
    if isinstance(error, anthropic.AuthenticationError):
        return key_rejected()
    if isinstance(error, anthropic.PermissionDeniedError):
        return RunAborted(f"the API refused access (403): {_api_message(error)}")
    if isinstance(error, anthropic.NotFoundError):
        return not_found(model, error)
    if isinstance(error, anthropic.BadRequestError):
        return RunAborted(f"the API rejected the request (400): {_api_message(error)}")
    return RunAborted(f"the API call failed after the SDK's retries ({type(error).__name__}: {_api_message(error)}); "
                      "run the same command again to resume")


def not_found(model: str, error: Exception) -> OotgenError:
    """A 404: the model is unknown to the API (bad input, named where it was set) or the endpoint is wrong."""
    message = _api_message(error)
    if model in message:
        return ModelNotFound(model, f"the API does not know model '{model}' (404 not_found_error: {message})")
    return RunAborted(f"the API does not know this endpoint (404): {message}")


def usage_from(raw: Any) -> Usage:
    def get(name: str) -> int:
        value = raw.get(name) if isinstance(raw, dict) else getattr(raw, name, 0)
        return int(value or 0)

    return Usage(get("input_tokens"), get("output_tokens"), get("cache_creation_input_tokens"), get("cache_read_input_tokens"))


def _api_message(error: Exception) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(error)[:300]
