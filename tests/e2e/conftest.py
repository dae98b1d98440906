"""Helpers for the end-to-end tests: `ootgen run` against the fake Anthropic server, as a subprocess or in process.

Nothing here patches the SDK: the CLI builds its own client from ANTHROPIC_BASE_URL and the key.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, clean_env, ootgen_command
from tests.fake_anthropic import FakeAnthropic
from tests.forked_cli import ForkedProcess, start_forked

TEST_KEY = "test-key"
MESSAGES = "/v1/messages"


@pytest.fixture(scope="session")
def default_preset_is_complete() -> bool:
    """Whether the built-in default.yaml loads (its example types may still be in the works)."""
    from ootgen.errors import OotgenError
    from ootgen.load import load_project

    try:
        load_project(str(REPO / "configs" / "default.yaml"), ())
    except OotgenError:
        return False
    return True


@pytest.fixture
def preset(project_dir: Path, default_preset_is_complete: bool) -> Path:
    """The copied default preset, or (while types are missing) a sibling whose `mix` names only existing types."""
    default = project_dir / "configs" / "default.yaml"
    if default_preset_is_complete:
        return default
    data = yaml.safe_load(default.read_text())
    existing = sorted(p.stem for p in (project_dir / "configs" / "types").glob("*.yaml"))
    data["mix"] = {name: 1.0 for name in existing}
    path = default.with_name("e2e.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class Cli:
    """Runs `ootgen run` in a project folder against one fake server, with a per-test response cache."""

    project: Path
    preset: Path
    fake: FakeAnthropic
    key: str = TEST_KEY
    cache_home: Path = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.cache_home is None:
            self.cache_home = self.project / "cache"

    def env(self, key: str | None = None, **extra: str) -> dict:
        values = {"ANTHROPIC_BASE_URL": self.fake.base_url, "XDG_CACHE_HOME": str(self.cache_home),
                  "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
        key = self.key if key is None else key
        if key:
            values["ANTHROPIC_API_KEY"] = key
        values.update(extra)
        return clean_env(**values)

    def args(self, *args: str, output: str = "out/data.jsonl", num: int | None = 8, progress: str = "json") -> list[str]:
        base = [*ootgen_command(), "run", str(self.preset), "--output", output, "--progress", progress]
        if num is not None:
            base += ["--num-examples", str(num)]
        return [*base, *args]

    def run(self, *args: str, key: str | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.args(*args, **kw), cwd=self.project, env=self.env(key), capture_output=True,
                              text=True, timeout=timeout)

    def run_in_process(self, *args: str, key: str | None = None, **kw) -> subprocess.CompletedProcess:
        """The same `ootgen run` command line as `run`, executed by this test process (see `in_process`)."""
        return in_process(self.args(*args, **kw)[len(ootgen_command()):], cwd=self.project, env=self.env(key))

    def popen(self, *args: str, key: str | None = None, **kw) -> ForkedProcess:
        """The same command line as `run`, started in its own process, for tests that SIGKILL it: a child forked
        from a server with ootgen and the SDK imported (tests/forked_cli.py), so each kill trial does not pay
        the interpreter start and the SDK import."""
        return start_forked(self.args(*args, **kw)[len(ootgen_command()):], cwd=self.project, env=self.env(key))

    def outputs(self, output: str = "out/data.jsonl") -> Outputs:
        return Outputs(self.project / output)


def in_process(argv: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`ootgen ARGV` run by this process: the click command behind the console script, with `env` as the whole
    environment and `cwd` as the working directory for the call, and its stdout, stderr and exit status captured.

    For tests of library behaviour (budget, resume, quotas, export, batch): the run still builds its own SDK
    client and talks to the fake over HTTP, but the SDK import (~2.5 CPU-s per process) is paid once per pytest
    worker. Start-up, signals and kills need a real process: `Cli.run` and `Cli.popen`.
    """
    from ootgen.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(stdout), redirect_stderr(stderr):
        for name in set(os.environ) - set(env):
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        status = 0
        try:
            main.main(args=argv, prog_name="ootgen")
        except SystemExit as stop:  # the command group ends every command with sys.exit
            status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        except Exception:  # what the interpreter does with an uncaught exception: traceback, exit 1
            traceback.print_exc()
            status = 1
    return subprocess.CompletedProcess(["ootgen", *argv], status, stdout.getvalue(), stderr.getvalue())


@dataclass
class Outputs:
    dataset: Path

    @property
    def stem(self) -> str:
        return self.dataset.stem

    @property
    def metadata_path(self) -> Path:
        return self.dataset.with_name(f"{self.stem}_metadata.json")

    @property
    def rejected_path(self) -> Path:
        return self.dataset.with_name(f"{self.stem}_rejected.jsonl")

    @property
    def run_dir(self) -> Path:
        return self.dataset.with_name(f"{self.stem}.run")

    def lines(self) -> list[dict]:
        return read_jsonl(self.dataset)

    def rejected(self) -> list[dict]:
        return read_jsonl(self.rejected_path)

    def metadata(self) -> dict:
        return json.loads(self.metadata_path.read_text())

    def db(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return query(self.run_dir / "run.sqlite", sql, params)


def wait_for(predicate, what: str, timeout: float = 60.0, poll: float = 0.02) -> None:
    """Wait until `predicate()` holds (observable state: the fake's log, the run store), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)


def read_jsonl(path: Path) -> list[dict]:
    text = Path(path).read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path} does not end with a newline"
    return [json.loads(line) for line in text.splitlines()]


def query(db_path: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    db = sqlite3.connect(str(db_path), timeout=30)
    db.row_factory = sqlite3.Row
    try:
        return list(db.execute(sql, params))
    finally:
        db.close()


def events(stderr: str) -> list[dict]:
    """The `--progress json` events on stderr (other lines, e.g. warnings, are skipped)."""
    out = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def posts(fake: FakeAnthropic, since: int = 0) -> list[dict]:
    """POST /v1/messages log entries with seq > since. A request whose body never fully arrived (the client
    was killed while sending it) has no body: it was never answered, so nothing was paid for it."""
    return [e for e in fake.requests(MESSAGES, "POST") if e["seq"] > since and e.get("body") is not None]


def billed_usd(fake: FakeAnthropic) -> float:
    """Dollars the fake billed: its billed tokens per model at configs/models.yaml prices."""
    from ootgen.models import Usage, load_model_table

    table = load_model_table(REPO / "configs" / "models.yaml")
    return sum(table.resolve(model).cost(Usage(**tokens)) or 0.0 for model, tokens in fake.billed_usage().items())


def body_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def schema_title(body: dict) -> str | None:
    fmt = ((body or {}).get("output_config") or {}).get("format") or {}
    return (fmt.get("schema") or {}).get("title")


def kind_of(body: dict) -> str:
    """generate or judge, from the reply schema the request asks for."""
    return {"generation_reply": "generate", "judge_reply": "judge"}[schema_title(body)]


def request_key(body: dict, attempt: int = 0) -> str:
    """The run store's key of the request that produced `body` (ootgen's own hashing, from the wire fields)."""
    from ootgen.generate import Request

    output_config = body.get("output_config") or {}
    system = [block["text"] for block in body["system"]]  # context, [rules,] instructions
    return Request(
        kind=kind_of(body), model=body["model"], system=system[0],
        instructions=system[-1] if len(system) > 1 else "", rules=system[1] if len(system) > 2 else "",
        user=body["messages"][0]["content"], max_tokens=body["max_tokens"], schema_name=schema_title(body),
        structured="format" in output_config, effort=output_config.get("effort"),
        temperature=body.get("temperature"), attempt=attempt,
        items=len(re.findall(r"<candidate index=", body["messages"][0]["content"])) if kind_of(body) == "judge" else None,
    ).key


def request_text(body: dict) -> str:
    from tests.fake_anthropic.server import prompt_text

    return prompt_text(body)


def tree_bytes(*roots: Path) -> dict[Path, bytes]:
    """Every file under the roots (binary), for secret scans."""
    files = {}
    for root in roots:
        if root.is_file():
            files[root] = root.read_bytes()
        elif root.is_dir():
            for path in root.rglob("*"):
                if path.is_file():
                    files[path] = path.read_bytes()
    return files


@pytest.fixture
def oot_fake():
    """A fake server answering ootgen's generation and judge requests realistically."""
    with FakeAnthropic(api_key=TEST_KEY, responder="oot") as fake:
        yield fake


@pytest.fixture
def cli(project_dir: Path, preset: Path, oot_fake: FakeAnthropic) -> Cli:
    return Cli(project_dir, preset, oot_fake)
