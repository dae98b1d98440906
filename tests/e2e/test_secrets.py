"""The API key never leaves the request headers: not in files, output, cache, logs or request bodies."""

from __future__ import annotations

from pathlib import Path

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
