"""Run report: one self-contained HTML page (inline CSS and SVG, no scripts, no network) describing a run.

It reads the run database read-only, so it can be made while a run is still writing. `summarise` gathers
the data; templates/report.html.j2 (Jinja2, autoescape) lays it out, rendering model prose as Markdown
(raw HTML off) and highlighting code, as the review page does. Human review decisions are applied.
"""

from __future__ import annotations

import datetime
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .diversity import DiversityMeter
from .models import Usage
from .store import ACCEPTED, PENDING, REJECTED, RunStore, StoredCandidate

SAMPLE_SIZE = 50
_BIN = 0.5  # score histogram bin width over 0..10
_SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


@dataclass
class _Tally:
    accepted: int = 0
    rejected: int = 0
    pending: int = 0

    def add(self, status: str) -> None:
        key = status if status in (ACCEPTED, REJECTED, PENDING) else PENDING
        setattr(self, key, getattr(self, key) + 1)

    @property
    def total(self) -> int:
        return self.accepted + self.rejected + self.pending

    @property
    def rate(self) -> float | None:
        decided = self.accepted + self.rejected
        return self.accepted / decided if decided else None


@dataclass
class RunSummary:
    """Everything the report shows, gathered in one pass over the run database."""

    name: str
    meta: dict
    totals: dict
    threshold: float | None
    scores: list[tuple[float, str]] = field(default_factory=list)  # (score, status) of judged candidates
    by_dimension: dict[str, dict[str, _Tally]] = field(default_factory=dict)
    reasons: dict[str, Counter] = field(default_factory=dict)  # reason group -> full reasons
    findings: dict[str, dict] = field(default_factory=dict)  # code -> severity, count, candidates
    failures: list[tuple[str, str, int, str]] = field(default_factory=list)  # kind, group, count, latest message
    accepted_sample: list[StoredCandidate] = field(default_factory=list)
    rejected_sample: list[StoredCandidate] = field(default_factory=list)
    human: Counter = field(default_factory=Counter)  # accepted / rejected / edited by a person (ootgen review)
    diversity: dict | None = None  # ootgen.diversity over the accepted instructions (issue 12)


_UNSEQUENCED = 2**62  # accepted before accepted_seq existed: sorted after the sequenced ones


def reason_group(reason: str) -> str:
    """'low_score (4.5 < 6.0)' -> 'low_score', 'static: C_SYNTAX' -> 'static'."""
    cut = len(reason)
    for mark in (" (", ":"):
        at = reason.find(mark)
        if at != -1:
            cut = min(cut, at)
    return reason[:cut].strip() or reason


def summarise(store: RunStore, name: str) -> RunSummary:
    settings = store.get_meta("settings", {}) or {}
    threshold = (settings.get("scoring") or {}).get("threshold")
    meta = {key: store.get_meta(key) for key in ("model", "seed", "target", "created", "total_duration_seconds", "last_duration_seconds")}
    meta["judge_model"] = (settings.get("judge") or {}).get("model")
    meta["http"] = store.get_meta("http")  # measured at the HTTP layer: attempts, SDK retries, peak concurrency, faults
    dataset_name = ((settings.get("export") or {}).get("hf") or {}).get("name")
    summary = RunSummary(name=dataset_name or name, meta=meta, totals=dict(store.totals()), threshold=threshold)
    dimensions: dict[str, dict[str, _Tally]] = {"type": {}, "context": {}, "complexity": {}}
    # Accepted examples are kept as (accepted_seq, id) only; the few shown or sampled are read back by id (issue 17).
    accepted_seqs, accepted_ids = array("q"), array("q")  # 16 bytes an accepted example
    diversity = DiversityMeter()
    statuses: Counter = Counter()
    for candidate in store.curated_candidates():
        status = candidate.status
        statuses[status] += 1
        decision = (candidate.extras or {}).get("human")
        if decision:
            summary.human[decision["status"]] += 1
            summary.human["edited"] += bool(decision["edited"])
        for dimension, value in (("type", candidate.example.type or "?"), ("context", candidate.context),
                                 ("complexity", candidate.complexity)):
            dimensions[dimension].setdefault(value, _Tally()).add(status)
        if candidate.score is not None:
            summary.scores.append((candidate.score, status))
        if status == REJECTED:
            reason = candidate.reason or "unknown"
            summary.reasons.setdefault(reason_group(reason), Counter())[reason] += 1
            if len(summary.rejected_sample) < SAMPLE_SIZE:
                summary.rejected_sample.append(candidate)
        elif status == ACCEPTED:
            accepted_seqs.append(_UNSEQUENCED if candidate.accepted_seq is None else candidate.accepted_seq)
            accepted_ids.append(candidate.id)
            diversity.add(candidate.example.instruction)
        for finding in candidate.findings:
            code = str(finding.get("code", "?"))
            entry = summary.findings.setdefault(code, {"severity": str(finding.get("severity", "info")), "count": 0, "ids": set()})
            entry["count"] += 1
            entry["ids"].add(candidate.id)
    # Counts after human review (the model's own counts are in store.totals()).
    summary.totals.update({key: statuses[key] for key in (ACCEPTED, REJECTED, PENDING)})
    # In acceptance order (unsequenced last, then by id). The meter saw the instructions in id order: distinct-n does
    # not depend on order, and the pairwise sample is taken evenly over the acceptance order.
    ids = np.frombuffer(accepted_ids, dtype=np.int64)
    ordered = ids[np.lexsort((ids, np.frombuffer(accepted_seqs, dtype=np.int64)))].tolist() if len(ids) else []
    summary.accepted_sample = store.curated_by_ids(ordered[:SAMPLE_SIZE])
    sampled = store.curated_by_ids([ordered[i] for i in diversity.sample_positions()])
    found = diversity.result([c.example.instruction for c in sampled])
    summary.diversity = found.as_dict() if found else None
    summary.by_dimension = dimensions
    # No RunStore method lists failures one by one; totals() only counts them.
    grouped: dict[tuple[str, str], list] = {}
    for kind, reason in store.db.execute("SELECT kind, reason FROM failures ORDER BY id"):
        group = grouped.setdefault((kind, reason_group(reason)), [0, ""])
        group[0] += 1
        group[1] = reason
    # Faults the SDK retried (and won) never reach the failures table: they come from the HTTP counts.
    for kind, n in ((store.get_meta("http") or {}).get("faults") or {}).items():
        grouped[("http", kind)] = [n, "counted at the HTTP layer; retried by the SDK where it could"]
    summary.failures = sorted(((k, g, n, last) for (k, g), (n, last) in grouped.items()), key=lambda f: (-f[2], f[0], f[1]))
    return summary


def build_report(run_dir: Path) -> str:
    """The HTML report of the run in `run_dir` (its run.sqlite is opened read-only)."""
    run_dir = Path(run_dir)
    store = RunStore.open_run_dir(run_dir, readonly=True)
    try:
        summary = summarise(store, run_dir.resolve().name)
    finally:
        store.close()
    return render(summary)


def write_report(run_dir: Path, out_path: Path) -> Path:
    """Write the report to `out_path` atomically: readers see the old file or the whole new one."""
    from .export import write_atomic

    out_path = Path(out_path)
    write_atomic(out_path, [build_report(run_dir)])
    return out_path


# --- presentation data (the template lays it out) ----------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    status: str
    label: str


@dataclass(frozen=True)
class Histogram:
    """The score histogram as SVG geometry: stacked bars per bin, grid lines, axis ticks, threshold."""

    width: int
    height: int
    bars: list[Bar]
    grid: list[tuple[float, int]]  # (y, count)
    ticks: list[tuple[float, int]]  # (x, score)
    threshold_x: float | None
    plot_top: float
    plot_bottom: float
    left: int
    scored: int
    bin_width: float


def histogram(s: RunSummary) -> Histogram | None:
    if not s.scores:
        return None
    bins = int(10 / _BIN)
    counts = {status: [0] * bins for status in (ACCEPTED, REJECTED)}
    for score, status in s.scores:
        index = min(bins - 1, max(0, int(score / _BIN)))
        counts[ACCEPTED if status == ACCEPTED else REJECTED][index] += 1
    peak = max(a + r for a, r in zip(counts[ACCEPTED], counts[REJECTED]))
    step = max(1, -(-peak // 4))
    top = step * 4
    width, height, left, bottom, pad_top = 860, 240, 44, 30, 16
    plot_w, plot_h = width - left - 12, height - bottom - pad_top
    bin_w = plot_w / bins
    bars = []
    for i in range(bins):
        base: float = pad_top + plot_h
        for status in (REJECTED, ACCEPTED):
            n = counts[status][i]
            if n:
                h = plot_h * n / top
                base -= h
                bars.append(Bar(left + i * bin_w + 2, base, bin_w - 4, h, status, f"{i * _BIN:g}–{(i + 1) * _BIN:g}: {n} {status}"))
    return Histogram(
        width=width, height=height, bars=bars,
        grid=[(pad_top + plot_h - plot_h * tick / top, tick) for tick in range(0, top + 1, step)],
        ticks=[(left + score / _BIN * bin_w, score) for score in range(0, 11)],
        threshold_x=None if s.threshold is None else left + float(s.threshold) / _BIN * bin_w,
        plot_top=pad_top, plot_bottom=pad_top + plot_h, left=left, scored=len(s.scores), bin_width=_BIN,
    )


def _int(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _cost(dollars: float | None) -> str:
    return "unknown (model not priced)" if dollars is None else f"${dollars:,.2f}" if dollars >= 1 else f"${dollars:.4f}"


def _width(fraction: float | None) -> str:
    return f"{0.0 if fraction is None else max(0.0, min(1.0, fraction)) * 100:.1f}%"


def render(s: RunSummary) -> str:
    from .web import html_environment

    env = html_environment()
    env.filters.update(int_=_int, pct=_pct, duration=_duration, cost=_cost, width=_width)
    usage: Usage = s.totals["usage"]
    created = s.meta.get("created")
    started = datetime.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M") if isinstance(created, (int, float)) else None
    reasons = sorted(s.reasons.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    findings = sorted(s.findings.items(), key=lambda kv: (_SEVERITY_RANK.get(kv[1]["severity"], 3), -kv[1]["count"], kv[0]))
    tallies = {d: sorted(s.by_dimension.get(d, {}).items(), key=lambda kv: (-kv[1].total, kv[0]))
               for d in ("type", "context", "complexity")}
    return env.get_template("report.html.j2").render(
        s=s, usage=usage, started=started, histogram=histogram(s), reasons=reasons,
        reasons_total=sum(sum(c.values()) for _, c in reasons), findings=findings,
        findings_peak=max((f["count"] for f in s.findings.values()), default=1), tallies=tallies,
        cache_ratio=usage.cache_read_input_tokens / usage.total_input if usage.total_input else None,
    )
