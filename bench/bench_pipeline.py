"""Pipeline benchmarks against the fake Anthropic API (tests/fake_anthropic), driven by the real SDK.

* throughput: `ootgen run` (the real CLI, in a subprocess) against a fake with fixed latency L and a
  server-side concurrency cap K in queue mode; API calls completed per second vs the ideal K / L, read
  from the fake's request log (whole run, and steady state without the first call of each context,
  which the scheduler serialises on purpose to write the context's prompt-cache prefix).
* cost: API calls and billed input tokens per accepted example for ootgen (the naive baseline it is
  compared with is bench/naive_baseline.py, an independent script).

`python bench/bench_pipeline.py {throughput,cost} [...]` prints JSON; bench/run_all.py
imports these functions and prints the table. Benchmarks print ratios measured in one run; they are
not tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_anthropic import FakeAnthropic  # noqa: E402

FAKE_KEY = "bench-key"
SCRUBBED = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_PROFILE")
DEFAULT_CONFIG = "configs/default.yaml"
# The fake's OotResponder: this share of generated examples is deliberately wrong (unknown function or
# old `globalCtx` naming), so static L1 and the judge have something to reject, as with a real model.
BAD_FRACTION = 0.1
CACHE_MIN_TOKENS = 1024  # the real API does not cache shorter prefixes


# --- the fake and the CLI ------------------------------------------------------------------------


def start_fake(*, latency_ms: float = 0, concurrency: int | None = None, mode: str = "queue",
               bad_fraction: float = BAD_FRACTION, seed: int = 0) -> FakeAnthropic:
    from tests.fake_anthropic.oot_responder import OotResponder

    fake = FakeAnthropic(api_key=FAKE_KEY, latency_ms=latency_ms, concurrency_limit=concurrency, concurrency_mode=mode,
                         cache_min_tokens=CACHE_MIN_TOKENS)
    fake.set_responder(OotResponder(bad_fraction=bad_fraction, seed=seed))
    return fake.start()


def ootgen_command() -> list[str]:
    """The installed console script when present (as a user runs it), else the module."""
    script = shutil.which("ootgen", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from ootgen.cli import main; main()"]


def clean_env(*, code: Path = ROOT, **extra: str) -> dict:
    """The environment without any key, with `code` (this checkout, or another commit's tree) first on the path."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def run_ootgen(fake: FakeAnthropic, *, num_examples: int, concurrency: int, workdir: Path,
               config: str = DEFAULT_CONFIG, overrides: tuple[str, ...] = (), timeout: float = 600,
               code: Path = ROOT) -> dict:
    """`ootgen run` in a subprocess against `fake`, with an empty response cache; returns metadata and timings.
    `code`: the ootgen tree to run (another commit's, extracted by bench/bench_run.py's reference rows)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = clean_env(code=code, ANTHROPIC_API_KEY=FAKE_KEY, ANTHROPIC_BASE_URL=fake.base_url, XDG_CACHE_HOME=str(workdir / "xdg-cache"))
    args = [*ootgen_command(), "run", config, "--num-examples", str(num_examples), "--concurrency", str(concurrency),
            "--no-cache", "--progress", "json", "--output", str(workdir / "out.jsonl"), "--run-dir", str(workdir / "run")]
    for item in overrides:
        args += ["--set", item]
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=code, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - started
    metadata_path = workdir / "out_metadata.json"
    metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
    events = []
    for line in proc.stderr.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    return {"rc": proc.returncode, "wall_seconds": wall, "metadata": metadata, "stdout": proc.stdout,
            "stderr_tail": "\n".join(ln for ln in proc.stderr.splitlines() if not ln.startswith("{"))[-2000:],
            "events": events}


# --- throughput from the fake's request log -------------------------------------------------------


def _system_text(body: dict) -> str:
    system = (body or {}).get("system")
    if isinstance(system, list):
        return "\n".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in system)
    return str(system or "")


def throughput_from_log(log: list[dict], concurrency: int, latency_ms: float) -> dict:
    """Calls/s vs the ideal K / L, over the whole run and in steady state.

    Steady state = completions per second in the middle 80 % of the run's time window: it leaves out the
    warm-up (one call per context until its cache prefix is written) and the tail (the last judge calls
    once generation has stopped), and counts every call that completes inside the window.
    """
    calls = [e for e in log if e["path"] == "/v1/messages" and e["method"] == "POST" and e["status"] == 200]
    if not calls:
        return {"calls": 0}
    ideal = concurrency / (latency_ms / 1000.0)
    prefixes = {hashlib.sha256(_system_text(e["body"]).encode()).hexdigest() for e in calls}
    start, end = min(e["start"] for e in calls), max(e["end"] for e in calls)
    all_window = end - start
    all_rate = len(calls) / all_window if all_window > 0 else 0.0
    low, high = start + 0.1 * all_window, end - 0.1 * all_window
    steady = [e for e in calls if low <= e["end"] <= high]
    steady_window = high - low
    steady_rate = len(steady) / steady_window if steady_window > 0 else 0.0
    # Busy share: time-averaged calls in service (admitted, i.e. not queued at the fake) over K, whole run.
    service = sum(e["end"] - e["start"] for e in calls)
    return {
        "calls": len(calls), "contexts": len(prefixes), "ideal_per_s": ideal,
        "all_per_s": all_rate, "all_window_s": all_window, "all_fraction": all_rate / ideal,
        "steady_calls": len(steady), "steady_per_s": steady_rate, "steady_window_s": steady_window,
        "steady_fraction": steady_rate / ideal if steady else 0.0,
        "mean_in_flight": service / all_window if all_window else 0.0,
        "non_200": sum(1 for e in log if e["path"] == "/v1/messages" and e["status"] != 200),
    }


def _ootgen_against_fake(*, num_examples: int, concurrency: int, latency_ms: float, config: str,
                         overrides: tuple[str, ...]) -> tuple[dict, list[dict], int]:
    """One `ootgen run` against a fresh fake: (run record, the fake's request log, its peak concurrency)."""
    with tempfile.TemporaryDirectory(prefix="ootgen-bench-") as tmp, \
            _closing(start_fake(latency_ms=latency_ms, concurrency=concurrency, mode="queue")) as fake:
        run = run_ootgen(fake, num_examples=num_examples, concurrency=concurrency, workdir=Path(tmp),
                         config=config, overrides=overrides)
        return run, list(fake.log), fake.max_concurrency_seen


def bench_throughput(*, num_examples: int = 60, concurrency: int = 8, latency_ms: float = 300,
                     config: str = DEFAULT_CONFIG, overrides: tuple[str, ...] = ()) -> dict:
    run, log, peak = _ootgen_against_fake(num_examples=num_examples, concurrency=concurrency, latency_ms=latency_ms,
                                          config=config, overrides=overrides)
    result = throughput_from_log(log, concurrency, latency_ms)
    result.update(_run_summary(run), max_concurrency_seen=peak, latency_ms=latency_ms, concurrency=concurrency)
    result["wall_per_s"] = result["calls"] / run["wall_seconds"] if run["wall_seconds"] else 0.0
    return result


# --- cost: ootgen's calls and billed tokens ---------------------------------------------------------------


def billed_input(usage: dict) -> float:
    """Input tokens as billed: cache writes at 1.25x, cache reads at 0.1x."""
    return (usage.get("input_tokens", 0) + 1.25 * usage.get("cache_creation_input_tokens", 0)
            + 0.1 * usage.get("cache_read_input_tokens", 0))


def _run_summary(run: dict) -> dict:
    meta = run["metadata"]
    tokens = meta.get("tokens") or {}
    calls = (meta.get("api") or {}).get("calls") or {}
    total_calls = sum(calls.values()) if isinstance(calls, dict) else int(calls or 0)
    accepted = meta.get("total_examples") or 0
    read, write, plain = (tokens.get("cache_read_input_tokens", 0), tokens.get("cache_creation_input_tokens", 0),
                          tokens.get("input_tokens", 0))
    all_input = plain + write + read
    return {
        "rc": run["rc"], "wall_seconds": run["wall_seconds"], "accepted": accepted, "api_calls": total_calls,
        "calls_by_kind": calls, "calls_per_accepted": total_calls / accepted if accepted else None,
        "candidates": meta.get("candidates"), "rejection_reasons": meta.get("rejection_reasons"),
        "tokens": tokens, "cache_read_share": read / all_input if all_input else None,
        "billed_input_per_accepted": billed_input(tokens) / accepted if accepted else None,
        "duration_seconds": meta.get("duration_seconds"),
        "call_events": sum(1 for e in run["events"] if e.get("event", e.get("type")) == "call"),
        "stderr_tail": run["stderr_tail"] if run["rc"] else "",
        "summary_line": run["stdout"].strip().splitlines()[0] if run["stdout"].strip() else "",
    }


def bench_ootgen_cost(*, num_examples: int = 200, concurrency: int = 8, latency_ms: float = 0,
                      config: str = DEFAULT_CONFIG, overrides: tuple[str, ...] = ()) -> dict:
    run, log, _ = _ootgen_against_fake(num_examples=num_examples, concurrency=concurrency, latency_ms=latency_ms,
                                       config=config, overrides=overrides)
    result = _run_summary(run)
    result["fake_calls"] = sum(1 for e in log if e["path"] == "/v1/messages")
    return result


class _closing:
    def __init__(self, fake: FakeAnthropic):
        self.fake = fake

    def __enter__(self) -> FakeAnthropic:
        return self.fake

    def __exit__(self, *exc) -> None:
        self.fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["throughput", "cost"])
    parser.add_argument("--n", type=int, default=None, help="accepted examples wanted")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=None)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    args = parser.parse_args()
    common = {"config": args.config, "overrides": tuple(args.overrides)}
    if args.what == "throughput":
        result = bench_throughput(num_examples=args.n or 60, concurrency=args.concurrency,
                                  latency_ms=args.latency_ms if args.latency_ms is not None else 300, **common)
    else:
        result = bench_ootgen_cost(num_examples=args.n or 200, concurrency=args.concurrency, latency_ms=args.latency_ms or 0, **common)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
