"""Run report: one self-contained HTML page (inline CSS and SVG, no scripts, no network) describing a run.

It reads the run database read-only, so it can be made while a run is still writing; every text taken
from the database is model output or derived from it and is escaped before it reaches the page.
"""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

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
    summary = RunSummary(name=name, meta=meta, totals=store.totals(), threshold=threshold)
    dimensions = {"type": {}, "context": {}, "complexity": {}}
    accepted: list[StoredCandidate] = []
    for candidate in store.candidates():
        status = candidate.status
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
            accepted.append(candidate)
        for finding in candidate.findings:
            code = str(finding.get("code", "?"))
            entry = summary.findings.setdefault(code, {"severity": str(finding.get("severity", "info")), "count": 0, "ids": set()})
            entry["count"] += 1
            entry["ids"].add(candidate.id)
    accepted.sort(key=lambda c: c.accepted_seq or 0)
    summary.accepted_sample = accepted[:SAMPLE_SIZE]
    summary.by_dimension = dimensions
    # No RunStore method lists failures one by one; totals() only counts them.
    grouped: dict[tuple[str, str], list] = {}
    for kind, reason in store.db.execute("SELECT kind, reason FROM failures ORDER BY id"):
        entry = grouped.setdefault((kind, reason_group(reason)), [0, ""])
        entry[0] += 1
        entry[1] = reason
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


# --- rendering -------------------------------------------------------------------------------------


def _e(value) -> str:
    return escape(str(value), quote=True)


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


def _bar(fraction: float | None, cls: str = "") -> str:
    width = 0.0 if fraction is None else max(0.0, min(1.0, fraction)) * 100
    return f'<div class="bar {cls}"><span style="width:{width:.1f}%"></span></div>'


def _stat(label: str, value: str, note: str = "", *, wide: bool = False) -> str:
    note_html = f'<div class="note">{note}</div>' if note else ""
    cls = "stat wide" if wide else "stat"
    return f'<div class="{cls}"><div class="label">{_e(label)}</div><div class="value">{value}</div>{note_html}</div>'


def _header(s: RunSummary) -> str:
    meta, totals = s.meta, s.totals
    usage: Usage = totals["usage"]
    target = meta.get("target")
    accepted = totals["accepted"]
    progress = accepted / target if target else None
    created = meta.get("created")
    started = datetime.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M") if isinstance(created, (int, float)) else None
    model = _e(meta.get("model") or "?")
    if meta.get("judge_model") and meta["judge_model"] != meta.get("model"):
        model += f'<div class="note">judge: {_e(meta["judge_model"])}</div>'
    stats = [
        _stat("Model", model, wide=True),
        _stat("Seed", _e(meta.get("seed", "–"))),
        _stat("Accepted / target", f"{_int(accepted)} / {_int(target)}",
              (_bar(progress, "good") if progress is not None else "")
              + f"{_int(totals['rejected'])} rejected · {_int(totals['pending'])} pending"),
        _stat("Cost", _e(_cost(totals["cost_usd"]))),
        _stat("Tokens", _int(usage.total_input + usage.output_tokens),
              f"{_int(usage.total_input)} in · {_int(usage.output_tokens)} out"),
        _stat("Duration", _duration(meta.get("total_duration_seconds")),
              f"last session {_duration(meta.get('last_duration_seconds'))}" if meta.get("last_duration_seconds") else ""),
        _stat("API calls", _int(sum(totals["calls"].values())),
              " · ".join(f"{_e(k)} {_int(v)}" for k, v in sorted(totals["calls"].items()))),
    ]
    subtitle = f"Run report · started {_e(started)}" if started else "Run report"
    return (f'<header><p class="eyebrow">{subtitle}</p><h1>{_e(s.name)}</h1>'
            f'<div class="stats">{"".join(stats)}</div></header>')


def _histogram(s: RunSummary) -> str:
    if not s.scores:
        return '<p class="empty">No candidate has been scored yet.</p>'
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
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="Score histogram" class="chart">']
    for tick in range(0, top + 1, step):
        y = pad_top + plot_h - plot_h * tick / top
        parts.append(f'<line x1="{left}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 8}" y="{y + 4:.1f}" class="tick" text-anchor="end">{tick}</text>')
    for i in range(bins):
        x = left + i * bin_w + 2
        base = pad_top + plot_h
        for status in (REJECTED, ACCEPTED):
            n = counts[status][i]
            if not n:
                continue
            h = plot_h * n / top
            base -= h
            label = f"{i * _BIN:g}–{(i + 1) * _BIN:g}: {n} {status}"
            parts.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bin_w - 4:.1f}" height="{h:.1f}" class="{status}">'
                         f'<title>{_e(label)}</title></rect>')
    for score in range(0, 11):
        x = left + score / _BIN * bin_w
        parts.append(f'<text x="{x:.1f}" y="{height - 10}" class="tick" text-anchor="middle">{score}</text>')
    if s.threshold is not None:
        x = left + float(s.threshold) / _BIN * bin_w
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad_top - 6}" y2="{pad_top + plot_h}" class="threshold"/>'
                     f'<text x="{x + 6:.1f}" y="{pad_top + 4}" class="tick threshold-label">threshold {_e(s.threshold)}</text>')
    parts.append("</svg>")
    legend = ('<p class="legend"><span class="swatch accepted"></span>accepted <span class="swatch rejected"></span>rejected'
              f' · {len(s.scores):,} scored candidates, bins of {_BIN:g}</p>')
    return "".join(parts) + legend


def _acceptance_table(title: str, tallies: dict[str, _Tally]) -> str:
    if not tallies:
        return ""
    rows = []
    for name, t in sorted(tallies.items(), key=lambda kv: (-kv[1].total, kv[0])):
        rows.append(f"<tr><td>{_e(name)}</td><td class=num>{t.total:,}</td><td class=num>{t.accepted:,}</td>"
                    f"<td class=num>{t.rejected:,}</td><td class=num>{t.pending:,}</td>"
                    f"<td class=barcell>{_bar(t.rate, 'good')}<span class=num>{_pct(t.rate)}</span></td></tr>")
    return (f"<h3>By {_e(title)}</h3><table><thead><tr><th>{_e(title)}</th><th class=num>candidates</th>"
            "<th class=num>accepted</th><th class=num>rejected</th><th class=num>pending</th><th>acceptance</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def _reasons(s: RunSummary) -> str:
    if not s.reasons:
        return '<p class="empty">No candidate has been rejected.</p>'
    total = sum(sum(c.values()) for c in s.reasons.values())
    rows = []
    for group, variants in sorted(s.reasons.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        n = sum(variants.values())
        detail = ""
        if len(variants) > 3:  # e.g. low_score with one variant per score: the spread says enough
            top, count = variants.most_common(1)[0]
            detail = f'<div class="variants muted">{len(variants)} distinct messages; most often {_e(top)} ×{count}</div>'
        elif len(variants) > 1 or next(iter(variants)) != group:
            detail = '<div class="variants">' + " · ".join(f"{_e(r)} <span class=muted>×{c}</span>" for r, c in variants.most_common()) + "</div>"
        rows.append(f"<tr><td><code>{_e(group)}</code>{detail}</td><td class=num>{n:,}</td>"
                    f"<td class=barcell>{_bar(n / total, 'bad')}<span class=num>{_pct(n / total)}</span></td></tr>")
    return ("<table><thead><tr><th>reason</th><th class=num>rejected</th><th>share</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _severity(severity: str) -> str:
    return f'<span class="sev sev-{_e(severity if severity in _SEVERITY_RANK else "info")}">{_e(severity)}</span>'


def _findings(s: RunSummary) -> str:
    if not s.findings:
        return '<p class="empty">The static checks found nothing.</p>'
    peak = max(f["count"] for f in s.findings.values())
    rows = []
    for code, f in sorted(s.findings.items(), key=lambda kv: (_SEVERITY_RANK.get(kv[1]["severity"], 3), -kv[1]["count"], kv[0])):
        rows.append(f"<tr><td><code>{_e(code)}</code></td><td>{_severity(f['severity'])}</td>"
                    f"<td class=num>{f['count']:,}</td><td class=num>{len(f['ids']):,}</td>"
                    f"<td class=barcell>{_bar(f['count'] / peak, 'fill-' + f['severity'])}</td></tr>")
    return ("<table><thead><tr><th>code</th><th>severity</th><th class=num>findings</th><th class=num>candidates</th>"
            f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _tokens(s: RunSummary) -> str:
    usage: Usage = s.totals["usage"]
    read = usage.cache_read_input_tokens
    ratio = read / usage.total_input if usage.total_input else None
    rows = [
        ("Input (uncached)", usage.input_tokens), ("Cache writes", usage.cache_creation_input_tokens),
        ("Cache reads", read), ("Output", usage.output_tokens),
    ]
    body = "".join(f"<tr><td>{label}</td><td class=num>{n:,}</td></tr>" for label, n in rows)
    reused = s.totals.get("responses_reused_from_cache", 0)
    return (f'<div class="split"><table class="compact"><tbody>{body}</tbody></table><div>'
            + _stat("Cache hit ratio", _pct(ratio), _bar(ratio, "good") + "cache reads ÷ all input tokens")
            + _stat("Cost", _e(_cost(s.totals["cost_usd"])), f"{reused:,} responses reused from the response cache, free")
            + "</div></div>")


def _failures(s: RunSummary) -> str:
    if not s.failures:
        return '<p class="empty">No API call failed.</p>'
    rows = "".join(
        f"<tr><td>{_e(kind)}</td><td><code>{_e(group)}</code></td><td class=num>{n:,}</td><td class=muted>{_e(last)}</td></tr>"
        for kind, group, n, last in s.failures
    )
    return ("<table><thead><tr><th>call</th><th>reason</th><th class=num>count</th><th>latest message</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _text_block(label: str, text: str) -> str:
    return f'<div class="field"><div class="field-label">{_e(label)}</div><pre>{_e(text)}</pre></div>'


def _example(c: StoredCandidate) -> str:
    ex = c.example
    headline = ex.instruction.strip().splitlines()[0] if ex.instruction.strip() else "(empty instruction)"
    if len(headline) > 110:
        headline = headline[:107] + "…"
    score = f"{c.score:.1f}" if c.score is not None else "–"
    tags = " ".join(f'<span class="tag">{_e(v)}</span>' for v in (ex.type, c.context, c.complexity) if v)
    head = (f'<summary><span class="score {c.status}">{score}</span><span class="headline">{_e(headline)}</span>'
            f'<span class="tags">{tags}</span></summary>')
    parts = []
    if c.reason:
        parts.append(f'<p class="reason">Rejected: <code>{_e(c.reason)}</code></p>')
    if ex.turns:
        for number, turn in enumerate(ex.turns, 1):
            parts.append(_text_block(f"Turn {number} · {turn.role}", turn.content))
    else:
        parts.append(_text_block("Instruction", ex.instruction))
        if ex.input:
            parts.append(_text_block("Input", ex.input))
        parts.append(_text_block("Output", ex.output))
    verdict = c.verdict or {}
    if verdict:
        issues = verdict.get("technical_issues") or []
        issue_html = ("<ul>" + "".join(f"<li>{_e(i)}</li>" for i in issues) + "</ul>") if issues else '<p class="muted">No technical issues.</p>'
        parts.append(f'<div class="verdict"><div class="field-label">Judge · score {score} · technical accuracy '
                     f'{_e(verdict.get("technical_accuracy", "–"))}/10</div><p>{_e(verdict.get("summary", ""))}</p>{issue_html}</div>')
    if c.findings:
        items = "".join(
            f"<li>{_severity(str(f.get('severity', 'info')))} <code>{_e(f.get('code', '?'))}</code> {_e(f.get('message', ''))}"
            + (f' <span class="muted">({_e(f["location"])})</span>' if f.get("location") else "") + "</li>"
            for f in c.findings
        )
        parts.append(f'<div class="findings"><div class="field-label">Static findings</div><ul>{items}</ul></div>')
    topic = f'<p class="muted small">candidate #{c.id} · task {c.task_idx} slot {c.slot}' + (f" · topic: {_e(ex.topic)}" if ex.topic else "") + "</p>"
    return f'<details class="example">{head}<div class="body">{"".join(parts)}{topic}</div></details>'


def _sample(title: str, sample: list[StoredCandidate], total: int) -> str:
    if not sample:
        return f'<h3>{_e(title)}</h3><p class="empty">None.</p>'
    shown = f"first {len(sample)} of {total:,}" if total > len(sample) else f"all {total:,}"
    return f'<h3>{_e(title)} <span class="muted">({shown})</span></h3>' + "".join(_example(c) for c in sample)


def render(s: RunSummary) -> str:
    sections = [
        ("scores", "Judge scores", _histogram(s)),
        ("acceptance", "Acceptance",
         "".join(_acceptance_table(d, s.by_dimension.get(d, {})) for d in ("type", "context", "complexity"))),
        ("rejections", "Rejection reasons", _reasons(s)),
        ("findings", "Static L1 findings", _findings(s)),
        ("tokens", "Tokens and cost", _tokens(s)),
        ("failures", "API failures", _failures(s)),
        ("examples", "Examples",
         _sample("Accepted", s.accepted_sample, s.totals["accepted"]) + _sample("Rejected", s.rejected_sample, s.totals["rejected"])),
    ]
    nav = " ".join(f'<a href="#{anchor}">{_e(title)}</a>' for anchor, title, _ in sections)
    body = "".join(f'<section id="{anchor}"><h2>{_e(title)}</h2>{html}</section>' for anchor, title, html in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No scripts, no remote anything: the page is inert even if a model wrote markup into an example.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>ootgen report · {_e(s.name)}</title><style>{_CSS}</style></head><body><main>"
        f'{_header(s)}<nav>{nav}</nav>{body}'
        '<footer>Generated by ootgen from run.sqlite (read-only).</footer></main></body></html>\n'
    )


_CSS = """
:root { --ink:#1f2328; --muted:#656d76; --line:#d8dee4; --soft:#f6f8fa; --good:#2da44e; --bad:#cf5b4a;
  --warn:#bf8700; --info:#5a7bb5; --accent:#0b5fad; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: #fff; color: var(--ink); font: 15px/1.55 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 960px; margin: 0 auto; padding: 40px 28px 64px; }
header { border-bottom: 1px solid var(--line); padding-bottom: 20px; }
.eyebrow { margin: 0; color: var(--muted); font-size: 13px; letter-spacing: .04em; text-transform: uppercase; }
h1 { margin: 4px 0 20px; font-size: 30px; line-height: 1.2; word-break: break-word; }
h2 { font-size: 21px; margin: 0 0 14px; padding-top: 8px; }
h3 { font-size: 16px; margin: 22px 0 8px; }
section { padding: 22px 0 10px; border-bottom: 1px solid var(--line); break-inside: avoid-page; }
section#examples { break-inside: auto; border-bottom: 0; }
nav { display: flex; flex-wrap: wrap; gap: 6px 18px; padding: 12px 0; font-size: 14px;
  border-bottom: 1px solid var(--line); }
a { color: var(--accent); text-decoration: none; }
.stats { display: grid; grid-template-columns: repeat(4, 1fr); gap: 14px; }
.stat.wide { grid-column: span 2; }
.stat { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 0; }
.stat .label { font-size: 12px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.stat .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.note, .muted { color: var(--muted); }
.note { font-size: 12.5px; font-weight: 400; }
.small { font-size: 12.5px; }
.empty { color: var(--muted); font-style: italic; }
table { width: 100%; border-collapse: collapse; font-size: 14px; font-variant-numeric: tabular-nums; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 12.5px; text-transform: uppercase;
  letter-spacing: .03em; border-bottom: 2px solid var(--line); padding: 6px 10px; }
td { border-bottom: 1px solid var(--line); padding: 6px 10px; vertical-align: top; }
.num { text-align: right; white-space: nowrap; }
td.barcell { width: 34%; white-space: nowrap; }
td.barcell .bar { display: inline-block; width: calc(100% - 56px); vertical-align: middle; }
td.barcell .num { display: inline-block; width: 52px; }
.bar { height: 10px; background: #eaeef2; border-radius: 5px; overflow: hidden; margin: 4px 0; }
.bar span { display: block; height: 100%; background: var(--accent); border-radius: 5px; }
.bar.good span { background: var(--good); } .bar.bad span { background: var(--bad); }
.bar.fill-error span { background: var(--bad); } .bar.fill-warning span { background: var(--warn); }
.bar.fill-info span { background: var(--info); }
.variants { font-size: 12.5px; margin-top: 2px; }
code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft);
  padding: 1px 5px; border-radius: 4px; }
.sev { display: inline-block; font-size: 11.5px; font-weight: 600; padding: 1px 7px; border-radius: 10px;
  text-transform: uppercase; letter-spacing: .03em; }
.sev-error { background: #ffebe9; color: #a40e26; } .sev-warning { background: #fff8c5; color: #7d4e00; }
.sev-info { background: #ddf4ff; color: #0a3069; }
.chart { width: 100%; height: auto; display: block; }
.chart .grid { stroke: #eaeef2; } .chart .tick { font-size: 12px; fill: var(--muted); }
.chart rect.accepted { fill: var(--good); } .chart rect.rejected { fill: #c9d1d9; }
.chart .threshold { stroke: var(--bad); stroke-width: 2; stroke-dasharray: 5 4; }
.chart .threshold-label { fill: var(--bad); font-weight: 600; }
.legend { font-size: 13px; color: var(--muted); }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin: 0 5px 0 10px; vertical-align: -1px; }
.swatch.accepted { background: var(--good); } .swatch.rejected { background: #c9d1d9; }
.split { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; align-items: start; }
.split .stat { margin-bottom: 12px; }
details.example { border: 1px solid var(--line); border-radius: 8px; margin: 8px 0; background: #fff; }
details.example > summary { cursor: pointer; padding: 9px 14px; display: flex; gap: 12px; align-items: baseline;
  list-style: none; }
details.example > summary::-webkit-details-marker { display: none; }
details.example[open] > summary { border-bottom: 1px solid var(--line); background: var(--soft); }
.headline { flex: 1; min-width: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tags { white-space: nowrap; }
.tag { font-size: 11.5px; color: var(--muted); border: 1px solid var(--line); border-radius: 10px; padding: 0 7px; margin-left: 4px; }
.score { font-weight: 700; font-variant-numeric: tabular-nums; min-width: 2.6em; text-align: center; border-radius: 6px;
  padding: 0 6px; font-size: 13.5px; }
.score.accepted { background: #dafbe1; color: #116329; } .score.rejected { background: #ffebe9; color: #a40e26; }
.score.pending { background: var(--soft); color: var(--muted); }
.body { padding: 6px 16px 10px; }
.field { margin: 10px 0; }
.field-label { font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .04em;
  margin-bottom: 4px; }
pre { margin: 0; padding: 10px 12px; background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  font: 12.5px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre-wrap;
  overflow-wrap: anywhere; max-height: 28em; overflow: auto; }
.verdict, .findings { margin: 12px 0; }
.verdict p { margin: 2px 0 4px; }
ul { margin: 4px 0; padding-left: 22px; }
.reason { margin: 10px 0 0; }
footer { margin-top: 28px; color: var(--muted); font-size: 12.5px; }
@media (max-width: 720px) { .stats { grid-template-columns: repeat(2, 1fr); } .split { grid-template-columns: 1fr; } }
@media print {
  body { font-size: 11pt; } main { max-width: none; padding: 0; } nav { display: none; }
  .stats { grid-template-columns: repeat(4, 1fr); }
  details.example { break-inside: avoid; } pre { max-height: none; overflow: visible; }
  details::details-content { content-visibility: visible; display: block; }
  section { border-bottom: 0; }
}
"""
