"""`ootgen review`: a local web page (Flask) to read, filter and curate a run's examples.

Decisions are appended to the run store's human_verdicts table; the model's text and verdict are kept.
The server binds 127.0.0.1 only and answers only under a random token in the path (anything else: 403).
Each request opens the store, does one short read or one short write transaction, and closes it, so the
page works beside a run that is still writing (WAL).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from .store import ACCEPTED, PENDING, REJECTED, RunStore, StoredCandidate, apply_human_verdict

PAGE_SIZE = 50
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


@dataclass(frozen=True)
class Filters:
    """The list's filters, as given in the page's query string (empty: no filter)."""

    status: str = ""
    type: str = ""
    context: str = ""
    level: str = ""
    min_score: float | None = None
    max_score: float | None = None
    finding: str = ""
    disagreement: bool = False
    text: str = ""

    @classmethod
    def from_args(cls, args) -> Filters:
        def number(name: str) -> float | None:
            try:
                return float(args.get(name, ""))
            except ValueError:
                return None

        return cls(status=args.get("status", ""), type=args.get("type", ""), context=args.get("context", ""),
                   level=args.get("level", ""), min_score=number("min_score"), max_score=number("max_score"),
                   finding=args.get("finding", ""), disagreement=args.get("disagreement") == "1",
                   text=args.get("q", "").strip())

    def query(self) -> str:
        pairs = {"status": self.status, "type": self.type, "context": self.context, "level": self.level,
                 "min_score": "" if self.min_score is None else f"{self.min_score:g}",
                 "max_score": "" if self.max_score is None else f"{self.max_score:g}",
                 "finding": self.finding, "disagreement": "1" if self.disagreement else "", "q": self.text}
        return urlencode({k: v for k, v in pairs.items() if v})

    def keep(self, c: StoredCandidate) -> bool:
        example = c.example
        if self.status and c.status != self.status:
            return False
        if (self.type and example.type != self.type) or (self.context and c.context != self.context):
            return False
        if self.level and c.complexity != self.level:
            return False
        if self.min_score is not None and (c.score is None or c.score < self.min_score):
            return False
        if self.max_score is not None and (c.score is None or c.score > self.max_score):
            return False
        if self.finding and not any(f.get("code") == self.finding for f in c.findings):
            return False
        if self.disagreement and not (c.breakdown or {}).get("disagreement"):
            return False
        if self.text:
            needle = self.text.casefold()
            haystack = "\n".join([example.instruction, example.input, example.output, *(t.content for t in example.turns)])
            if needle not in haystack.casefold():
                return False
        return True


@dataclass(frozen=True)
class Choices:
    """What the filter drop-downs offer: the values present in the run."""

    types: list[str]
    contexts: list[str]
    levels: list[str]
    findings: list[str]


class ReviewSession:
    """The store behind the page: a fresh connection per request, never held across requests."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        # Create the human_verdicts table once, with the writer's connection settings (WAL).
        RunStore.open_run_dir(self.run_dir, readonly=True).close()
        RunStore(self.run_dir / RunStore.FILE_NAME).close()

    @contextmanager
    def store(self) -> Iterator[RunStore]:
        store = RunStore(self.run_dir / RunStore.FILE_NAME, readonly=True)
        try:
            yield store
        finally:
            store.close()

    def listing(self, filters: Filters) -> tuple[list[StoredCandidate], Choices, dict[str, int]]:
        with self.store() as store:
            everything = [c for c in store.curated_candidates() if c.status != PENDING]
        choices = Choices(
            types=sorted({c.example.type or "" for c in everything} - {""}),
            contexts=sorted({c.context for c in everything}),
            levels=sorted({c.complexity for c in everything}),
            findings=sorted({str(f.get("code")) for c in everything for f in c.findings}),
        )
        counts = {ACCEPTED: 0, REJECTED: 0, "human": 0}
        for c in everything:
            counts[c.status] += 1
            counts["human"] += "human" in (c.extras or {})
        return [c for c in everything if filters.keep(c)], choices, counts

    def detail(self, candidate_id: int) -> tuple[StoredCandidate, StoredCandidate, list] | None:
        """(as curated, the model's original, the human decisions in order) or None."""
        with self.store() as store:
            original = store.candidate(candidate_id)
            if original is None:
                return None
            curated = apply_human_verdict(original, store.human_verdict(candidate_id))
            return curated, original, store.human_history(candidate_id)

    def decide(self, candidate_id: int, status: str, reason: str | None, edit: dict | None) -> None:
        store = RunStore(self.run_dir / RunStore.FILE_NAME)
        try:
            store.record_human_verdict(candidate_id, status, reason=reason, edit=edit)
        finally:
            store.close()


def create_app(run_dir: Path, token: str):
    """The Flask app; every route lives under /<token>/."""
    from flask import Flask, abort, redirect, render_template, request, send_from_directory
    from jinja2 import StrictUndefined

    from .web import STATIC_DIR, TEMPLATE_DIR
    from .web.markdown import highlight_css, render

    session = ReviewSession(run_dir)
    app = Flask(__name__, template_folder=str(TEMPLATE_DIR), static_folder=None)
    # Autoescape every template (Flask would choose by file name, and .j2 is not on its list).
    app.jinja_options = {"autoescape": True, "undefined": StrictUndefined, "trim_blocks": True, "lstrip_blocks": True}
    app.jinja_env.filters["markdown"] = render
    app.jinja_env.globals["highlight_css"] = highlight_css
    prefix = f"/{token}"

    @app.before_request
    def require_token():
        head, _, _ = request.path.lstrip("/").partition("/")
        if not hmac.compare_digest(head.encode(), token.encode()):
            abort(403)

    @app.after_request
    def headers(response):
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get(f"{prefix}/")
    def index():
        filters = Filters.from_args(request.args)
        shown, choices, counts = session.listing(filters)
        try:
            page = max(1, int(request.args.get("page", "1")))
        except ValueError:
            page = 1
        pages = max(1, -(-len(shown) // PAGE_SIZE))
        page = min(page, pages)
        return render_template("review_list.html.j2", run_name=Path(run_dir).resolve().name, filters=filters,
                               choices=choices, counts=counts, examples=shown[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
                               total=len(shown), page=page, pages=pages, query=filters.query(), prefix=prefix)

    @app.get(f"{prefix}/example/<int:candidate_id>")
    def example(candidate_id: int):
        found = session.detail(candidate_id)
        if found is None:
            abort(404)
        curated, original, history = found
        filters = Filters.from_args(request.args)
        shown, _, _ = session.listing(filters)
        ids = [c.id for c in shown]
        position = ids.index(candidate_id) if candidate_id in ids else None
        previous_id = ids[position - 1] if position else None
        next_id = ids[position + 1] if position is not None and position + 1 < len(ids) else None
        return render_template("review_example.html.j2", run_name=Path(run_dir).resolve().name, c=curated,
                               original=original, history=history, query=filters.query(), prefix=prefix,
                               position=position, total=len(ids), previous_id=previous_id, next_id=next_id)

    @app.post(f"{prefix}/example/<int:candidate_id>/decision")
    def decision(candidate_id: int):
        form = request.form
        action = form.get("action", "")
        edit = None
        if action == "accept":
            status, reason = ACCEPTED, None
        elif action == "reject":
            status, reason = REJECTED, (form.get("reason") or "").strip() or None
        elif action == "edit":
            status, reason = ACCEPTED, None
            edit = {field: form.get(field, "").replace("\r\n", "\n") for field in ("instruction", "input", "output")}
            if not edit["instruction"].strip() or not edit["output"].strip():
                abort(400, "an edited example needs an instruction and an output")
        else:
            abort(400, "action must be accept, reject or edit")
        if session.detail(candidate_id) is None:
            abort(404)
        session.decide(candidate_id, status, reason, edit)
        target = form.get("next") or ""
        query = form.get("query", "")
        where = f"{prefix}/example/{int(target)}" if target.isdigit() else f"{prefix}/example/{candidate_id}"
        return redirect(where + (f"?{query}" if query else ""), code=303)

    @app.get(f"{prefix}/static/<path:name>")
    def static_file(name: str):
        return send_from_directory(STATIC_DIR, name)

    return app


def serve(run_dir: Path, *, port: int = 0, open_browser: bool = True, announce: Callable[[str], None] = print) -> None:
    """Serve the review page on 127.0.0.1 until Ctrl-C."""
    from werkzeug.serving import make_server

    token = secrets.token_urlsafe(24)
    app = create_app(run_dir, token)
    server = make_server("127.0.0.1", port, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}/{token}/"
    announce(f"reviewing {run_dir} at {url}")
    announce("press Ctrl-C to stop; every decision is saved at once")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
