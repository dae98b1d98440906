"""Run-loop benchmarks against the fake Anthropic API: does a run pay only for what ships?

* capped_run_reach: a `--max-cost` run that cannot finish spends this share of its cap (target >= 0.9).
* paid_not_exported_<fake>: accepted-but-not-exported plus generated-but-never-judged candidates, as a
  share of the target, on a clean, a flaky (random 429/529/500/dropped) and a rate-limited fake
  (target <= 0.05).
* type_mix_<N>: the largest deviation of an example type's count in the dataset from its quota
  (N x weight / total weight, largest remainders rounded up), in examples; within bounds when <= 1 or
  <= 5 % of N.
* calls_per_accepted, billed_input_per_accepted: API calls and billed input tokens (cache writes 1.25x,
  reads 0.1x) per exported example on the clean fake.

* level / context spread: exported examples per level and per context on the type-mix runs (no target).

`python bench/bench_run.py [--sizes 20,50,200] [--rows reach,paid,mix]` prints `ROW name | measured | target |
verdict` lines (bench/run_all.py reads them), each measured in one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import _closing, _run_summary, run_ootgen, start_fake  # noqa: E402

FAKES = {
    "clean": {},
    "flaky": {"random_faults": {"rate_limit": 0.05, "overloaded": 0.05, "api_error": 0.03, "drop": 0.03}, "retry_after": 0.01},
    "ratelimit": {"concurrency_limit": 3, "concurrency_mode": "reject", "retry_after": 0.05},
}


def _run(fake_config: dict, *, num: int, concurrency: int = 8, overrides: tuple[str, ...] = ()) -> tuple[dict, Path]:
    tmp = Path(tempfile.mkdtemp(prefix="ootgen-bench-run-"))
    with _closing(start_fake(latency_ms=20)) as fake:
        fake.configure(**fake_config)
        run = run_ootgen(fake, num_examples=num, concurrency=concurrency, workdir=tmp, overrides=overrides)
    return run, tmp


def paid_not_exported(meta: dict) -> float:
    candidates = meta["candidates"]
    return (candidates["surplus_accepted"] + candidates["pending"]) / meta["target"]


def type_mix_deviation(meta: dict, mix: dict[str, float], num: int) -> float:
    """Largest distance of a type's count in the dataset from its whole-example quota (type_quotas)."""
    from ootgen.plan import type_quotas

    counts = Counter(meta["type_distribution"])
    return max(abs(counts.get(name, 0) - quota) for name, quota in type_quotas(mix, num).items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20,50,200")
    parser.add_argument("--num", type=int, default=20, help="target of the paid-not-exported runs")
    parser.add_argument("--rows", default="reach,paid,mix", help="which rows: reach, paid, mix")
    args = parser.parse_args()
    import yaml

    mix = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())["mix"]

    rows = set(args.rows.split(","))
    # Reach: share of the cap spent, or 1.0 when the target was reached under it. The case (20 wanted,
    # $0.50 cap, about $0.26 uncapped) must complete; a cap the job cannot finish under shows how close to
    # the cap it gets (it stops when one more call's worst case, ~$0.13 at max_tokens 12000, does not fit).
    for num, cap in ((20, 0.5), (60, 0.5)) if "reach" in rows else ():
        run, _ = _run({}, num=num, overrides=(f"budget.max_cost_usd={cap}",))
        meta = run["metadata"]
        reach = meta["cost_usd"] / cap if meta.get("stop_reason") == "budget" else 1.0
        row(f"capped run reach (cap ${cap:.2f}, {num} wanted, stop {meta.get('stop_reason')}, spent ${meta['cost_usd']:.3f})",
            f"{reach:.2f}", ">= 0.90", reach >= 0.9)
    if "paid" not in rows:
        FAKES.clear()

    for name, config in FAKES.items():
        run, _ = _run(config, num=args.num)
        meta = run["metadata"]
        share = paid_not_exported(meta)
        row(f"paid but not exported / N, N={args.num}, {name} fake", f"{share:.3f}", "<= 0.05", share <= 0.05)
        if name == "clean":
            summary = _run_summary(run)
            row(f"API calls per exported example, N={args.num}, clean", f"{summary['calls_per_accepted']:.3f}", "<= 0.80",
                summary["calls_per_accepted"] <= 0.80)
            row(f"billed input tokens per exported example, N={args.num}, clean", f"{summary['billed_input_per_accepted']:.0f}",
                "<= 3813", summary["billed_input_per_accepted"] <= 3813)

    for size in (int(s) for s in args.sizes.split(",") if s and "mix" in rows):
        run, _ = _run({}, num=size)
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
