"""Shared fixtures: a scrubbed environment for every test, the fake Anthropic API, and CLI helpers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fake_anthropic.fixtures import anthropic_env, fake_anthropic  # noqa: F401
from tests.forked_cli import stop_server

REPO = Path(__file__).resolve().parents[1]
SCRUBBED = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE")


def decomp_facts_dir() -> Path | None:
    """The decomp fact data (../shared/oot-decomp next to the repo, or $OOTGEN_DECOMP_FACTS), if present.

    No test reads any other path outside the repository.
    """
    env = os.environ.get("OOTGEN_DECOMP_FACTS")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "oot-decomp"]:
        if (candidate / "functions.json").is_file():
            return candidate
    return None


@pytest.fixture(scope="session", autouse=True)
def _fork_server_stopped_at_the_end():
    """The fork server of tests/forked_cli.py (started by the first forked command, if any) ends with the session."""
    yield
    stop_server()


@pytest.fixture(autouse=True)
def _scrub_anthropic_env(monkeypatch, tmp_path_factory):
    """No test may see a real key or reach a real endpoint; the response cache is per test."""
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))


def ootgen_command() -> list[str]:
    """The installed console script when present (as a user runs it), else the module."""
    script = shutil.which("ootgen", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from ootgen.cli import main; main()"]


def clean_env(**extra: str) -> dict:
    """The environment minus any Anthropic credentials; when ootgen is not installed (a bare checkout),
    the subprocess imports it from the repository."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    if not shutil.which("ootgen", path=str(Path(sys.executable).parent)):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*ootgen_command(), *args], cwd=cwd, env=env if env is not None else clean_env(),
        capture_output=True, text=True, timeout=timeout,
    )


def copy_project(root: Path) -> Path:
    """An editable copy of the built-in configs/, templates/, contexts/ and schemas/ in `root`."""
    for kind in ("configs", "templates", "contexts", "schemas"):
        shutil.copytree(REPO / kind, root / kind)
    return root


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.fixture(scope="session")
def ready_loaded_project(tmp_path_factory):
    """The loaded default project with every type defined, loaded once per worker: `Project` is frozen, and
    tests that only read it need not pay a load (~0.5 s of CPU) each."""
    from ootgen.load import load_project
    from tests.test_load import ready_project

    return load_project(ready_project(copy_project(tmp_path_factory.mktemp("ready-project"))))
