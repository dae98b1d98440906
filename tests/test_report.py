from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ootgen.errors import OotgenError
from ootgen.report import build_report, reason_group, write_report
from ootgen.store import RunStore
from tests.report_fixture import PLANTED_HANDLER, PLANTED_SCRIPT, TYPES, RunFacts, build_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "run"


@pytest.fixture
def facts(run_dir: Path) -> RunFacts:
    return build_run(run_dir)


def _text(html: str) -> str:
    """The page's visible text, roughly: tags dropped, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_report_shows_the_run_figures(run_dir, facts):
    html = build_report(run_dir)
    text = _text(html)

    assert f"{facts.accepted} / 30" in text  # accepted / target
    assert "claude-sonnet-4-5" in text and "42" in text
    for name in TYPES:
        assert name in text
    for code in facts.finding_codes:
        assert code in text
    for group in facts.reasons:
        assert group in text
    for group in facts.failures:
        assert group in text
    assert "threshold 6.0" in text
    assert "12 min 34 s" in text


def test_report_shows_exported_beside_accepted_and_what_the_http_layer_measured(run_dir, facts):
    store = RunStore.open_run_dir(run_dir)
    store.set_meta("target", 5)  # fewer than were accepted: the dataset holds 5
    store.set_meta("http", {"attempts": 61, "retries": 7, "peak_concurrency": 3, "faults": {"rate_limited_429": 7}})
    store.close()
    text = _text(build_report(run_dir))
    assert "Exported / target 5 / 5" in text
    assert f"{facts.accepted} accepted ({facts.accepted - 5} beyond the target" in text
    assert "61 HTTP requests · 7 SDK retries · peak 3 at once" in text and "rate_limited_429" in text


def test_report_counts_rejections_by_reason_group_and_findings_by_code(run_dir, facts):
    html = build_report(run_dir)

    for group, count in facts.reasons.items():
        row = re.search(rf"<code>{re.escape(group)}</code>(?:<div[^>]*>.*?</div>)?</td><td class=num>(\d+)</td>", html)
        assert row and int(row.group(1)) == count, group
    for code, count in facts.finding_codes.items():
        row = re.search(rf"<code>{re.escape(code)}</code></td><td>.*?</td><td class=num>(\d+)</td>", html)
        assert row and int(row.group(1)) == count, code


@pytest.mark.usefixtures("facts")
def test_cache_hit_ratio_is_cache_reads_over_all_input(run_dir):
    text = _text(build_report(run_dir))
    # fixture: 10 generate + 10 judge calls; 2 write 4200 cache tokens, 18 read 4200; input 900 + 37*seed
    uncached = sum(900 + 37 * seed for seed in range(10)) * 2
    ratio = 18 * 4200 / (uncached + 2 * 4200 + 18 * 4200)
    assert f"Cache hit ratio {100 * ratio:.0f} %" in text


def test_reason_group_is_the_text_before_the_first_paren_or_colon():
    assert reason_group("low_score (4.5 < 6.0)") == "low_score"
    assert reason_group("static: C_SYNTAX, UNKNOWN_FUNCTION") == "static"
    assert reason_group("duplicate (near)") == "duplicate"
    assert reason_group("judge_failed") == "judge_failed"
    assert reason_group("api_error: 429 (rate limited)") == "api_error"


@pytest.mark.usefixtures("facts")
def test_model_output_is_escaped(run_dir):
    html = build_report(run_dir)

    assert PLANTED_SCRIPT not in html and PLANTED_HANDLER not in html
    assert "&lt;script&gt;window.ootgenPwned = 'script'&lt;/script&gt;" in html
    assert "&lt;img src=&quot;x&quot; onerror=" in html
    assert "<b>bold</b>" not in html and "<img" not in html.lower()
    assert "&lt;too many requests&gt;" in html  # failure messages too
    assert "wrong &lt;struct&gt; field name" in html  # judge verdict technical_issues
    assert "<script" not in html.lower()


@pytest.mark.usefixtures("facts")
def test_prose_is_markdown_and_code_is_highlighted(run_dir):
    html = build_report(run_dir)

    # Prose is a paragraph with inline code, not a monospace block; a ```c fence is highlighted C.
    assert re.search(r"<p><code>\w+</code> runs once per frame while the actor is alive\.", html)
    assert '<pre class="highlight"><code class="language-c"><span class="kt">void</span>' in html
    assert "<pre>" not in html  # no raw monospace dump of an answer


def test_report_is_titled_by_the_dataset_name(tmp_path):
    build_run(tmp_path / "run")
    store = RunStore.open_run_dir(tmp_path / "run")
    settings = store.get_meta("settings")
    store.set_meta("settings", {**settings, "export": {"hf": {"name": "OoT Actors <v1>"}}})
    store.close()
    html = build_report(tmp_path / "run")

    assert "<h1>OoT Actors &lt;v1&gt;</h1>" in html and "<title>OoT Actors &lt;v1&gt; · ootgen report</title>" in html


def test_report_counts_human_review_decisions(run_dir, facts):
    store = RunStore.open_run_dir(run_dir)
    accepted = [c.id for c in store.candidates("accepted")]
    store.record_human_verdict(accepted[0], "rejected", reason="wrong <flag>")
    store.record_human_verdict(accepted[1], "accepted", edit={"instruction": "Edited question?", "input": "",
                                                               "output": "Edited **answer**."})
    store.close()
    text = _text(build_report(run_dir))

    assert f"{facts.accepted - 1} / 30" in text
    assert f"{facts.rejected + 1} rejected" in text and "2 decided by a person (1 edited)" in text
    assert "human: wrong &lt;flag&gt;" in build_report(run_dir)
    assert "Edited <strong>answer</strong>." in build_report(run_dir)


@pytest.mark.usefixtures("facts")
def test_report_is_self_contained(run_dir):
    html = build_report(run_dir)

    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert "@import" not in html and "url(" not in html
    assert re.findall(r"""href=["']([^"']*)""", html) and all(h.startswith("#") for h in re.findall(r"""href=["']([^"']*)""", html))


def test_report_samples_accepted_and_rejected_examples_as_details(run_dir, facts):
    html = build_report(run_dir)

    assert html.count('<details class="example">') == facts.accepted + facts.rejected
    assert "Accurate and well explained." in html and "Confuses Update with Draw." in html
    assert "globalCtx was renamed to play" in html  # a finding message inside an example


@pytest.mark.usefixtures("facts")
def test_report_reads_the_database_without_writing_it(run_dir):
    db = run_dir / "run.sqlite"
    before = db.read_bytes()
    os.chmod(db, 0o444)
    try:
        build_report(run_dir)
    finally:
        os.chmod(db, 0o644)
    assert db.read_bytes() == before


@pytest.mark.usefixtures("facts")
def test_write_report_replaces_the_file_atomically(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    out.write_text("old report")
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        # the whole new report exists under a temporary name in the same folder before it takes the name
        assert Path(src).parent == out.parent and Path(src) != out
        assert Path(src).read_text(encoding="utf-8").rstrip().endswith("</html>")
        assert out.read_text() == "old report"
        replaced.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    write_report(run_dir, out)

    assert len(replaced) == 1 and Path(replaced[0][1]) == out
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


@pytest.mark.usefixtures("facts")
def test_failed_write_leaves_the_old_report_and_no_temp_file(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "report.html"
    out.write_text("old report")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OotgenError, match="cannot write output: disk full; the previous file is unchanged"):
        write_report(run_dir, out)

    assert out.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_folder_without_a_run_is_a_user_error(tmp_path):
    with pytest.raises(OotgenError, match="no run database"):
        build_report(tmp_path)


def test_report_of_an_empty_run_says_so(tmp_path):
    from ootgen.store import RunStore

    store = RunStore.open_run_dir(tmp_path)
    store.close()
    text = _text(build_report(tmp_path))

    assert "No candidate has been scored yet." in text and "No API call failed." in text
