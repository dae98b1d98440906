"""Memory and wall time of whole runs at growing sizes, against the fake API with no latency.

    python bench/bench_scale.py [--sizes 1000,20000,100000] [--batch] [--no-dedup] [--concurrency 16]

For each size N: `ootgen run --num-examples N` in a subprocess (the real CLI) against a fake API server
that runs in its own process (so the fake's request log does not count), peak RSS of the ootgen process
from wait4(), wall time; then the slope of peak RSS per example between the smallest and largest size,
and the time a resume of the largest run takes to send its first new request:
- streaming: after the largest run ends, the same command with `--num-examples` raised to 20 more than the
  store holds accepted, on the same run directory;
- --batch: the largest run is killed (SIGKILL) right after it creates a batch once half its target is
  accepted, and the same command resumes it (its first request is a poll of a stored batch or a new batch);
  the fake counts batch creations before and after, and the store's batches must hold every custom id once
  (a stored batch is never re-submitted). That run's RSS row is the larger of its two sessions.
Each first-request time also gives the ootgen process's CPU seconds by then (from /proc), which other jobs on
the machine do not inflate. Prints `ROW name | measured | target | verdict` lines for bench/run_all.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import bench_pipeline as bp  # noqa: E402

TARGET_SLOPE_KB = 1.0
TARGET_100K_MB = 300.0
TARGET_RESUME_S = 10.0


def start_fake_process(batch: bool) -> tuple[subprocess.Popen, str]:
    # The fake keeps no request bodies (log_bodies, batch_keep_requests): its own memory stays small at 100k.
    config = {"responder": "oot", "api_key": bp.FAKE_KEY, "batch_complete_after_polls": 1, "log_bodies": False,
              "batch_keep_requests": False}
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_anthropic", "--port", "0", "--config", json.dumps(config)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=bp.clean_env())
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def batch_creations(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/_fake/log?bodies=0") as response:
        return sum(1 for e in json.load(response)["requests"] if e["method"] == "POST" and e["path"] == "/v1/messages/batches")


def stored_accepted(db_path: Path) -> int:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM candidates WHERE status='accepted'").fetchone()[0]


def stored_batches(db_path: Path) -> tuple[set[str], int, int]:
    """(ids of batches in flight, custom ids (request keys) over every stored batch, distinct ones among them)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        open_ids = {row[0] for row in db.execute("SELECT id FROM batches WHERE status='in_progress'")}
        keys = [entry["key"]
                for (entries,) in db.execute("SELECT request_keys FROM batches WHERE status!='creating'")
                for entry in json.loads(entries)]
    return open_ids, len(keys), len(set(keys))


def run_once(base_url: str, workdir: Path, n: int, *, batch: bool, dedup: bool, concurrency: int,
             log_dir: Path | None, kill_midway: bool = False) -> dict:
    env = bp.clean_env(ANTHROPIC_API_KEY=bp.FAKE_KEY, ANTHROPIC_BASE_URL=base_url, XDG_CACHE_HOME=str(workdir / "xdg"))
    args = [*bp.ootgen_command(), "run", bp.DEFAULT_CONFIG, "--num-examples", str(n), "--concurrency", str(concurrency),
            "--no-cache", "--progress", "json", "--output", str(workdir / "out.jsonl"), "--run-dir", str(workdir / "run"),
            "--set", f"dedup.enabled={'true' if dedup else 'false'}"]
    if batch:
        args += ["--batch", "--batch-poll", "0.05"]
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first_call = first_call_cpu = None
    killed = False
    assert proc.stderr is not None
    # JSON progress events: the first request sent is the first `call` (streaming), or a batch created or polled.
    # --log-dir: each session's progress events (one file a session), to follow a long run or see where it went.
    log = open(log_dir / f"{workdir.name}-{time.strftime('%H%M%S')}.jsonl", "w") if log_dir else None  # noqa: SIM115
    for line in proc.stderr:
        if log is not None:
            log.write(line)
            log.flush()
        if first_call is None and any(f'"event": "{e}"' in line for e in ("call", "batch_created", "batch_poll")):
            first_call = time.perf_counter() - started
            first_call_cpu = cpu_seconds(proc.pid)
        if kill_midway and not killed and '"event": "batch_created"' in line \
                and stored_accepted(workdir / "run" / "run.sqlite") >= n // 2:
            proc.kill()
            killed = True
    _, status, usage = os.wait4(proc.pid, 0)
    if log is not None:
        log.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"n": n, "rc": proc.returncode, "wall_s": time.perf_counter() - started, "first_call_s": first_call,
            "first_call_cpu_s": first_call_cpu, "peak_rss_mb": usage.ru_maxrss / 1024, "killed": killed}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process so far (/proc, its threads included): the part of a wall
    time the process itself spent computing, which a busy machine does not inflate the way it inflates wall time."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def print_configuration(mode: str, options: dict) -> None:
    """The run settings the rows below were measured with: the preset's defaults plus this script's flags."""
    from ootgen.load import load_project

    config = load_project(ROOT / bp.DEFAULT_CONFIG).config
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    print(f"CONFIG {mode}, {bp.DEFAULT_CONFIG} defaults: generation.examples_per_call={config.generation.examples_per_call}, "
          f"judge.candidates_per_call={config.judge.candidates_per_call}, --concurrency {options['concurrency']}, "
          f"dedup.enabled={options['dedup']} (near_threshold {config.dedup.near_threshold}, num_perm {config.dedup.num_perm}), "
          f"batch.max_requests={config.batch.max_requests}, batch.max_bytes={config.batch.max_bytes}, "
          f"batch.wave_requests={config.batch.wave_requests}, batch.first_requests={config.batch.first_requests}; fake: OotResponder, no latency, own process; "
          f"commit {commit or 'unknown'}", flush=True)


def _seconds(value: float | None, cpu: float | None = None) -> str:
    if value is None:
        return "no request"
    return f"{value:.1f} s" + (f" ({cpu:.1f} s CPU)" if cpu is not None else "")


def batch_kill_and_resume(base_url: str, workdir: Path, n: int, options: dict) -> tuple[dict, dict]:
    """The largest batch run, killed once half its target is accepted and resumed: (resumed session, whole run)."""
    db_path = workdir / "run" / "run.sqlite"
    first = run_once(base_url, workdir, n, kill_midway=True, **options)
    in_flight, _, _ = stored_batches(db_path)
    accepted_at_kill = stored_accepted(db_path)
    creates_before = batch_creations(base_url)
    resumed = run_once(base_url, workdir, n, **options)
    _, keys, distinct = stored_batches(db_path)
    creates_after = batch_creations(base_url) - creates_before
    collected = in_flight - stored_batches(db_path)[0]
    verdict = "ok" if first["killed"] and keys == distinct and collected == in_flight else "MISS"
    print(f"ROW batch kill at {accepted_at_kill:,} accepted of {n:,}, then resume | killed: {first['killed']}; "
          f"{len(in_flight)} batches in flight at the kill, {len(collected)} of them collected after the restart; "
          f"{creates_before} batches created before the kill, {creates_after} after; {keys:,} custom ids in stored "
          f"batches, {distinct:,} distinct | every custom id in one batch only | {verdict}", flush=True)
    whole = {"n": n, "rc": resumed["rc"], "wall_s": first["wall_s"] + resumed["wall_s"], "first_call_s": first["first_call_s"],
             "first_call_cpu_s": first["first_call_cpu_s"],
             "peak_rss_mb": max(first["peak_rss_mb"], resumed["peak_rss_mb"]),
             "note": " (killed midway and resumed: larger session's RSS, both sessions' wall)"}
    return resumed, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,20000,100000")
    parser.add_argument("--batch", action="store_true")
    parser.add_argument("--no-dedup", action="store_true")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--log-dir", type=Path, help="write each session's JSON progress events there")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    mode = "batch" if args.batch else "streaming"
    results = []
    print_configuration(mode, options := {"batch": args.batch, "dedup": not args.no_dedup, "concurrency": args.concurrency})
    options["log_dir"] = args.log_dir
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    fake, base_url = start_fake_process(args.batch)
    try:
        with tempfile.TemporaryDirectory(prefix="ootgen-scale-") as tmp:
            for n in sizes:
                workdir = Path(tmp) / str(n)
                db_path = workdir / "run" / "run.sqlite"
                if args.batch and n == sizes[-1]:
                    resumed, result = batch_kill_and_resume(base_url, workdir, n, options)
                else:
                    result = run_once(base_url, workdir, n, **options)
                results.append(result)
                print(f"ROW {mode} run of {n:,} examples{result.get('note', '')} | {result['peak_rss_mb']:.0f} MB peak RSS, "
                      f"{result['wall_s']:.0f} s wall (rc {result['rc']}, {stored_accepted(db_path):,} accepted; first request "
                      f"{_seconds(result['first_call_s'], result['first_call_cpu_s'])} after start) | | info",
                      flush=True)
            largest = results[-1]
            if not args.batch:
                # Resume asking for 20 more than the store already holds accepted (a run ends with some surplus).
                held = stored_accepted(db_path)
                resumed = run_once(base_url, workdir, max(largest["n"], held) + 20, **options)
    finally:
        fake.terminate()
        fake.wait()
    if len(results) >= 2:
        first, last = results[0], results[-1]
        slope_kb = (last["peak_rss_mb"] - first["peak_rss_mb"]) * 1024 / (last["n"] - first["n"])
        verdict = "ok" if slope_kb <= TARGET_SLOPE_KB else "MISS"
        print(f"ROW {mode} peak RSS slope, {first['n']:,} to {last['n']:,} examples | {slope_kb:.2f} KB/example "
              f"| <= {TARGET_SLOPE_KB} KB | {verdict}")
    if largest["n"] >= 100_000:
        verdict = "ok" if largest["peak_rss_mb"] <= TARGET_100K_MB else "MISS"
        print(f"ROW {mode} run of {largest['n']:,} examples, peak RSS | {largest['peak_rss_mb']:.0f} MB "
              f"| <= {TARGET_100K_MB:.0f} MB | {verdict}")
    first_call = resumed["first_call_s"]
    verdict = "n/a" if first_call is None else ("ok" if first_call <= TARGET_RESUME_S else "MISS")
    shown = _seconds(first_call, resumed["first_call_cpu_s"])
    print(f"ROW {mode} resume of the {largest['n']:,}-example run to its first new request | {shown} "
          f"| <= {TARGET_RESUME_S:.0f} s | {verdict}")


if __name__ == "__main__":
    main()
