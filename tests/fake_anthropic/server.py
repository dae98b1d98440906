"""A fake Anthropic API over real HTTP on 127.0.0.1, for tests that drive the real `anthropic` SDK.

Speaks the Messages (JSON and SSE) and Message Batches wire format, checks the key, estimates usage
with prompt caching, and injects scripted or random faults. Stdlib only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import random
import socket
import struct
import sys
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .schema_gen import instance_for

Responder = Callable[[dict[str, Any]], str]

# Fault kinds, with the aliases a test may prefer to type.
FAULT_KINDS = (
    "rate_limit",  # 429 rate_limit_error with retry-after and anthropic-ratelimit-* headers
    "overloaded",  # 529 overloaded_error
    "api_error",  # 500 api_error
    "auth",  # 401 authentication_error, even with the right key
    "drop",  # close the socket without any response
    "latency",  # sleep latency_ms, then answer normally
    "truncate",  # headers claim the full Content-Length; half the body is sent, then the socket closes
    "malformed",  # 200 application/json whose body is not valid JSON
    "max_tokens",  # stop_reason max_tokens and the reply text cut in half
    "not_json",  # the reply text is prose, not JSON
)
_ALIASES = {
    "429": "rate_limit",
    "529": "overloaded",
    "500": "api_error",
    "401": "auth",
    "authentication": "auth",
    "dropped": "drop",
    "drop_connection": "drop",
    "truncated": "truncate",
    "invalid_json": "malformed",
}
# Faults that only make sense on POST /v1/messages (they change the reply, not the transport).
_CONTENT_FAULTS = {"max_tokens", "not_json"}

DEFAULT_CONFIG: dict[str, Any] = {
    "api_key": "test-key",  # expected key; null accepts any non-empty key
    "latency_ms": 0,  # fixed latency before every /v1 answer
    "retry_after": 0.01,  # seconds, sent as `retry-after` on 429/529 faults and concurrency rejections
    "concurrency_limit": None,  # K: requests in flight allowed at once on /v1
    "concurrency_mode": "reject",  # "reject" (429 + retry-after) or "queue" (wait for a slot)
    "random_faults": {},  # {kind: probability}, drawn per request with `seed`
    "seed": 0,
    "batch_complete_after_polls": 2,  # a batch ends on the Nth retrieve (null: never by polls)
    "batch_complete_after_seconds": None,  # ... or this long after creation
    "batch_errored_fraction": 0.0,
    "batch_expired_fraction": 0.0,
    "batch_error_type": "api_error",  # error.type inside an errored result
    "batch_max_requests": 100_000,  # the API's per-batch limits: more requests -> 400 invalid_request_error
    "batch_max_bytes": 256_000_000,  # ... a larger body -> 413 request_too_large
    "batch_keep_requests": True,  # false: a batch forgets its request bodies once its results are made
    "log_bodies": True,  # false: the request log keeps no bodies (memory of long bench runs)
    "cache_min_tokens": 0,  # prefixes shorter than this are not cached (the real API uses 1024+)
    "cache_ttl_seconds": 300.0,  # a cache entry expires this long after its last use (the API's 5 minutes)
    "enforce_max_tokens": True,  # cut replies longer than max_tokens tokens, stop_reason max_tokens
    "stream_chunk_chars": 24,  # characters per text_delta
    "default_text": "This is a reply from the fake Anthropic API.",
    "ratelimit_requests_limit": 1000,
    "ratelimit_tokens_limit": 2_000_000,
    "responder": "default",  # "default", "oot" or "echo"; in-process code may set a callable instead
    "oot": {},  # keyword arguments for OotResponder (bad_fraction, duplicate_fraction, seed, ...)
    "models": None,  # model ids served; any other model on /v1/messages(/count_tokens) -> 404 (null: any model)
}


@dataclasses.dataclass
class Fault:
    """One injected failure. `path` limits it to requests whose path starts with it."""

    kind: str
    retry_after: float | None = None  # seconds; None uses the server's `retry_after`
    latency_ms: float = 0.0  # for kind "latency" (and added before any other kind)
    path: str | None = None
    method: str | None = None

    def __post_init__(self) -> None:
        self.kind = _ALIASES.get(str(self.kind), str(self.kind))
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")

    @classmethod
    def coerce(cls, value: Fault | str | dict[str, Any]) -> Fault:
        if isinstance(value, Fault):
            return value
        if isinstance(value, str):
            return cls(kind=value)
        return cls(**value)

    def matches(self, method: str, path: str) -> bool:
        if self.path is not None:
            if not path.startswith(self.path):
                return False
        elif self.kind in _CONTENT_FAULTS and not (method == "POST" and path == "/v1/messages"):
            return False
        return self.method is None or self.method.upper() == method

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def default_responder(request: dict[str, Any], default_text: str = DEFAULT_CONFIG["default_text"]) -> str:
    """Schema-valid JSON when the request asks for structured output, else a plain sentence."""
    schema = requested_schema(request)
    if schema is not None:
        return json.dumps(instance_for(schema))
    return default_text


def echo_responder(request: dict[str, Any]) -> str:
    """The text of the last user message, for tests that want to see what was sent."""
    for message in reversed(request.get("messages", [])):
        if message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def requested_schema(request: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON Schema of `output_config.format` (or the older beta `output_format`), if any."""
    fmt = (request.get("output_config") or {}).get("format") or request.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return fmt["schema"]
    return None


def prompt_text(request: dict[str, Any]) -> str:
    """System and message text of a request, joined."""
    parts = [_content_text(request.get("system"))]
    parts += [_content_text(m.get("content")) for m in request.get("messages", []) if isinstance(m, dict)]
    return "\n".join(p for p in parts if p)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_block_text(b) for b in content)
    return _block_text(content)


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, dict):
        if isinstance(block.get("text"), str):
            return block["text"]
        return json.dumps({k: v for k, v in block.items() if k != "cache_control"}, sort_keys=True)
    return str(block)


CHARS_PER_TOKEN = 3.3  # measured on Markdown and C by Claude's tokenizer; ootgen's own estimate is chars / 4


def estimate_tokens(chars: int) -> int:
    """The fake's tokenizer: what it bills and what count_tokens answers (not ootgen's chars / 4)."""
    return math.ceil(chars / CHARS_PER_TOKEN)


def _now_rfc3339(offset_s: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def _error_body(kind: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


class _Reply(Exception):
    """Raised inside request handling to answer with an error status at once."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers or {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # listen backlog: many clients connect at once
    block_on_close = False
    fake: FakeAnthropic

    def handle_error(self, request, client_address) -> None:
        """socketserver prints a handler's exception (e.g. a client that reset its connection) to sys.stderr;
        print it to the process's own stderr instead, so that it never mixes into the output of a CLI command
        the test runs in this process with sys.stderr redirected (tests/e2e/conftest.py `in_process`)."""
        print(f"fake server: exception while handling a request from {client_address}", file=sys.__stderr__)
        traceback.print_exc(file=sys.__stderr__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAnthropic/1.0"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the client's
        # delayed ACK adds ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._connection_opened()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._connection_closed()

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    do_POST = do_GET
    do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeAnthropic:
    """The fake API server. Use as a context manager, or call start()/stop().

    `responder(request_json) -> str` gives the assistant text; everything else is config
    (see DEFAULT_CONFIG), settable at construction, with configure(), or over POST /_fake/config.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        responder: Responder | None = None,
        faults: Iterable[Fault | str | dict[str, Any]] = (),
        **config: Any,
    ) -> None:
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._slots = threading.Condition(self._lock)
        self._config: dict[str, Any] = json.loads(json.dumps(DEFAULT_CONFIG))
        self._initial: dict[str, Any] = {}
        self._responder_fn: Responder | None = None
        self._open_connections = 0  # not reset with the log: connections outlive a reset
        self._reset_state()
        self.configure(**config)
        if responder is not None:
            self.set_responder(responder)
        self._initial = {"config": json.loads(json.dumps(self._config, default=str)), "responder": self._responder_fn}
        self.add_faults(*faults)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeAnthropic:
        if self._httpd is not None:
            return self
        httpd = _Server((self._host, self._port), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.name = f"fake-anthropic-{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        with self._slots:
            self._slots.notify_all()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve in the calling thread (subprocess mode)."""
        if self._httpd is None:
            self._httpd = _Server((self._host, self._port), _Handler)
            self._httpd.fake = self
        self._httpd.serve_forever(poll_interval=0.1)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake server is not started")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # ----- control -------------------------------------------------------------------------------

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change config keys (see DEFAULT_CONFIG). `faults=[...]` enqueues one-shot faults."""
        faults = changes.pop("faults", None)
        unknown = set(changes) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(f"unknown fake config keys: {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
        if changes.get("concurrency_mode", "reject") not in ("reject", "queue"):
            raise ValueError("concurrency_mode must be 'reject' or 'queue'")
        for kind in changes.get("random_faults") or {}:
            Fault(kind=kind)  # validates the name
        with self._lock:
            responder = changes.pop("responder", None)
            self._config.update(changes)
            if "seed" in changes or "random_faults" in changes:
                self._random = random.Random(self._config["seed"])
            if responder is not None:
                self.set_responder(responder)
            elif "oot" in changes and self._config["responder"] == "oot":
                self.set_responder("oot")
            self._slots.notify_all()
        if faults:
            self.add_faults(*faults)
        return self.config

    @property
    def config(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._config, default=str))

    def set_responder(self, responder: Responder | str) -> None:
        """A callable, or a name: "default", "oot" (OotResponder with config["oot"]) or "echo"."""
        with self._lock:
            if callable(responder):
                self._responder_fn = responder
                self._config["responder"] = getattr(responder, "__name__", type(responder).__name__)
                return
            if responder == "default":
                self._responder_fn = None
            elif responder == "echo":
                self._responder_fn = echo_responder
            elif responder == "oot":
                from .oot_responder import OotResponder

                self._responder_fn = OotResponder(**self._config.get("oot", {}))
            else:
                raise ValueError(f"unknown responder {responder!r}; expected default, oot or echo")
            self._config["responder"] = responder

    def add_faults(self, *faults: Fault | str | dict[str, Any]) -> None:
        """Queue one-shot faults, applied in order to the next matching requests."""
        items = [Fault.coerce(f) for f in faults]
        with self._lock:
            self._faults.extend(items)

    add_fault = add_faults

    def set_random_faults(self, probabilities: dict[str, float], seed: int = 0) -> None:
        self.configure(random_faults=dict(probabilities), seed=seed)

    def end_open_batches_on_next_poll(self) -> None:
        """Every batch still in progress ends on its next retrieve, whatever it was created with."""
        with self._lock:
            for batch in self._batches.values():
                if batch["status"] == "in_progress":
                    batch["after_polls"], batch["after_seconds"] = batch["polls"] + 1, None

    @property
    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def reset(self, *, config: bool = False) -> None:
        """Forget requests, faults, cache and batches; with config=True also restore the initial config."""
        with self._lock:
            self._reset_state()
            if config and self._initial:
                self._config = json.loads(json.dumps(self._initial["config"]))
                self._responder_fn = self._initial["responder"]
                self._random = random.Random(self._config["seed"])

    def _reset_state(self) -> None:
        self._faults: deque[Fault] = deque()
        self._log: list[dict[str, Any]] = []
        self._counts: Counter[str] = Counter()
        self._in_flight = 0
        self._active = 0
        self._max_in_flight = 0
        self._max_active = 0
        self._cache: dict[str, float] = {}  # prefix key -> monotonic time of its last use
        self._batches: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._random = random.Random(self._config["seed"])

    # ----- observation ---------------------------------------------------------------------------

    @property
    def log(self) -> list[dict[str, Any]]:
        """Every request so far (a copy), oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def requests(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.log
            if (path is None or e["path"] == path) and (method is None or e["method"] == method.upper())
        ]

    def billed_usage(self) -> dict[str, dict[str, int]]:
        """Tokens billed per model: the usage of every answered POST /v1/messages, summed (price them outside)."""
        totals: dict[str, Counter[str]] = {}
        for entry in self.requests("/v1/messages", "POST"):
            if entry.get("usage"):
                totals.setdefault(entry["model"], Counter()).update(
                    {k: v for k, v in entry["usage"].items() if k.endswith("_tokens")})
        return {model: dict(counts) for model, counts in totals.items()}

    @property
    def open_connections(self) -> int:
        """Client connections the server holds open. A request is logged only once its body is read, so after a
        client is killed, its last requests are all in the log once this is 0 (the kernel closed its sockets)."""
        with self._lock:
            return self._open_connections

    def _connection_opened(self) -> None:
        with self._lock:
            self._open_connections += 1

    def _connection_closed(self) -> None:
        with self._lock:
            self._open_connections -= 1

    @property
    def max_concurrency_seen(self) -> int:
        """Most /v1 requests in flight at once, counting queued and rejected ones."""
        with self._lock:
            return self._max_in_flight

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "max_concurrency_seen": self._max_in_flight,
                "max_active_seen": self._max_active,
                "in_flight": self._in_flight,
                "counts": dict(self._counts),
                "requests": len(self._log),
                "pending_faults": [f.to_dict() for f in self._faults],
                "batches": len(self._batches),
            }

    # ----- request handling ----------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        started = time.monotonic()
        url = urlsplit(h.path)
        path, query = url.path, parse_qs(url.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""

        if path.startswith("/_fake/"):
            self._control(h, h.command, path, raw, query)
            return

        with self._lock:
            seq = next(self._ids)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._counts[path] += 1
            entry: dict[str, Any] = {
                "seq": seq,
                "request_id": f"req_fake_{seq:06d}",
                "start": started,
                "end": None,
                "method": h.command,
                "path": path,
                "query": {k: v[-1] for k, v in query.items()},
                "model": None,
                "status": None,
                "fault": None,
                "auth": None,
                "key_in_body": False,
                "body": None,
                "in_flight_at_arrival": self._in_flight,
                "retry_count": h.headers.get("x-stainless-retry-count"),
                "anthropic_version": h.headers.get("anthropic-version"),
                "stream": False,
            }
            self._log.append(entry)
        h._fake_entry, h._fake_admitted, h._fake_done = entry, False, False  # type: ignore[attr-defined]
        status: int | str = "client_disconnected"
        try:
            status = self._serve(h, entry, raw)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        except Exception as exc:  # a bug in the fake: answer 500 and keep the traceback in the log
            entry["error"] = traceback.format_exc()
            status = 500
            try:
                self._send_error(h, entry["request_id"], 500, "api_error", f"fake server bug: {exc!r}")
            except OSError:
                h.close_connection = True
        finally:
            self._finish_entry(h, status)

    def _finish_entry(self, h: _Handler, status: int | str) -> None:
        """Record the outcome and free the slot just before the last bytes go out, so a client
        that reads the log (or sends its next request) right after its answer sees it settled."""
        if getattr(h, "_fake_done", True):
            return
        with self._slots:
            h._fake_done = True  # type: ignore[attr-defined]
            entry = h._fake_entry  # type: ignore[attr-defined]
            entry["status"] = status
            entry["end"] = time.monotonic()
            self._in_flight -= 1
            if h._fake_admitted:  # type: ignore[attr-defined]
                self._active -= 1
                self._slots.notify()

    def _serve(self, h: _Handler, entry: dict[str, Any], raw: bytes) -> int | str:
        rid = entry["request_id"]
        method, path = entry["method"], entry["path"]
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        entry["body"] = body if self._config["log_bodies"] else None
        entry["body_bytes"] = len(raw)
        if isinstance(body, dict):
            entry["model"] = body.get("model")
            entry["stream"] = bool(body.get("stream"))

        # Auth first, as the real API does.
        kind, key = self._presented_key(h)
        entry["auth"] = kind
        expected = self._config["api_key"]
        candidates = {k for k in (key, expected) if k and len(k) >= 4}
        entry["key_in_body"] = any(k.encode() in raw for k in candidates)
        if not key or (expected is not None and key != expected):
            return self._send_error(h, rid, 401, "authentication_error", "invalid x-api-key")

        admitted = self._admit(entry)
        h._fake_admitted = admitted  # type: ignore[attr-defined]
        if not admitted:
            entry["fault"] = "concurrency_reject"
            return self._send_error(
                h, rid, 429, "rate_limit_error", "Number of concurrent connections has exceeded your rate limit.",
                self._retry_headers(None),
            )

        fault = self._pick_fault(method, path)
        entry["fault"] = fault.kind if fault else None
        delay_ms = float(self._config["latency_ms"] or 0) + (fault.latency_ms if fault else 0.0)
        if delay_ms > 0:
            time.sleep(delay_ms / 1000)

        if fault is not None:
            early = self._apply_transport_fault(h, rid, fault)
            if early is not None:
                return early
        try:
            status, payload, extra = self._route(method, path, body, entry, fault)
        except _Reply as reply:
            return self._send_error(h, rid, reply.status, reply.kind, reply.message, reply.headers)

        if isinstance(payload, list):  # SSE events
            return self._send_sse(h, rid, payload, fault)
        if isinstance(payload, bytes):  # JSONL
            return self._send(h, status, payload, "application/binary", rid, extra, fault)
        return self._send(h, status, json.dumps(payload).encode(), "application/json", rid, extra, fault)

    @staticmethod
    def _presented_key(h: _Handler) -> tuple[str, str | None]:
        x_key = h.headers.get("x-api-key")
        auth = h.headers.get("Authorization") or ""
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if x_key and bearer:
            return "both", x_key if x_key == bearer else None
        if x_key:
            return "x-api-key", x_key
        if bearer:
            return "bearer", bearer
        return "none", None

    def _admit(self, entry: dict[str, Any]) -> bool:
        with self._slots:
            limit = self._config["concurrency_limit"]
            if limit is not None and self._active >= limit:
                if self._config["concurrency_mode"] == "reject":
                    return False
                entry["queued"] = True
                while (
                    self._httpd is not None
                    and self._config["concurrency_limit"] is not None
                    and self._active >= self._config["concurrency_limit"]
                ):
                    self._slots.wait(timeout=0.5)
            self._active += 1
            self._max_active = max(self._max_active, self._active)
            return True

    def _pick_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            if self._faults and self._faults[0].matches(method, path):
                return self._faults.popleft()
            probabilities = self._config["random_faults"] or {}
            if not probabilities:
                return None
            draw = self._random.random()
            total = 0.0
            for kind in sorted(probabilities):
                total += float(probabilities[kind])
                if draw < total:
                    fault = Fault(kind=kind)
                    return fault if fault.matches(method, path) else None
            return None

    def _retry_headers(self, fault: Fault | None) -> dict[str, str]:
        retry_after = fault.retry_after if fault and fault.retry_after is not None else self._config["retry_after"]
        headers = self._ratelimit_headers(remaining_requests=0)
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}" if isinstance(retry_after, float) else str(retry_after)
        return headers

    def _retry_after_only(self, fault: Fault) -> dict[str, str]:
        # The real API rarely sends retry-after on 5xx; the fake does (when configured) so that
        # SDK retries take milliseconds instead of the SDK's 0.5 s+ exponential backoff.
        return {k: v for k, v in self._retry_headers(fault).items() if k == "retry-after"}

    def _ratelimit_headers(self, remaining_requests: int | None = None) -> dict[str, str]:
        req_limit = int(self._config["ratelimit_requests_limit"])
        tok_limit = int(self._config["ratelimit_tokens_limit"])
        if remaining_requests is None:
            remaining_requests = max(req_limit - self._in_flight, 0)
        reset = _now_rfc3339(1.0)
        remaining_tokens = tok_limit if remaining_requests else 0
        headers = {
            "anthropic-ratelimit-requests-limit": str(req_limit),
            "anthropic-ratelimit-requests-remaining": str(remaining_requests),
            "anthropic-ratelimit-requests-reset": reset,
        }
        for prefix in ("tokens", "input-tokens", "output-tokens"):
            headers[f"anthropic-ratelimit-{prefix}-limit"] = str(tok_limit)
            headers[f"anthropic-ratelimit-{prefix}-remaining"] = str(remaining_tokens)
            headers[f"anthropic-ratelimit-{prefix}-reset"] = reset
        return headers

    def _apply_transport_fault(self, h: _Handler, rid: str, fault: Fault) -> int | str | None:
        if fault.kind == "rate_limit":
            return self._send_error(
                h, rid, 429, "rate_limit_error", "This request would exceed your rate limit.", self._retry_headers(fault)
            )
        if fault.kind == "overloaded":
            return self._send_error(h, rid, 529, "overloaded_error", "Overloaded", self._retry_after_only(fault))
        if fault.kind == "api_error":
            return self._send_error(h, rid, 500, "api_error", "Internal server error", self._retry_after_only(fault))
        if fault.kind == "auth":
            return self._send_error(h, rid, 401, "authentication_error", "invalid x-api-key")
        if fault.kind == "drop":
            self._finish_entry(h, "dropped")
            self._drop(h)
            return "dropped"
        if fault.kind == "malformed":
            payload = b'{"id": "msg_fake", "type": "message", "content": [{"type": "text", "text": "cut'
            return self._send(h, 200, payload, "application/json", rid, {}, None)
        return None  # latency, truncate, max_tokens, not_json act later

    @staticmethod
    def _drop(h: _Handler) -> None:
        h.close_connection = True
        try:
            # linger 0: the peer sees a reset, not an orderly close, as when a proxy drops the line
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ----- responses -----------------------------------------------------------------------------

    def _send(
        self,
        h: _Handler,
        status: int,
        payload: bytes,
        content_type: str,
        rid: str,
        headers: dict[str, str] | None,
        fault: Fault | None,
    ) -> int | str:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(payload)))
        h.send_header("request-id", rid)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        if fault is not None and fault.kind == "truncate":
            h.end_headers()
            h.wfile.write(payload[: len(payload) // 2])
            h.wfile.flush()
            self._finish_entry(h, "truncated")
            self._drop(h)
            return "truncated"
        self._finish_entry(h, status)
        h.end_headers()  # headers and body leave together
        h.wfile.write(payload)
        return status

    def _send_error(
        self, h: _Handler, rid: str, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> int:
        payload = json.dumps(_error_body(kind, message, rid)).encode()
        self._send(h, status, payload, "application/json", rid, headers, None)
        return status

    def _send_sse(self, h: _Handler, rid: str, events: list[tuple[str, dict[str, Any]]], fault: Fault | None) -> int | str:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("request-id", rid)
        for name, value in self._ratelimit_headers().items():
            h.send_header(name, value)
        h.end_headers()
        cut = len(events) // 2 if fault is not None and fault.kind == "truncate" else None
        for i, (name, data) in enumerate(events):
            if cut is not None and i == cut:
                h.wfile.flush()
                self._finish_entry(h, "truncated")
                self._drop(h)
                return "truncated"
            chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            h.wfile.flush()
        self._finish_entry(h, 200)
        h.wfile.write(b"0\r\n\r\n")
        return 200

    # ----- routes --------------------------------------------------------------------------------

    def _route(
        self, method: str, path: str, body: Any, entry: dict[str, Any], fault: Fault | None
    ) -> tuple[int, Any, dict[str, str]]:
        parts = path.strip("/").split("/")
        rest = parts[2:]
        needs_body = method == "POST" and rest in ([], ["count_tokens"], ["batches"])
        if needs_body and not isinstance(body, dict):
            raise _Reply(400, "invalid_request_error", "request body must be a JSON object")
        if parts[:2] != ["v1", "messages"]:
            raise _Reply(404, "not_found_error", f"Not found: {method} {path}")
        headers = self._ratelimit_headers()
        served = self._config["models"]
        if rest in ([], ["count_tokens"]) and method == "POST" and served is not None and body.get("model") not in served:
            raise _Reply(404, "not_found_error", f"model: {body.get('model')}")
        if rest == [] and method == "POST":
            message = self._message(body, fault)
            entry["usage"], entry["stop_reason"] = message["usage"], message["stop_reason"]  # what was billed
            if body.get("stream"):
                return 200, self._sse_events(message), headers
            return 200, message, headers
        if rest == ["count_tokens"] and method == "POST":
            return 200, {"input_tokens": self._usage(body, "", count_only=True)["input_tokens"]}, headers
        if rest == ["batches"] and method == "POST":
            return 200, self._batch_create(body, entry.get("body_bytes", 0)), headers
        if rest == ["batches"] and method == "GET":
            return 200, self._batch_list(entry["query"]), headers
        if len(rest) == 2 and rest[0] == "batches" and method == "GET":
            return 200, self._batch_view(rest[1], poll=True), headers
        if len(rest) == 2 and rest[0] == "batches" and method == "DELETE":
            return 200, self._batch_delete(rest[1]), headers
        if len(rest) == 3 and rest[0] == "batches" and rest[2] == "cancel" and method == "POST":
            return 200, self._batch_cancel(rest[1]), headers
        if len(rest) == 3 and rest[0] == "batches" and rest[2] == "results" and method == "GET":
            return 200, self._batch_results(rest[1]), headers
        raise _Reply(404, "not_found_error", f"Not found: {method} {path}")

    def _respond_text(self, request: dict[str, Any]) -> str:
        responder = self._responder_fn
        try:
            if responder is None:
                return default_responder(request, self._config["default_text"])
            return responder(request)
        except Exception as exc:  # a broken responder is a test bug: say so in the 500 body
            raise _Reply(500, "api_error", f"fake responder failed: {exc!r}\n{traceback.format_exc()}") from exc

    def _message(self, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        for key in ("model", "max_tokens", "messages"):
            if key not in body:
                raise _Reply(400, "invalid_request_error", f"{key}: Field required")
        if not isinstance(body["messages"], list) or not body["messages"]:
            raise _Reply(400, "invalid_request_error", "messages: at least one message is required")
        text = self._respond_text(body)
        stop_reason = "end_turn"
        max_tokens = int(body["max_tokens"])
        kind = fault.kind if fault else None
        if kind == "not_json":
            text = "I'm sorry, I got carried away and wrote prose instead of the JSON you asked for."
        if kind == "max_tokens":
            text, stop_reason = text[: len(text) // 2], "max_tokens"
        elif self._config["enforce_max_tokens"] and estimate_tokens(len(text)) > max_tokens:
            text, stop_reason = text[: int(max_tokens * CHARS_PER_TOKEN)], "max_tokens"
        usage = self._usage(body, text)
        if stop_reason == "max_tokens":
            usage["output_tokens"] = max(max_tokens, usage["output_tokens"]) if kind != "max_tokens" else max_tokens
        with self._lock:
            number = next(self._ids)
        return {
            "id": f"msg_fake_{number:06d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }

    def _usage(self, body: dict[str, Any], output_text: str, *, count_only: bool = False) -> dict[str, Any]:
        blocks: list[tuple[str, bool]] = []  # (text, carries cache_control)
        system = body.get("system")
        if isinstance(system, str):
            blocks.append((system, False))
        elif isinstance(system, list):
            blocks += [(_block_text(b), isinstance(b, dict) and "cache_control" in b) for b in system]
        for message in body.get("messages", []):
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                blocks.append((content, False))
            elif isinstance(content, list):
                blocks += [(_block_text(b), isinstance(b, dict) and "cache_control" in b) for b in content]
        marks = [i for i, (_, marked) in enumerate(blocks) if marked]
        if body.get("cache_control") and blocks:
            marks.append(len(blocks) - 1)
        total = estimate_tokens(sum(len(t) for t, _ in blocks))
        created = read = 0
        if marks:
            model = str(body.get("model"))
            chars = list(itertools.accumulate(len(t) for t, _ in blocks))
            keys = {}
            for i in sorted(set(marks)):
                digest = hashlib.sha256(model.encode())
                for text, _ in blocks[: i + 1]:
                    digest.update(len(text).to_bytes(8, "big") + text.encode())
                keys[i] = digest.hexdigest()
            last = max(marks)
            prefix_tokens = estimate_tokens(chars[last])
            if prefix_tokens >= int(self._config["cache_min_tokens"] or 0) and not count_only:
                with self._lock:
                    now = time.monotonic()
                    ttl = float(self._config["cache_ttl_seconds"])
                    live = {k for k in keys.values() if k in self._cache and now - self._cache[k] <= ttl}
                    hit = next((i for i in sorted(keys, reverse=True) if keys[i] in live), None)
                    self._cache.update(dict.fromkeys(keys.values(), now))  # a read refreshes the entry
                read = estimate_tokens(chars[hit]) if hit is not None else 0
                created = prefix_tokens - read
        return {
            "input_tokens": max(total - created - read, 0),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
            "output_tokens": estimate_tokens(len(output_text)),
            "service_tier": "standard",
        }

    def _sse_events(self, message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        text = message["content"][0]["text"]
        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
        start["usage"] = {**usage, "output_tokens": 1}
        size = max(int(self._config["stream_chunk_chars"]), 1)
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ("ping", {"type": "ping"}),
        ]
        for i in range(0, len(text), size):
            delta = {"type": "text_delta", "text": text[i : i + size]}
            events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": {k: v for k, v in usage.items() if k != "service_tier"},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return events

    # ----- batches -------------------------------------------------------------------------------

    def _batch_create(self, body: dict[str, Any], body_bytes: int = 0) -> dict[str, Any]:
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            raise _Reply(400, "invalid_request_error", "requests: at least one request is required")
        if len(requests) > self._config["batch_max_requests"]:
            raise _Reply(400, "invalid_request_error",
                         f"requests: at most {self._config['batch_max_requests']} requests per batch, got {len(requests)}")
        if body_bytes > self._config["batch_max_bytes"]:
            raise _Reply(413, "request_too_large",
                         f"batch body of {body_bytes} bytes exceeds {self._config['batch_max_bytes']} bytes")
        seen: set[str] = set()
        for item in requests:
            if not isinstance(item, dict) or "custom_id" not in item or not isinstance(item.get("params"), dict):
                raise _Reply(400, "invalid_request_error", "each request needs custom_id and params")
            if item["custom_id"] in seen:
                raise _Reply(400, "invalid_request_error", f"duplicate custom_id {item['custom_id']!r}")
            seen.add(item["custom_id"])
        with self._lock:
            number = next(self._ids)
            batch_id = f"msgbatch_fake_{number:06d}"
            self._batches[batch_id] = {
                "id": batch_id,
                "number": number,
                "requests": requests,
                "created": time.monotonic(),
                "created_at": _now_rfc3339(),
                "expires_at": _now_rfc3339(24 * 3600),
                "polls": 0,
                "after_polls": self._config["batch_complete_after_polls"],
                "after_seconds": self._config["batch_complete_after_seconds"],
                "errored_fraction": float(self._config["batch_errored_fraction"]),
                "expired_fraction": float(self._config["batch_expired_fraction"]),
                "status": "in_progress",
                "cancel_initiated_at": None,
                "ended_at": None,
                "results": None,
            }
            return self._batch_object(self._batches[batch_id])

    def _get_batch(self, batch_id: str) -> dict[str, Any]:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise _Reply(404, "not_found_error", f"No batch with id {batch_id!r}")
        return batch

    def _batch_view(self, batch_id: str, *, poll: bool) -> dict[str, Any]:
        with self._lock:
            batch = self._get_batch(batch_id)
            if poll:
                batch["polls"] += 1
            self._maybe_finish(batch)
            return self._batch_object(batch)

    def _maybe_finish(self, batch: dict[str, Any]) -> None:
        if batch["status"] == "ended":
            return
        if batch["status"] == "canceling":
            self._finish(batch, canceled=True)
            return
        by_polls = batch["after_polls"] is not None and batch["polls"] >= batch["after_polls"]
        by_time = batch["after_seconds"] is not None and time.monotonic() - batch["created"] >= batch["after_seconds"]
        if by_polls or by_time:
            self._finish(batch, canceled=False)

    def _finish(self, batch: dict[str, Any], *, canceled: bool) -> None:
        requests = batch["requests"]
        order = list(range(len(requests)))
        random.Random(f"{self._config['seed']}:{batch['id']}").shuffle(order)
        n_err = round(batch["errored_fraction"] * len(requests))
        n_exp = min(round(batch["expired_fraction"] * len(requests)), len(requests) - n_err)
        fate = {}
        for rank, index in enumerate(order):
            fate[index] = "canceled" if canceled else "errored" if rank < n_err else "expired" if rank < n_err + n_exp else "succeeded"
        results = []
        for index, item in enumerate(requests):
            kind = fate[index]
            if kind == "succeeded":
                try:
                    result: dict[str, Any] = {"type": "succeeded", "message": self._message(item["params"], None)}
                except _Reply as reply:
                    kind = "errored"
                    result = {"type": "errored", "error": _error_body(reply.kind, reply.message, f"req_fake_b{index}")}
                else:
                    result["message"]["usage"]["service_tier"] = "batch"
            elif kind == "errored":
                error_type = self._config["batch_error_type"]
                result = {"type": "errored", "error": _error_body(error_type, "fake batch entry error", f"req_fake_b{index}")}
            else:
                result = {"type": kind}
            results.append({"custom_id": item["custom_id"], "result": result})
        batch["results"] = results
        if not self._config["batch_keep_requests"]:
            batch["requests"] = [{"custom_id": item["custom_id"]} for item in requests]
        batch["status"] = "ended"
        batch["ended_at"] = _now_rfc3339()

    def _batch_object(self, batch: dict[str, Any]) -> dict[str, Any]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch["status"] == "ended":
            for line in batch["results"]:
                counts[line["result"]["type"]] += 1
        else:
            counts["processing"] = len(batch["requests"])
        ended = batch["status"] == "ended"
        return {
            "id": batch["id"],
            "type": "message_batch",
            "processing_status": batch["status"],
            "request_counts": counts,
            "created_at": batch["created_at"],
            "expires_at": batch["expires_at"],
            "ended_at": batch["ended_at"],
            "cancel_initiated_at": batch["cancel_initiated_at"],
            "archived_at": None,
            "results_url": f"{self.base_url}/v1/messages/batches/{batch['id']}/results" if ended else None,
        }

    def _batch_list(self, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            for batch in self._batches.values():
                self._maybe_finish(batch)
            ordered = sorted(self._batches.values(), key=lambda b: b["number"], reverse=True)
            ids = [b["id"] for b in ordered]
            if query.get("after_id") in ids:
                ordered = ordered[ids.index(query["after_id"]) + 1 :]
            elif query.get("before_id") in ids:
                ordered = ordered[: ids.index(query["before_id"])]
            limit = int(query.get("limit", 20))
            page = ordered[:limit]
            data = [self._batch_object(b) for b in page]
            return {
                "data": data,
                "has_more": len(ordered) > limit,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }

    def _batch_cancel(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self._get_batch(batch_id)
            if batch["status"] == "in_progress":
                batch["status"] = "canceling"
                batch["cancel_initiated_at"] = _now_rfc3339()
            return self._batch_object(batch)

    def _batch_delete(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self._get_batch(batch_id)
            if batch["status"] != "ended":
                raise _Reply(400, "invalid_request_error", "a batch must end before it can be deleted")
            del self._batches[batch_id]
            return {"id": batch_id, "type": "message_batch_deleted"}

    def _batch_results(self, batch_id: str) -> bytes:
        with self._lock:
            batch = self._get_batch(batch_id)
            if batch["status"] != "ended":
                raise _Reply(400, "invalid_request_error", f"batch {batch_id} has not ended yet")
            return b"".join(json.dumps(line).encode() + b"\n" for line in batch["results"])

    # ----- /_fake control over HTTP --------------------------------------------------------------

    def _control(self, h: _Handler, method: str, path: str, raw: bytes, query: dict[str, list[str]]) -> None:
        rid = "req_fake_control"
        try:
            body = json.loads(raw) if raw else {}
            if path == "/_fake/config" and method == "POST":
                payload: Any = self.configure(**body)
            elif path == "/_fake/config" and method == "GET":
                payload = self.config
            elif path == "/_fake/faults" and method == "POST":
                self.add_faults(*(body if isinstance(body, list) else body.get("faults", [])))
                payload = {"pending_faults": self.pending_faults}
            elif path == "/_fake/log" and method == "GET":
                bodies = query.get("bodies", ["1"])[-1] not in ("0", "false")
                entries = self.log
                if not bodies:
                    for e in entries:
                        e.pop("body", None)
                payload = {**self.stats(), "requests": entries}
            elif path == "/_fake/reset" and method == "POST":
                self.reset(config=bool(body.get("config", False)))
                payload = {"ok": True}
            elif path == "/_fake/health":
                payload = {"ok": True, "base_url": self.base_url}
            else:
                raise _Reply(404, "not_found_error", f"Not found: {method} {path}")
        except _Reply as reply:
            self._send_error(h, rid, reply.status, reply.kind, reply.message)
            return
        except (ValueError, TypeError) as exc:
            self._send_error(h, rid, 400, "invalid_request_error", str(exc))
            return
        self._send(h, 200, json.dumps(payload, default=str).encode(), "application/json", rid, {}, None)
