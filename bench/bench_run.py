"""Run-loop benchmarks against the fake Anthropic API: does a run pay only for what ships?

* capped_run_reach: a `--max-cost` run spends this share of its cap by the fake's own bill (target >= 0.9, or the
  run completes); printed as `ROW` lines (bench/run_all.py), with how many calls went with a lowered max_tokens,
  how many of those replies were cut at it, and how many generation calls asked for fewer candidates than planned.
* paid_not_exported_<fake>: accepted-but-not-exported plus generated-but-never-judged candidates, as a
  share of the target, on a clean, a flaky (random 429/529/500/dropped) and a rate-limited fake
  (target <= 0.05).
* type_mix_<N>: the largest deviation of an example type's count in the dataset from its quota
  (N x weight / total weight, largest remainders rounded up), in examples; within bounds when <= 1 or
  <= 5 % of N.
* calls_per_accepted, billed_input_per_accepted: API calls and billed input tokens (cache writes 1.25x,
  reads 0.1x) per exported example on the clean fake, one run each (no target: see the reference rows).
* level / context spread: exported examples per level and per context on the type-mix runs (no target).
* reference (`--rows reference --reference COMMIT[,COMMIT]`): API calls and billed input tokens per exported
  example of this checkout and of the code at each reference commit (extracted with `git archive`, run with its
  own configs/default.yaml in this Python environment, so its dependencies must be installed here), on the same
  fake with the same seeds (`--seeds K`: its OotResponder's choice of the deliberately wrong examples, which
  moves these ratios by a few hundredths from seed to seed), sizes `--reference-sizes`; counted by the fake (its
  request log and bill) and in the exported file, never read from the run's own metadata. Target: no worse than
  the reference (issue 13).

`python bench/bench_run.py [--sizes 20,50,200] [--rows reach,paid,mix,reference] [--cap-runs N] [--reference C]
[--reference-sizes 60,100] [--seeds K]` prints `ROW name | measured | target | verdict` lines (bench/run_all.py
reads them); each row but the reference rows is measured in one run.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import _closing, _run_summary, billed_input, run_ootgen, start_fake  # noqa: E402

FAKES = {
    "clean": {},
    "flaky": {"random_faults": {"rate_limit": 0.05, "overloaded": 0.05, "api_error": 0.03, "drop": 0.03}, "retry_after": 0.01},
    "ratelimit": {"concurrency_limit": 3, "concurrency_mode": "reject", "retry_after": 0.05},
}


def _run(fake_config: dict, *, num: int, concurrency: int = 8, overrides: tuple[str, ...] = ()) -> dict:
    """One run on a fresh fake configured with `fake_config`: its metadata and timings (its folder is removed)."""
    with tempfile.TemporaryDirectory(prefix="ootgen-bench-run-") as tmp, _closing(start_fake(latency_ms=20)) as fake:
        fake.configure(**fake_config)
        return run_ootgen(fake, num_examples=num, concurrency=concurrency, workdir=Path(tmp), overrides=overrides)


CONFIGURED_MAX_TOKENS = {"generation_reply": 12000, "judge_reply": 3000}  # configs/default.yaml


def capped_run(num: int, cap: float) -> dict:
    """One `--num-examples num --max-cost cap` run on the clean fake; what the fake billed and saw."""
    from ootgen.models import Usage, load_model_table

    table = load_model_table(ROOT / "configs" / "models.yaml")
    with tempfile.TemporaryDirectory(prefix="ootgen-bench-cap-") as folder, _closing(start_fake(latency_ms=20)) as fake:
        tmp = Path(folder)
        run = run_ootgen(fake, num_examples=num, concurrency=8, workdir=tmp, overrides=(f"budget.max_cost_usd={cap}",))
        billed = sum(table.resolve(m).cost(Usage(**tokens)) or 0.0 for m, tokens in fake.billed_usage().items())
        answered = [e for e in fake.requests("/v1/messages", "POST") if e.get("usage")]
        fewer = _asked_fewer(tmp)
    lowered = [e for e in answered
               if e["body"]["max_tokens"] < CONFIGURED_MAX_TOKENS[e["body"]["output_config"]["format"]["schema"]["title"]]]
    meta = run["metadata"]
    return {"billed": billed, "stop": meta.get("stop_reason"), "exported": meta.get("total_examples"), "calls": len(answered),
            "lowered": len(lowered), "cut": sum(e["stop_reason"] == "max_tokens" for e in lowered),
            "pending": (meta.get("candidates") or {}).get("pending"), "fewer": fewer}


def _asked_fewer(workdir: Path) -> int:
    """Generation calls that asked for fewer candidates than their task planned (near the cap), from the run store."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(next(workdir.rglob("run.sqlite")))) as db:
        return db.execute("SELECT COUNT(*) FROM tasks t WHERE t.state = 'done' AND json_array_length(t.topics) >"
                          " (SELECT COUNT(*) FROM candidates c WHERE c.task_idx = t.idx)").fetchone()[0]


def cap_rows(runs: int) -> None:
    """ROW lines: the share of the cap a capped run spends (1.0 when it completes under it), min and median of `runs`."""
    for num, cap in ((20, 0.5), (60, 0.5)):
        results = [capped_run(num, cap) for _ in range(runs)]
        shares = sorted(1.0 if r["stop"] == "complete" else r["billed"] / cap for r in results)
        detail = "; ".join(f"{r['stop']} at ${r['billed']:.3f}, {r['exported']} exported, {r['pending']} unjudged, "
                           f"{r['lowered']} of {r['calls']} calls lowered, {r['cut']} cut at it, {r['fewer']} asked for fewer candidates"
                           for r in results)
        verdict = "met" if shares[0] >= 0.9 else "MISSED"
        print(f"ROW --num-examples {num} --max-cost {cap}: share of the cap spent (fake's bill; 1.0 = complete), min / median "
              f"of {runs} | {shares[0]:.3f} / {shares[len(shares) // 2]:.3f} ({detail}) | >= 0.9 | {verdict}", flush=True)


def paid_not_exported(meta: dict) -> float:
    candidates = meta["candidates"]
    return (candidates["surplus_accepted"] + candidates["pending"]) / meta["target"]


def type_mix_deviation(meta: dict, mix: dict[str, float], num: int) -> float:
    """Largest distance of a type's count in the dataset from its whole-example quota (type_quotas)."""
    from ootgen.plan import type_quotas

    counts = Counter(meta["type_distribution"])
    return max(abs(counts.get(name, 0) - quota) for name, quota in type_quotas(mix, num).items())


def code_at(commit: str) -> Path:
    """The tree of `commit` of this repository in a new temporary directory (`git archive`)."""
    tree = Path(tempfile.mkdtemp(prefix=f"ootgen-ref-{commit}-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def served_cost(code: Path, num: int, seed: int) -> tuple[int, float, int]:
    """(API calls, billed input tokens, exported examples) of one run of the ootgen tree `code` on a fresh clean fake."""
    with tempfile.TemporaryDirectory(prefix="ootgen-bench-ref-") as tmp, _closing(start_fake(seed=seed)) as fake:
        run_ootgen(fake, num_examples=num, concurrency=8, workdir=Path(tmp), code=code)
        calls = len(fake.requests("/v1/messages", "POST"))
        billed = sum(billed_input(tokens) for tokens in fake.billed_usage().values())
        output = Path(tmp) / "out.jsonl"
        exported = sum(1 for _ in output.open()) if output.exists() else 0
    return calls, billed, exported


def reference_rows(references: list[str], sizes: list[int], seeds: int) -> None:
    trees = {"this checkout": ROOT, **{commit: code_at(commit) for commit in references}}
    try:
        _compare(trees, references, sizes, seeds)
    finally:
        for commit in references:
            shutil.rmtree(trees[commit], ignore_errors=True)


def _compare(trees: dict[str, Path], references: list[str], sizes: list[int], seeds: int) -> None:
    for num in sizes:
        totals = {}
        for label, tree in trees.items():
            runs = [served_cost(tree, num, seed) for seed in range(seeds)]
            calls, billed, exported = (sum(column) for column in zip(*runs, strict=True))
            totals[label] = (calls / exported, billed / exported, [round(r[0] / r[2], 3) for r in runs])
        ours = totals["this checkout"]
        for commit in references:
            theirs = totals[commit]
            for i, what in ((0, "API calls"), (1, "billed input tokens")):
                measure = f"{ours[i]:.3f} vs {theirs[i]:.3f}" if i == 0 else f"{ours[i]:,.0f} vs {theirs[i]:,.0f}"
                row(f"{what} per exported example, N={num}, seeds 0-{seeds - 1}: this checkout vs {commit}"
                    + (f" (per seed {ours[2]} vs {theirs[2]})" if i == 0 else ""),
                    f"{measure} (ratio {ours[i] / theirs[i]:.3f})", "ratio <= 1", ours[i] <= theirs[i])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20,50,200")
    parser.add_argument("--num", type=int, default=20, help="target of the paid-not-exported runs")
    parser.add_argument("--rows", default="reach,paid,mix", help="which rows: reach, paid, mix, reference")
    parser.add_argument("--cap-runs", type=int, default=3, help="runs per capped row (min and median are printed)")
    parser.add_argument("--reference", default="b04f0c1", help="commits compared by the reference rows (comma-separated)")
    parser.add_argument("--reference-sizes", default="60,100", help="targets of the reference rows")
    parser.add_argument("--seeds", type=int, default=6, help="fake seeds per size in the reference rows")
    args = parser.parse_args()
    import yaml

    mix = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())["mix"]

    rows = set(args.rows.split(","))
    if "reference" in rows:
        reference_rows(args.reference.split(","), [int(n) for n in args.reference_sizes.split(",")], args.seeds)
    if "reach" in rows:
        cap_rows(args.cap_runs)
    if "paid" not in rows:
        FAKES.clear()

    for name, config in FAKES.items():
        run = _run(config, num=args.num)
        meta = run["metadata"]
        share = paid_not_exported(meta)
        row(f"paid but not exported / N, N={args.num}, {name} fake", f"{share:.3f}", "<= 0.05", share <= 0.05)
        if name == "clean":
            summary = _run_summary(run)
            # One run moves by a few hundredths with the fake's draws: the comparison with a target is the
            # reference rows' (several seeds, both trees in this bench run); these are for information.
            row(f"API calls per exported example, N={args.num}, clean", f"{summary['calls_per_accepted']:.3f}", "", None)
            row(f"billed input tokens per exported example, N={args.num}, clean", f"{summary['billed_input_per_accepted']:.0f}",
                "", None)

    for size in (int(s) for s in args.sizes.split(",") if s and "mix" in rows):
        run = _run({}, num=size)
        meta = run["metadata"]
        deviation = type_mix_deviation(meta, mix, size)
        bound = 1.0 if size < 20 else max(1.0, 0.05 * size)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(meta["type_distribution"].items()))
        row(f"type mix, N={size}: largest distance from a quota ({counts})", f"{deviation:g}", f"<= {bound:g}", deviation <= bound)
        summary = _run_summary(run)
        share = paid_not_exported(meta)
        row(f"paid but not exported / N, N={size}, clean fake", f"{share:.3f}", "<= 0.05", share <= 0.05)
        row(f"API calls per exported example, N={size}, clean", f"{summary['calls_per_accepted']:.3f}", "", None)
        levels, contexts = spread(meta)
        row(f"level spread on exported examples, N={size}", " / ".join(f"{k} {v}" for k, v in sorted(levels.items())), "", None)
        row(f"contexts on exported examples, N={size}", f"{len(contexts)} used, {min(contexts.values())}..{max(contexts.values())} each",
            "", None)


def row(name: str, measured: str, target: str, ok: bool | None) -> None:
    """A `ROW name | measured | target | verdict` line for bench/run_all.py."""
    verdict = "" if ok is None else ("met" if ok else "missed")
    print(f"ROW {name} | {measured} | {target} | {verdict}", flush=True)


def spread(meta: dict) -> tuple[Counter, Counter]:
    """Exported examples per level and per context (from the metadata's type/context/complexity coverage)."""
    levels: Counter = Counter()
    contexts: Counter = Counter()
    for key, count in meta["coverage"]["type/context/complexity"].items():
        _, context, level = key.split("/")
        levels[level] += count
        contexts[context] += count
    return levels, contexts


if __name__ == "__main__":
    main()
