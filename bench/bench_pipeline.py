"""Pipeline benchmarks against the fake Anthropic API (tests/fake_anthropic), driven by the real SDK.

* throughput: `ootgen run` (the real CLI, in a subprocess) against a fake with fixed latency L and a
  server-side concurrency cap K in queue mode; API calls completed per second vs the ideal K / L, read
  from the fake's request log (whole run, and steady state without the first call of each context,
  which the scheduler serialises on purpose to write the context's prompt-cache prefix).
* cost: API calls and billed input tokens per accepted example for ootgen and for a naive design
  (`naive_run`): one example per generation call, one judge call per candidate, no cache_control,
  with ootgen's own templates, plan and scoring through the library.
* static: fallback static-L1 rate (run_static_checks on one core) over examples made by the fake's
  OotResponder, for when bench/bench_static.py cannot run.

`python bench/bench_pipeline.py {throughput,cost,naive,static} [...]` prints JSON; bench/run_all.py
imports these functions and prints the table. Benchmarks print ratios measured in one run; they are
not tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
    oot = OotResponder(bad_fraction=bad_fraction, seed=seed)

    def responder(request: dict) -> str:
        return oot(_without_requirements(request))

    fake.set_responder(responder)
    return fake.start()


_REQUIREMENTS = re.compile(r"Required in a good answer:\n(?:- .*\n)*")


def _without_requirements(request: dict) -> dict:
    """The judge prompt without each candidate's "Required in a good answer" list.

    OotResponder's judge flags any candidate block that mentions `GlobalContext`/`globalCtx`, and the
    conversational type's answer_must says "GlobalContext renamed to PlayState", so every conversational
    candidate would be scored as technically wrong. Stripping the list before the fake judge reads it keeps
    the fake's verdicts about the candidate itself; the tokens billed are those of the full request.
    """
    messages = []
    for message in request.get("messages", []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str) and "Required in a good answer:" in content:
            message = {**message, "content": _REQUIREMENTS.sub("", content)}
        messages.append(message)
    return {**request, "messages": messages}


def ootgen_command() -> list[str]:
    """The installed console script when present (as a user runs it), else the module."""
    script = shutil.which("ootgen", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-c", "from ootgen.cli import main; main()"]


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def run_ootgen(fake: FakeAnthropic, *, num_examples: int, concurrency: int, workdir: Path,
               config: str = DEFAULT_CONFIG, overrides: tuple[str, ...] = (), timeout: float = 600) -> dict:
    """`ootgen run` in a subprocess against `fake`, with an empty response cache; returns metadata and timings."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = clean_env(ANTHROPIC_API_KEY=FAKE_KEY, ANTHROPIC_BASE_URL=fake.base_url, XDG_CACHE_HOME=str(workdir / "xdg-cache"))
    args = [*ootgen_command(), "run", config, "--num-examples", str(num_examples), "--concurrency", str(concurrency),
            "--no-cache", "--progress", "json", "--output", str(workdir / "out.jsonl"), "--run-dir", str(workdir / "run")]
    for item in overrides:
        args += ["--set", item]
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
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


# --- cost: ootgen vs a naive design ---------------------------------------------------------------


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


def naive_run(base_url: str, *, num_examples: int, config: str = DEFAULT_CONFIG, overrides: tuple[str, ...] = (),
              workers: int = 8) -> dict:
    """The naive design: one example per generation call, one judge call per candidate, no cache_control.

    Uses ootgen's own plan, templates, request parameters and L3 scoring (judge verdict only: the naive
    design has no static layer and no dedup), with the real synchronous SDK.
    """
    import anthropic

    from ootgen.generate import build_request, parse_reply, usage_from
    from ootgen.load import load_project
    from ootgen.pipeline import answer_text as _answer_text
    from ootgen.pipeline import example_from_reply as _example_from_reply
    from ootgen.plan import generation_vars, iter_plan, judge_vars
    from ootgen.validate.score import score_candidate
    from ootgen.yamlfile import load_yaml_file

    project = load_project(str(ROOT / config) if not Path(config).is_absolute() else config,
                           (*overrides, "generation.examples_per_call=1", "judge.candidates_per_call=1"))
    settings = project.config
    model = project.models.resolve(settings["model"])
    judge_model = project.models.resolve((settings.get("judge") or {}).get("model") or settings["model"])
    checks_path = settings.get("checks")
    checks = load_yaml_file(Path(checks_path), "checks file")[0] if checks_path else {}
    client = anthropic.Anthropic(api_key=FAKE_KEY, base_url=base_url, max_retries=4)
    plan = iter_plan(project, examples_per_call=1)
    lock = threading.Lock()
    totals = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    counts = {"generate": 0, "judge": 0, "accepted": 0, "rejected": 0, "failed": 0, "candidates": 0}

    def call(kind: str, info, prompt, section: dict, schema: str):
        request = build_request(kind, info, prompt, max_tokens=section["max_tokens"], schema_name=schema,
                                effort=section.get("effort"), temperature=section.get("temperature"))
        params = request.api_params()
        params["system"] = prompt.system  # a plain string: no cache_control anywhere
        temperature = params.pop("temperature", None)
        message = client.messages.create(**params, extra_body={"temperature": temperature} if temperature is not None else None)
        text = "".join(getattr(b, "text", "") for b in message.content if getattr(b, "type", "") == "text")
        usage = usage_from(message.usage)
        with lock:
            counts[kind] += 1
            for key in totals:
                totals[key] += getattr(usage, key)
        return parse_reply(request, text, message.stop_reason, usage)

    def one(task) -> None:
        example_type = project.types[task.type]
        prompt = project.renderer.generation_prompt(generation_vars(task, project, structured=True),
                                                    override=example_type.generate_template)
        reply = call("generate", model, prompt, settings["generation"], "generation_reply")
        if reply.data is None:
            with lock:
                counts["failed"] += 1
            return
        for item in reply.data["examples"][:1]:
            example = _example_from_reply(item, task, example_type)
            with lock:
                counts["candidates"] += 1
            judge_prompt = project.renderer.judge_prompt(judge_vars([(example, task.complexity)], project, task.context, structured=True))
            verdict_reply = call("judge", judge_model, judge_prompt, settings["judge"], "judge_reply")
            verdicts = (verdict_reply.data or {}).get("verdicts") or []
            if not verdicts:
                with lock:
                    counts["failed"] += 1
                continue
            breakdown = score_candidate([], verdicts[0], requires_code=example_type.requires_code_in_output,
                                        has_code="```" in _answer_text(example), scoring=settings["scoring"], checks=checks)
            with lock:
                counts["accepted" if breakdown.accepted else "rejected"] += 1

    started = time.perf_counter()
    max_tasks = num_examples * 3
    issued = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while counts["accepted"] < num_examples and issued < max_tasks:
            missing = num_examples - counts["accepted"]
            wave = [next(plan) for _ in range(min(max(missing, 1), workers, max_tasks - issued))]
            issued += len(wave)
            list(pool.map(one, wave))
    client.close()
    accepted = counts["accepted"]
    calls = counts["generate"] + counts["judge"]
    return {
        **counts, "api_calls": calls, "tokens": totals, "seconds": time.perf_counter() - started,
        "calls_per_accepted": calls / accepted if accepted else None,
        "billed_input_per_accepted": billed_input(totals) / accepted if accepted else None,
    }


def bench_naive(*, num_examples: int = 60, config: str = DEFAULT_CONFIG, overrides: tuple[str, ...] = (),
                latency_ms: float = 0, workers: int = 8) -> dict:
    with _closing(start_fake(latency_ms=latency_ms, concurrency=workers, mode="queue")) as fake:
        result = naive_run(fake.base_url, num_examples=num_examples, config=config, overrides=overrides, workers=workers)
        result["fake_calls"] = sum(1 for e in fake.log if e["path"] == "/v1/messages")
        result["cache_control_seen"] = any("cache_control" in json.dumps(e["body"]) for e in fake.log if e["body"])
        return result


# --- static L1 fallback ------------------------------------------------------------------------


def bench_static_fallback(*, count: int = 3000, seconds: float = 3.0) -> dict:
    """run_static_checks over OotResponder examples (10 % deliberately wrong), on the current core only."""
    from ootgen.check import load_checks
    from ootgen.records import Example, Turn
    from ootgen.symbols import SymbolIndex
    from ootgen.validate.static import run_static_checks
    from tests.fake_anthropic.oot_responder import OotResponder

    index = SymbolIndex.load("default")
    checks = load_checks()
    responder = OotResponder()
    types = ("code_explanation", "feature_implementation", "debugging_help", "architecture_question",
             "conversational", "code_modification")
    corpus = []
    for n in range(min(count, 600)):
        bad = ("missing_fn", "globalCtx")[n % 2] if n % 10 == 0 else None
        item = responder._example(n, types[n % len(types)], "actor initialization", bad)
        corpus.append(Example(instruction=item["instruction"], output=item["output"], input=item["input"],
                              type=types[n % len(types)], turns=tuple(Turn(t["role"], t["content"]) for t in item["turns"])))
    for example in corpus[:50]:
        run_static_checks(example, index, checks)  # warm up parser and query compilation
    done, started = 0, time.perf_counter()
    while done < count or time.perf_counter() - started < seconds:
        run_static_checks(corpus[done % len(corpus)], index, checks)
        done += 1
    elapsed = time.perf_counter() - started
    size = statistics.mean(len(e.output) + len(e.input) for e in corpus)
    return {"examples": done, "seconds": elapsed, "per_s": done / elapsed, "mean_chars": size, "corpus": "OotResponder"}


class _closing:
    def __init__(self, fake: FakeAnthropic):
        self.fake = fake

    def __enter__(self) -> FakeAnthropic:
        return self.fake

    def __exit__(self, *exc) -> None:
        self.fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["throughput", "cost", "naive", "static"])
    parser.add_argument("--n", type=int, default=None, help="accepted examples wanted (static: examples checked)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=None)
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    parser.add_argument("--one-core", action="store_true", help="pin this process to one CPU first")
    args = parser.parse_args()
    if args.one_core and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    common = {"config": args.config, "overrides": tuple(args.overrides)}
    if args.what == "throughput":
        result = bench_throughput(num_examples=args.n or 60, concurrency=args.concurrency,
                                  latency_ms=args.latency_ms if args.latency_ms is not None else 300, **common)
    elif args.what == "cost":
        result = bench_ootgen_cost(num_examples=args.n or 200, concurrency=args.concurrency, latency_ms=args.latency_ms or 0, **common)
    elif args.what == "naive":
        result = bench_naive(num_examples=args.n or 60, latency_ms=args.latency_ms or 0, workers=args.concurrency, **common)
    else:
        result = bench_static_fallback(count=args.n or 3000)
    print(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
