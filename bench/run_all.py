"""Every ootgen benchmark in one run, printed as one table with the machine and the date.

    python bench/run_all.py [--quick] [--config configs/default.yaml] [--set KEY.PATH=VALUE ...] [--json FILE]

1. throughput of `ootgen run` against the fake API (latency L, server cap K, queue mode) vs ideal K / L;
2. API calls per accepted example, ootgen and a naive design (bench/bench_pipeline.py);
3. prompt cache: cache-read share of input tokens, billed input tokens per accepted example vs naive;
4. static L1 answers/s on one core and what it rejects (bench/bench_static.py);
5. dedup of 100k examples (20k with --quick): seconds and peak RSS (bench/bench_dedup.py);
6. `ootgen --help` and `ootgen validate` wall time;
7. the compiler layer on a decomp checkout (bench/bench_compile.py, with --decomp DIR);
8. whole runs at 1k/20k/100k examples: peak RSS, slope, resume (bench/bench_scale.py).

Every row comes from this one run; a bench script that fails or prints no row is an ERROR row and the
exit status is 1.

Numbers are ratios measured in one run on this machine; they are benchmarks, not tests. A full run
takes a few minutes, --quick under two.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))
sys.dont_write_bytecode = True  # no bench/__pycache__ in the work tree

import bench_pipeline as bp  # noqa: E402

LATENCY_MS = 300
CONCURRENCY = 8
TARGET_THROUGHPUT = 0.9  # fraction of K / L
TARGET_CALLS_PER_EXAMPLE = 1.2
TARGET_CACHE_SHARE = 0.70
TARGET_BILLED_VS_NAIVE = 1 / 3
TARGET_STATIC = 2000.0
TARGET_DEDUP_SECONDS = 60.0
TARGET_DEDUP_RSS_MB = 300.0
TARGET_HELP_SECONDS = 0.3


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []
        self.notes: list[str] = []

    def add(self, name: str, measured: str, target: str = "", verdict: str = "") -> None:
        self.rows.append((name, measured, target, verdict))
        print(f"  .. {name}: {measured}  {verdict}", file=sys.stderr, flush=True)

    def render(self) -> str:
        header = ("benchmark", "measured", "target", "ratio / verdict")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(4)]
        lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
                 "-|-".join("-" * w for w in widths)]
        lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in self.rows]
        return "\n".join(lines)


def at_least(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return f"{value / target:.2f} {'ok' if value >= target else 'MISS'}"


def at_most(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return f"{value / target:.2f} {'ok' if value <= target else 'MISS'}"


def machine() -> list[str]:
    uname = platform.uname()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    import anthropic

    return [
        f"date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine: {uname.system} {uname.release} {uname.machine}; nproc {cores}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}); anthropic {anthropic.__version__}",
        f"ootgen commit {commit or '?'} (work tree may hold uncommitted changes)",
    ]


def usable_overrides(config: str, overrides: tuple[str, ...], table: Table) -> tuple[str, ...]:
    """The user's overrides, plus a mix of the loadable types when the config names types that are missing."""
    from ootgen.errors import ConfigError
    from ootgen.load import load_project, load_run_config, load_types

    try:
        load_project(str(ROOT / config), overrides)
        return overrides
    except ConfigError as error:
        if "unknown example type" not in str(error):
            raise
        types = sorted(load_types(load_run_config(str(ROOT / config), overrides)))
        mix = "{" + ", ".join(f"{t}: 1.0" for t in types) + "}"
        table.notes.append(f"{config} does not load ({error}); benchmarked with --set 'mix={mix}'")
        return (*overrides, f"mix={mix}")


# --- 1 to 3: the pipeline against the fake API ---------------------------------------------------


def pipeline(table: Table, args, overrides: tuple[str, ...], results: dict) -> None:
    n_tp = 60 if args.quick else 400  # steady state needs a run long enough to leave warm-up and tail behind
    n_cache = 100 if args.quick else 200
    n_naive = 10 if args.quick else 30
    common = {"config": args.config, "overrides": overrides}

    tp = bp.bench_throughput(num_examples=n_tp, concurrency=CONCURRENCY, latency_ms=LATENCY_MS, **common)
    results["throughput"] = tp
    ideal = tp.get("ideal_per_s", CONCURRENCY / (LATENCY_MS / 1000))
    if tp.get("rc") or not tp.get("calls"):
        table.notes.append(f"throughput run failed (rc {tp.get('rc')}): {tp.get('stderr_tail')}")
    label = f"K={CONCURRENCY}, L={LATENCY_MS} ms, N={n_tp}"
    table.add(f"1 throughput, steady state ({label}; middle 80 % of the run)",
              f"{tp.get('steady_per_s', 0):.1f} calls/s = {tp.get('steady_fraction', 0):.2f} x K/L",
              f">= {TARGET_THROUGHPUT} x {ideal:.1f}/s", at_least(tp.get("steady_fraction"), TARGET_THROUGHPUT))
    table.add("1 throughput, whole run (incl. serialised first call per context)",
              f"{tp.get('all_per_s', 0):.1f} calls/s = {tp.get('all_fraction', 0):.2f} x K/L "
              f"({tp.get('calls', 0)} calls, {tp.get('contexts', 0)} contexts, {tp.get('all_window_s', 0):.1f} s)",
              f">= {TARGET_THROUGHPUT} x {ideal:.1f}/s", at_least(tp.get("all_fraction"), TARGET_THROUGHPUT))
    table.add("1 mean calls in service at the fake (whole run)",
              f"{tp.get('mean_in_flight', 0):.1f} of K={CONCURRENCY}; peak seen {tp.get('max_concurrency_seen')}", "", "info")
    table.add("1 ootgen process wall time (start-up to exit)",
              f"{tp.get('wall_seconds', 0):.1f} s (run {tp.get('duration_seconds')} s) for {tp.get('accepted')} accepted; "
              f"{tp.get('wall_per_s', 0):.1f} calls/s", "", "info")

    naive = naive_baseline(n_naive, sleep=args.naive_sleep)
    results["naive"] = naive
    cost = bp.bench_ootgen_cost(num_examples=n_cache, concurrency=CONCURRENCY, latency_ms=0, **common)
    results["ootgen_cost"] = cost
    if cost.get("rc"):
        table.notes.append(f"{n_cache}-example run failed (rc {cost.get('rc')}): {cost.get('stderr_tail')}")

    for name, run in ((f"N={n_tp}", tp), (f"N={n_cache}", cost)):
        calls = run.get("calls_by_kind") or {}
        table.add(f"2 API calls per accepted example, ootgen ({name})",
                  f"{_f(run.get('calls_per_accepted'))} ({run.get('api_calls')} calls: {calls.get('generate', 0)} gen + "
                  f"{calls.get('judge', 0)} judge / {run.get('accepted')} accepted)",
                  f"<= {TARGET_CALLS_PER_EXAMPLE}", at_most(run.get("calls_per_accepted"), TARGET_CALLS_PER_EXAMPLE))
    table.add(f"2 API calls per accepted example, naive baseline (N={n_naive}, bench/naive_baseline.py)",
              f"{_f(naive.get('calls_per_accepted'))} ({naive['api_calls']} calls: {naive['calls']['generate']} gen + "
              f"{naive['calls']['technical']} L1 + {naive['calls']['usefulness']} L2 / {naive['accepted']} accepted; "
              f"server counted {naive['fake_calls']})", "",
              _ratio("ootgen/naive", cost.get("calls_per_accepted"), naive.get("calls_per_accepted")))
    table.add(f"3 cache-read share of input tokens, ootgen (N={n_cache})",
              f"{_pct(cost.get('cache_read_share'))} (read {cost['tokens'].get('cache_read_input_tokens', 0):,}, "
              f"write {cost['tokens'].get('cache_creation_input_tokens', 0):,}, "
              f"uncached {cost['tokens'].get('input_tokens', 0):,})",
              f">= {TARGET_CACHE_SHARE:.0%}", at_least(cost.get("cache_read_share"), TARGET_CACHE_SHARE))
    ours, theirs = cost.get("billed_input_per_accepted"), naive.get("billed_input_per_accepted")
    table.add("3 billed input tokens per accepted example, ootgen vs naive",
              f"{_f(ours, 0)} vs {_f(theirs, 0)} = {_f(ours / theirs if ours and theirs else None, 3)}",
              f"<= {TARGET_BILLED_VS_NAIVE:.3f}", at_most(ours / theirs if ours and theirs else None, TARGET_BILLED_VS_NAIVE))
    table.notes.append(
        f"fake API: OotResponder with bad_fraction {bp.BAD_FRACTION} (wrong function / old naming), cache_min_tokens "
        f"{bp.CACHE_MIN_TOKENS}, its judge verdicts read from each candidate block alone "
        f"(older trees' per-candidate 'Required in a good answer' lists stripped); billed input = input + 1.25 x cache_write + 0.1 x cache_read as the fake "
        f"billed them; naive baseline = bench/naive_baseline.py, an independent script doing what the original generator did "
        f"(one example per generation call, separate L1 and L2 calls, whole context in every request, no caching, "
        f"sequential with a {args.naive_sleep} s sleep; rejected {naive['rejected']}, failed {naive['failed']}, "
        f"{naive['seconds']:.0f} s); ootgen rejections (N={n_cache}): {cost.get('rejection_reasons')}")


def naive_baseline(num_examples: int, *, sleep: float) -> dict:
    """bench/naive_baseline.py in a subprocess against a fresh fake, with the server's own call count."""
    with bp._closing(bp.start_fake(latency_ms=0)) as fake:
        proc = subprocess.run([sys.executable, str(BENCH / "naive_baseline.py"), "--base-url", fake.base_url,
                               "--num-examples", str(num_examples), "--sleep", str(sleep)],
                              cwd=ROOT, env=bp.clean_env(NAIVE_KEY=bp.FAKE_KEY), capture_output=True, text=True,
                              timeout=1800)
        if proc.returncode:
            raise RuntimeError(f"naive_baseline.py failed: {proc.stderr[-300:]}")
        result = json.loads(proc.stdout)
        result["fake_calls"] = sum(1 for e in fake.log if e["path"] == "/v1/messages")
        return result


def _f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _ratio(label: str, a: float | None, b: float | None) -> str:
    return f"{label} {a / b:.2f}" if a and b else "n/a"


# --- 4: static L1 -----------------------------------------------------------------------------------


def _one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def script_rows(table: Table, label: str, args: list[str], results: dict, *, timeout: float = 1800,
                one_core: bool = False) -> None:
    """Run a bench script and add every `ROW name | measured | target | verdict` line it prints to the table.

    A script that fails or prints no ROW line adds an ERROR row (and run_all exits 1): never a silent fallback.
    """
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_one_core if one_core else None, env=bp.clean_env())
    results[label] = {"rc": proc.returncode, "stdout": proc.stdout, "stderr_tail": proc.stderr[-2000:]}
    rows = [line[4:].split(" | ") for line in proc.stdout.splitlines() if line.startswith("ROW ")]
    for row in rows:
        name, measured, target, verdict = (row + ["", "", ""])[:4]
        table.add(f"{label}: {name.strip()}", measured.strip(), target.strip(), verdict.strip())
    if proc.returncode or not rows:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        table.add(f"{label}: {' '.join(args)}", f"rc {proc.returncode}, {len(rows)} rows: {err[:160]}", "", "ERROR")


def static(table: Table, results: dict, decomp: str | None) -> None:
    # The real-decomp row needs the checkout too: without --decomp it prints "skipped" (it read only
    # $OOTGEN_DECOMP before, so `--decomp DIR` alone skipped it).
    script_rows(table, "4 static L1", [str(BENCH / "bench_static.py"), *(["--decomp", decomp] if decomp else [])], results,
                one_core=True, timeout=900)


# --- 5: dedup ---------------------------------------------------------------------------------------


def dedup(table: Table, quick: bool, results: dict) -> None:
    n = 20_000 if quick else 100_000
    proc = subprocess.run([sys.executable, str(BENCH / "bench_dedup.py"), "--n", str(n)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=bp.clean_env())
    results["dedup"] = proc.stdout

    def row(prefix: str) -> str | None:
        for line in proc.stdout.splitlines():
            if line.startswith(prefix):
                return line[len(prefix):].split()[0]
        return None

    seconds_text, rss_text = row("seconds (add over all)"), row("peak RSS MB")
    if proc.returncode or seconds_text is None or rss_text is None:
        table.add("5 dedup: bench/bench_dedup.py", f"rc {proc.returncode}: {proc.stderr[-200:]}", "", "ERROR")
        return
    seconds, rss = float(seconds_text), float(rss_text)
    table.add(f"5 dedup of {n:,} examples, seconds", f"{seconds:.1f} s", f"~{TARGET_DEDUP_SECONDS:.0f} s (<=)",
              at_most(seconds, TARGET_DEDUP_SECONDS))
    table.add(f"5 dedup of {n:,} examples, peak RSS", f"{rss:.0f} MB", f"<= {TARGET_DEDUP_RSS_MB:.0f} MB",
              at_most(rss, TARGET_DEDUP_RSS_MB))
    recall = next((ln for ln in proc.stdout.splitlines() if ln.startswith("near dups with true Jaccard")), None)
    if recall:
        results["dedup_recall_line"] = recall


# --- 7, 8: compiler layer and scale ------------------------------------------------------------------


def compile_layer(table: Table, args, results: dict) -> None:
    if not args.decomp:
        table.notes.append("compiler layer rows skipped: pass --decomp DIR (a zeldaret/oot checkout)")
        return
    script_rows(table, "7 compiler layer", [str(BENCH / "bench_compile.py"), "--decomp", args.decomp], results,
                one_core=True)


def scale(table: Table, args, results: dict) -> None:
    sizes = args.scale_sizes or ("500,2000" if args.quick else "1000,20000,100000")
    script_rows(table, "8 scale", [str(BENCH / "bench_scale.py"), "--sizes", sizes], results, timeout=7200)


# --- 6: CLI start-up ----------------------------------------------------------------------------------


def cli_times(table: Table, config: str, overrides: tuple[str, ...], results: dict) -> None:
    command = bp.ootgen_command()
    env = bp.clean_env()

    def timed(args: list[str], runs: int) -> tuple[float, int, str]:
        times, rc, err = [], 0, ""
        for _ in range(runs):
            started = time.perf_counter()
            proc = subprocess.run([*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
            times.append(time.perf_counter() - started)
            rc, err = proc.returncode, proc.stderr.strip()
        return statistics.median(times), rc, err

    help_s, help_rc, _ = timed(["--help"], 7)
    table.add(f"6 `ootgen --help` wall time, median of 7 ({Path(command[0]).name})", f"{help_s:.3f} s (rc {help_rc})",
              f"<= {TARGET_HELP_SECONDS} s", at_most(help_s, TARGET_HELP_SECONDS))
    plain_s, plain_rc, plain_err = timed(["validate", config], 3)
    table.add(f"6 `ootgen validate {config}`, median of 3", f"{plain_s:.3f} s (rc {plain_rc})", "", "info")
    if plain_rc:
        table.notes.append(f"`ootgen validate {config}` exits {plain_rc}: {plain_err.splitlines()[-1] if plain_err else ''}")
    if overrides:
        sets = [a for o in overrides for a in ("--set", o)]
        set_s, set_rc, _ = timed(["validate", config, *sets], 3)
        table.add("6 `ootgen validate` with the bench overrides, median of 3", f"{set_s:.3f} s (rc {set_rc})", "", "info")
    imports = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import anthropic"], env=env, capture_output=True, timeout=120)
        imports.append(time.perf_counter() - started)
    table.add("6 `python -c 'import anthropic'` (paid by every `ootgen run`), median of 3",
              f"{statistics.median(imports):.3f} s", "", "info")
    results["cli"] = {"help_s": help_s, "validate_s": plain_s, "validate_rc": plain_rc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller runs (~2 minutes)")
    parser.add_argument("--config", default=bp.DEFAULT_CONFIG, help="preset, relative to the repo [configs/default.yaml]")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="config override for every ootgen run; repeatable")
    parser.add_argument("--naive-sleep", type=float, default=1.0,
                        help="the naive baseline's pause after each request, as the original script [1.0 s]")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the raw results here")
    parser.add_argument("--skip", action="append", default=[], choices=["pipeline", "static", "dedup", "cli", "compile", "scale"])
    parser.add_argument("--decomp", default=None, help="a zeldaret/oot checkout for the compiler-layer rows")
    parser.add_argument("--scale-sizes", default=None,
                        help="run sizes for bench_scale.py [1000,20000,100000; --quick: 500,2000]")
    args = parser.parse_args()
    for name in bp.SCRUBBED:
        os.environ.pop(name, None)

    started = time.perf_counter()
    table, results = Table(), {}
    overrides = usable_overrides(args.config, tuple(args.overrides), table)
    steps = [("pipeline", lambda: pipeline(table, args, overrides, results)),
             ("static", lambda: static(table, results, args.decomp)),
             ("dedup", lambda: dedup(table, args.quick, results)),
             ("cli", lambda: cli_times(table, args.config, overrides, results)),
             ("compile", lambda: compile_layer(table, args, results)),
             ("scale", lambda: scale(table, args, results))]
    for name, step in steps:
        if name in args.skip:
            continue
        try:
            step()
        except Exception as error:  # one broken benchmark must not hide the others
            table.add(f"{name}: benchmark crashed", f"{type(error).__name__}: {str(error)[:200]}", "", "ERROR")

    print()
    print("\n".join(machine()))
    print(f"mode: {'--quick' if args.quick else 'full'}; bench wall time {time.perf_counter() - started:.0f} s")
    print()
    print(table.render())
    if table.notes:
        print()
        for note in table.notes:
            print(f"note: {note}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str))
    errors = [row[0] for row in table.rows if row[3] == "ERROR"]
    if errors:
        print(f"\n{len(errors)} benchmark row(s) failed: " + "; ".join(errors), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
