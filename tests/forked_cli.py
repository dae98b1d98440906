"""`ootgen ARGV` in a child forked from a server process that imported ootgen's command modules once per pytest
worker (multiprocessing's forkserver): a real process with its own cwd, environment, stdout and stderr, optional
memory cap and exit status, without paying an interpreter start and the imports (~0.4 CPU-s) per command.

For many short offline commands (the bad-input cases) and the `ootgen run` processes that tests SIGKILL
(`start_forked`; the server has the SDK imported too, so a killed run costs no ~2.5 CPU-s import). The console
script started fresh, as a user runs it, is tested by the subprocess tests (tests/test_offline_cli.py, tests/e2e).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import resource
import signal
import subprocess
from pathlib import Path

_FORKSERVER = multiprocessing.get_context("forkserver")
_FORKSERVER.set_forkserver_preload([
    "tests.forked_cli", "ootgen.cli", "ootgen.load", "ootgen.offline", "ootgen.run", "ootgen.check", "ootgen.index",
    "ootgen.estimate", "ootgen.plan", "ootgen.render", "jsonschema", "anthropic", "ootgen.generate",
])


def _child(argv: list[str], cwd: str, env: dict[str, str], stdout: str, stderr: str, memory_cap: int | None) -> None:
    if memory_cap is not None:
        resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    from ootgen.cli import main

    # The command group ends with sys.exit; multiprocessing makes SystemExit the exit status, and an uncaught
    # exception a traceback on stderr and status 1, as the interpreter does.
    main.main(args=argv, prog_name="ootgen")


def run_forked(argv: list[str], *, cwd: Path, env: dict[str, str], out_dir: Path, timeout: float,
               memory_cap: int | None = None) -> subprocess.CompletedProcess:
    """Run `ootgen ARGV` in a forked child; fail if it does not finish in `timeout` seconds."""
    stdout, stderr = out_dir / "stdout", out_dir / "stderr"
    child = start_forked(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, memory_cap=memory_cap)
    try:
        status = child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        raise AssertionError(f"ootgen {argv[0]} ({len(argv) - 1} arguments) did not finish in {timeout} s") from None
    return subprocess.CompletedProcess(["ootgen", *argv], status, stdout.read_text(), stderr.read_text())


class ForkedProcess:
    """The part of subprocess.Popen's interface the kill tests use, for a child started by `start_forked`."""

    def __init__(self, process: multiprocessing.process.BaseProcess):
        self._process = process

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode  # -N when signal N ended it, as with Popen

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(["ootgen"], timeout or 0.0)
        return self._process.exitcode

    def send_signal(self, signum: int) -> None:
        """As Popen's: nothing once the child has ended (and was reaped), even if it ends just before the kill."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start_forked(argv: list[str], *, cwd: Path, env: dict[str, str], stdout: Path | None = None,
                 stderr: Path | None = None, memory_cap: int | None = None) -> ForkedProcess:
    """Start `ootgen ARGV` in a forked child (stdout and stderr into those files, else discarded); return at once."""
    child = _FORKSERVER.Process(target=_child, args=(argv, str(cwd), env, str(stdout or os.devnull),
                                                     str(stderr or os.devnull), memory_cap))
    child.start()
    return ForkedProcess(child)


def stop_server() -> None:
    """Stop and reap the fork server (multiprocessing has no public call for it): unreaped, it would outlive the
    pytest worker as an orphan, and the CPU time of every command it forked would be counted in no `time`."""
    multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
