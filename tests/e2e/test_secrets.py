"""The API key never leaves the request headers: not in files, output, cache, logs or request bodies."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import ootgen_command
from tests.e2e.conftest import Cli, posts, tree_bytes
from tests.fake_anthropic import FakeAnthropic

SECRET = "sk-ant-test-SECRET-123"


def _leaks(secret: str, *texts: str, roots: tuple[Path, ...] = ()) -> list[str]:
    needle = secret.encode()
    found = [f"text #{i}" for i, text in enumerate(texts) if secret in text]
    found += [str(path) for path, data in tree_bytes(*roots).items() if needle in data]
    return found


def test_key_appears_only_in_request_headers(project_dir: Path, preset: Path):
    with FakeAnthropic(api_key=SECRET, responder="oot") as fake:
        cli = Cli(project_dir, preset, fake, key=SECRET)
        result = cli.run(num=6)  # key from ANTHROPIC_API_KEY, progress as JSON events
        assert result.returncode == 0, result.stderr
        out = cli.outputs()
        assert out.run_dir.is_dir() and (cli.cache_home / "ootgen").is_dir()
        sent = posts(fake)
    assert sent and all(e["status"] == 200 for e in sent), "the key was not accepted"
    assert all(e["auth"] in ("x-api-key", "bearer", "both") for e in sent)
    assert not any(e["key_in_body"] for e in fake.log)
    roots = (out.run_dir, out.dataset.parent, cli.cache_home, project_dir)
    assert _leaks(SECRET, result.stdout, result.stderr, roots=roots) == []


def test_rejected_key_is_not_echoed(project_dir: Path, preset: Path):
    with FakeAnthropic(api_key="another-key", responder="oot") as fake:
        cli = Cli(project_dir, preset, fake, key="")
        result = cli.run("--api-key", SECRET, num=6)
    assert result.returncode != 0
    assert "401" in result.stderr
    out = cli.outputs()
    assert not any(e["key_in_body"] for e in fake.log)
    assert _leaks(SECRET, result.stdout, result.stderr, roots=(out.dataset.parent, cli.cache_home)) == []


def test_no_repr_log_or_error_of_a_run_contains_the_key(project_dir: Path, preset: Path, tmp_path: Path):
    import dataclasses

    from ootgen.generate import AdaptiveLimiter, ClaudeClient
    from ootgen.run import RunOptions

    options = RunOptions(api_key=SECRET, run_dir=tmp_path / "run", output=tmp_path / "out.jsonl", num_examples=3)
    assert SECRET not in repr(options) and SECRET not in str(options)
    assert SECRET not in repr(dataclasses.replace(options, batch=True))
    client = ClaudeClient(SECRET, limiter=AdaptiveLimiter(2), base_url="http://127.0.0.1:9")
    assert SECRET not in repr(client)

    # A run that fails on the API side (400 on every generation call) and one with transport faults:
    # neither the error line, the JSON event log, the report nor any file holds the key.
    with FakeAnthropic(api_key=SECRET, responder="oot") as fake:
        cli = Cli(project_dir, preset, fake, key=SECRET)
        fake.add_faults("api_error", "drop", "rate_limit")
        flaky = cli.run(num=3)
        fake.configure(api_key="a-different-key")
        refused = cli.run("--output", "out2/data.jsonl", "--no-cache", num=3)
        report = subprocess.run([*ootgen_command(), "report", str(cli.outputs().run_dir), "-o", str(project_dir / "report.html")],
                                env=cli.env(), capture_output=True, text=True, timeout=120)
    assert flaky.returncode == 0, flaky.stderr
    assert refused.returncode != 0 and "401" in refused.stderr
    assert report.returncode == 0, report.stderr
    assert (project_dir / "report.html").is_file()
    texts = [flaky.stdout, flaky.stderr, refused.stdout, refused.stderr, report.stdout, report.stderr]
    assert _leaks(SECRET, *texts, roots=(project_dir,)) == []
