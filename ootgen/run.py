"""The main job: plan -> render -> generate -> validate (L1, L2, L3) -> dedup -> store -> export.

`run_dataset` is the library entry point behind `ootgen run`. It resumes from the run directory's
SQLite store, never re-pays for a stored response, and keeps going until each type's quota of the
`num_examples` accepted examples is met, its attempt limit is reached, or the budget would be passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .budget import Budget, OutputFloors
from .errors import ConfigError, ModelNotFound, RunAborted
from .exchange import Exchange
from .generate import AdaptiveLimiter, ClaudeClient, refusal
from .models import ModelInfo
from .pipeline import CandidatePipeline
from .scheduler import StreamScheduler, Targets
from .store import ACCEPTED, ResponseCache, RunStore
from .yamlfile import format_key


@dataclass(frozen=True)
class RunOptions:
    api_key: str | None = field(repr=False)  # never shown: a traceback or a debug print must not leak it
    run_dir: Path
    output: Path
    num_examples: int
    base_url: str | None = None
    concurrency: int | None = None
    max_cost: float | None = None
    use_cache: bool = True
    cache_path: Path | None = None
    force: bool = False
    batch: bool = False
    batch_poll_seconds: float = 30.0


@dataclass
class RunResult:
    accepted: int
    target: int
    complete: bool
    stop_reason: str
    totals: dict
    outputs: dict = field(default_factory=dict)


Event = Callable[[str, dict], None]


@dataclass
class RunParts:
    """The run loop's pieces, built once per run and shared by the streaming and the batch path."""

    project: Any
    options: RunOptions
    store: RunStore
    emit: Event
    targets: Targets
    budget: Budget
    limiter: AdaptiveLimiter
    exchange: Exchange
    pipeline: CandidatePipeline
    cache: ResponseCache | None

    @classmethod
    def build(cls, project, options: RunOptions, store: RunStore, emit: Event) -> RunParts:
        config = project.config
        cache = ResponseCache(options.cache_path or ResponseCache.default_path()) if options.use_cache else None
        budget = Budget(options.max_cost, spent=store.totals()["cost_usd"] or 0.0, floors=OutputFloors(store.longest_outputs()))
        exchange = Exchange(store, cache, budget, emit, reasks=config.generation.malformed_retries)
        pipeline = CandidatePipeline(project, store, exchange, emit)
        targets = Targets.from_config(config, options.num_examples)
        budget.judge_calls_per_generation = math.ceil(targets.per_call / targets.judge_batch) * len(pipeline.judges)
        concurrency = options.concurrency or config.concurrency.max
        limiter = AdaptiveLimiter(concurrency, min(config.concurrency.min, concurrency))
        return cls(project, options, store, emit, targets, budget, limiter,
                   exchange, pipeline, cache)

    def client(self) -> ClaudeClient:
        concurrency = self.project.config.concurrency
        assert self.options.api_key is not None
        return ClaudeClient(
            self.options.api_key, limiter=self.limiter, base_url=self.options.base_url,
            max_retries=concurrency.sdk_max_retries, timeout=concurrency.timeout_seconds,
        )


def check_can_run(project, options: RunOptions) -> None:
    """Refusals that must happen before any request: no key, unknown cost with a cap."""
    from .errors import ApiKeyMissing

    if not options.api_key:
        raise ApiKeyMissing(
            "no API key: set ANTHROPIC_API_KEY (or pass --api-key KEY in scripts; --dry-run needs no key)",
            key="api key",
        )
    for info, _ in paid_models(project):
        if not info.known and options.max_cost is not None:
            raise ConfigError(
                f"model '{info.id}' is not in the model table, so its cost is unknown and --max-cost cannot be enforced",
                file=project.models.file, key="models", expected="an entry with prices for this model, or no --max-cost",
            )


def paid_models(project) -> list[tuple[ModelInfo, tuple]]:
    """Every model the run can pay for, once, with the config key that names it: the generator, the judge and
    each cross-validation judge."""
    models: dict[str, tuple[ModelInfo, tuple]] = {}
    for name, key in project.config.named_models:
        info = project.models.resolve(name)
        models.setdefault(info.id, (info, key))
    return list(models.values())


def unknown_model_error(project, error: ModelNotFound) -> ConfigError:
    """The API's 404 for a model, named where the user set it (`--model X`, or the preset's file and line)."""
    key = next((key for info, key in paid_models(project) if info.id == error.model), ("model",))
    file, line = project.config.source.locate(key)
    return ConfigError(error.message, file=file, line=line, key=format_key(key),
                       expected=f"a model id the API serves (see {project.models.file})")


def run_dataset(project, options: RunOptions, emit: Event | None = None) -> RunResult:
    """Run (or resume) a generation run and export its outputs. Blocks until done."""
    from .export import export_run
    from .validate.compile import Unavailable

    emit = emit or (lambda _event, _data: None)
    check_can_run(project, options)
    store = RunStore.open_run_dir(options.run_dir)
    started = time.time()
    try:
        resuming = store.bind(
            work_hash=project.work_hash, config_hash=project.config_hash, settings=project.config.raw, force=options.force
        )
        store.set_meta("seed", project.config.seed)
        store.set_meta("model", project.config.model)
        store.set_meta("target", options.num_examples)
        store.set_meta("mix", project.mix)  # export splits the target into per-type quotas by it
        run = RunParts.build(project, options, store, emit)
        store.set_meta("compiler_layer", run.pipeline.compiler.status)
        if isinstance(run.pipeline.compiler, Unavailable):
            emit("warning", {"message": run.pipeline.compiler.status})  # one line: L1 runs without the compiler
        model = run.pipeline.model
        emit("start", {"resuming": resuming, "accepted": store.count(ACCEPTED), "target": options.num_examples,
                       "spent": run.budget.spent, "model": model.id, "known_model": model.known})
        try:
            stop = asyncio.run(_execute(run))
        except KeyboardInterrupt:  # Ctrl-C: everything stored stays; export what was accepted
            stop = "interrupted"
        except ModelNotFound as error:
            raise unknown_model_error(project, error) from None
        except sqlite3.OperationalError as error:  # e.g. a full disk: the last transaction rolled back
            raise RunAborted(
                f"the run store could not be written ({error}); everything committed before is safe: "
                "free some space and run the same command again to resume",
                file=str(store.path),
            ) from None
    finally:
        with contextlib.suppress(sqlite3.Error):  # bookkeeping only; must not mask the real error
            store.set_meta("last_duration_seconds", round(time.time() - started, 3))
            store.set_meta("total_duration_seconds", round((store.get_meta("total_duration_seconds", 0) or 0) + time.time() - started, 3))
    totals = store.totals()
    outputs = export_run(store, project=project, output=options.output, target=options.num_examples, stop_reason=stop)
    store.close()
    accepted = min(totals["accepted"], options.num_examples)
    result = RunResult(accepted, options.num_examples, accepted >= options.num_examples, stop, totals, outputs)
    emit("done", {"accepted": accepted, "target": options.num_examples, "stop": stop, "cost": totals["cost_usd"]})
    return result


async def _execute(run: RunParts) -> str:
    import signal

    # SIGTERM stops the run like Ctrl-C does: the main task is cancelled, what is stored stays, and the
    # outputs are exported with what was accepted.
    main_task = asyncio.current_task()
    assert main_task is not None
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    client = run.exchange.client = run.client()
    try:
        if run.options.batch:
            from .batch import BatchRun

            try:
                return await BatchRun(run, client).execute()
            except client.anthropic.APIError as error:  # a batch create, poll or results read the SDK gave up on
                raise refusal(client.anthropic, error, run.project.config.model) from None
        return await StreamScheduler(run.project, run.store, run.pipeline, run.targets, run.limiter.maximum).run()
    except asyncio.CancelledError:
        return "interrupted"
    finally:
        await client.close()
        with contextlib.suppress(sqlite3.Error):  # bookkeeping only; must not mask the real error
            run.store.add_http_counts(client.http.as_dict())
        if run.cache is not None:
            run.cache.close()
