"""The `ootgen` command line: a thin click layer over the library API.

Heavy modules (anthropic, jsonschema, tree-sitter) are imported inside commands so `ootgen --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import OotgenError


class _Group(click.Group):
    """Turns every OotgenError and click usage error into one line on stderr and its exit status."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except OotgenError as error:
            click.echo(f"ootgen: error: {error}", err=True)
            sys.exit(error.exit_code)
        except click.exceptions.NoArgsIsHelpError as error:  # plain `ootgen`: the help, as usual
            click.echo(error.ctx.get_help())
            sys.exit(0)
        except click.ClickException as error:  # bad flags and arguments: one line, exit 2, no usage dump
            ctx = getattr(error, "ctx", None)  # UsageError and BadParameter carry the command's context
            hint = f" (see {_help_command(ctx)})" if ctx else ""
            click.echo(f"ootgen: error: {error.format_message()}{hint}", err=True)
            sys.exit(error.exit_code)
        except click.exceptions.Abort:
            click.echo("ootgen: aborted", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


def _help_command(ctx: click.Context) -> str:
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["ootgen", *reversed(names), "--help"])


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ootgen")
def main() -> None:
    """Generate instruction-tuning data about Ocarina of Time romhacking (zeldaret/oot) with Claude."""


_set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
    help="Override any config key (value parsed as YAML); repeatable.",
)


@main.command()
@click.argument("config")
@_set_option
def validate(config: str, overrides: tuple[str, ...]) -> None:
    """Load and check CONFIG (a preset file or built-in name) and everything it names; exit 0 or 2."""
    from .load import load_project
    from .offline import validation_summary

    project = load_project(config, overrides)
    _warn(project)
    click.echo(validation_summary(project))


def _warn(project) -> None:
    for warning in project.warnings:
        click.echo(f"ootgen: warning: {warning}", err=True)


@main.command(name="types")
@click.argument("config")
@_set_option
def list_types(config: str, overrides: tuple[str, ...]) -> None:
    """Table of example types with their contexts, complexities and mix weights."""
    from .load import load_project
    from .offline import types_table

    click.echo(types_table(load_project(config, overrides)))


@main.command()
@click.argument("config")
@_set_option
@click.option("--type", "type_name", default=None, help="Show the first planned task of this example type.")
@click.option("--seed", type=int, default=None, help="Plan with this seed instead of the config's.")
@click.option("--index", "task_index", type=int, default=0, show_default=True, help="Which planned task (of --type, if given).")
@click.option("--judge", is_flag=True, help="Render the judge prompt for sample candidates of that task instead.")
def render(config: str, overrides: tuple[str, ...], type_name: str | None, seed: int | None, task_index: int, judge: bool) -> None:
    """Print the exact system and user prompt of a planned task."""
    from .load import load_project
    from .offline import render_task

    if seed is not None:
        overrides = (*overrides, f"seed={seed}")
    click.echo(render_task(load_project(config, overrides), type_name=type_name, index=task_index, judge=judge))


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: str, force: bool) -> None:
    """Copy the editable configs/, templates/, contexts/ and schemas/ into DIRECTORY."""
    from .offline import init_project

    for line in init_project(directory, force=force):
        click.echo(line)


@main.command()
@click.argument("config", required=False)
@click.option("--api-key", envvar="ANTHROPIC_API_KEY", default=None, show_envvar=True,
              help="Anthropic API key (never written to any file or log).")
@click.option("--num-examples", type=click.IntRange(min=1), default=None, help="Accepted examples wanted [config: 50].")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Dataset JSONL [config: oot_training_data.jsonl].")
@click.option("--model", default=None, help="Generator model id or alias [config: claude-sonnet-5].")
@click.option("--judge-model", default=None, help="Judge model (defaults to the generator).")
@click.option("--seed", type=int, default=None, help="Planning seed [config].")
@_set_option
@click.option("--concurrency", type=click.IntRange(min=1, max=256), default=None, help="Parallel requests at most [config].")
@click.option("--questions", "questions_file", type=click.Path(dir_okay=False), default=None,
              help="Seed instructions from real questions (txt, JSONL or CSV) [config: questions].")
@click.option("--max-cost", type=click.FloatRange(min=0, min_open=True), default=None, help="Stop before spending more USD than this.")
@click.option("--dry-run", is_flag=True, help="Show the plan and estimated calls, tokens and cost; needs no key.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None, help="Run directory [<output stem>.run next to the output].")
@click.option("--force", is_flag=True, help="Start fresh in a run directory that holds a different configuration.")
@click.option("--no-cache", is_flag=True, help="Do not reuse or store responses in the cross-run response cache.")
@click.option("--batch", is_flag=True, help="Send requests through the Message Batches API (half price, slower).")
@click.option("--batch-poll", type=click.FloatRange(min=0.01), default=30.0, show_default=True,
              help="Seconds between polls of a batch's status.")
@click.option("--progress", "progress_mode", type=click.Choice(["bar", "quiet", "json"]), default="bar", show_default=True,
              help="Live bar, nothing but the summary, or one JSON event per line on stderr.")
@click.option("--base-url", envvar="ANTHROPIC_BASE_URL", default=None, hidden=True)
def run(config, api_key, num_examples, output, model, judge_model, seed, overrides, concurrency, questions_file, max_cost,
        dry_run, run_dir, force, no_cache, batch, batch_poll, progress_mode, base_url) -> None:
    """Generate a dataset: plan, ask Claude, validate (L1, L2, L3), dedup, store, export.

    CONFIG is a preset file or a built-in preset name; without it, ./configs/default.yaml when there is
    one, else the built-in `default`.
    """
    import json
    from pathlib import Path

    if config is None:
        config = "configs/default.yaml" if Path("configs/default.yaml").is_file() else "default"
    from .load import load_project

    extra: list[tuple[str, str]] = []  # (override, the flag as typed: errors name what the user wrote)
    for flag, key, value in (("--num-examples", "num_examples", num_examples), ("--output", "output", output),
                             ("--model", "model", model), ("--seed", "seed", seed), ("--judge-model", "judge.model", judge_model),
                             ("--concurrency", "concurrency.max", concurrency), ("--max-cost", "budget.max_cost_usd", max_cost)):
        if value is not None:
            extra.append((f"{key}={value}", f"{flag} {value}"))
    if questions_file is not None:
        extra.append((f"questions={json.dumps(str(Path(questions_file).resolve()))}", f"--questions {questions_file}"))
    project = load_project(config, (*overrides, *extra))
    settings = project.config
    target = settings.num_examples
    cap = settings.budget.max_cost_usd
    _warn(project)
    if dry_run:
        from .estimate import dry_run_report

        click.echo(dry_run_report(project, target))
        return
    from .progress import make_reporter
    from .run import RunOptions, run_dataset

    output_path = Path(settings.output)
    options = RunOptions(
        api_key=api_key, run_dir=Path(run_dir) if run_dir else output_path.with_name(output_path.stem + ".run"),
        output=output_path, num_examples=target, base_url=base_url, concurrency=settings.concurrency.max,
        max_cost=cap, use_cache=not no_cache, force=force, batch=batch, batch_poll_seconds=batch_poll,
    )
    reporter = make_reporter(progress_mode)
    try:
        result = run_dataset(project, options, emit=reporter)
    finally:
        reporter.close()
    totals = result.totals
    usage = totals["usage"]
    cost = "unknown" if totals["cost_usd"] is None else f"${totals['cost_usd']:.4f}"
    click.echo(
        f"{result.accepted}/{result.target} accepted ({result.stop_reason}); "
        f"rejected {totals['rejected']}; calls {sum(totals['calls'].values())}; "
        f"tokens in {usage.input_tokens:,} (+{usage.cache_read_input_tokens:,} cache read, "
        f"{usage.cache_creation_input_tokens:,} cache write) out {usage.output_tokens:,}; cost {cost}"
    )
    click.echo(f"wrote {result.outputs['dataset']}, {result.outputs['metadata']}, {result.outputs['rejected']}")
    if not result.complete:
        why = {"budget": "the --max-cost budget would have been passed",
               "attempt_limit": "the attempt limit (generation.max_attempts_factor) was reached",
               "interrupted": "the run was interrupted"}.get(result.stop_reason, result.stop_reason)
        click.echo(f"ootgen: incomplete: only {result.accepted} of {result.target} accepted because {why}; "
                   "run the same command again to resume", err=True)
        sys.exit(130 if result.stop_reason == "interrupted" else 1)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
def status(run_dir: str) -> None:
    """Progress, counts, tokens and cost of a run directory (no API call)."""
    from .store import RunStore

    store = RunStore.open_run_dir(Path(run_dir), readonly=True)
    totals = store.totals()
    usage = totals["usage"]
    states = store.task_states()
    click.echo(f"run {run_dir}: model {store.get_meta('model')}, seed {store.get_meta('seed')}, target {store.get_meta('target')}")
    click.echo(f"  accepted {totals['accepted']}  rejected {totals['rejected']}  pending {totals['pending']}")
    human = store.human_verdicts()
    if human:
        decided = [v.status for v in human.values()]
        click.echo(f"  human review: {len(human)} decided (accepted {decided.count('accepted')}, rejected "
                   f"{decided.count('rejected')}, edited {sum(1 for v in human.values() if v.edit)}); after it: "
                   f"accepted {sum(1 for _ in store.curated_candidates('accepted'))}, "
                   f"rejected {sum(1 for _ in store.curated_candidates('rejected'))}")
    click.echo(f"  tasks {len(states)}: " + ", ".join(f"{s} {list(states.values()).count(s)}" for s in sorted(set(states.values()))))
    click.echo(f"  calls {totals['calls']}  reused {totals['responses_reused_from_cache']}  failures {totals['failures']}")
    click.echo(f"  tokens in {usage.input_tokens:,} cache-read {usage.cache_read_input_tokens:,} "
               f"cache-write {usage.cache_creation_input_tokens:,} out {usage.output_tokens:,}")
    cost = totals["cost_usd"]
    click.echo(f"  cost {'unknown' if cost is None else f'${cost:.4f}'}; batches in flight {len(store.open_batches())}")


@main.command(name="export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["alpaca", "sharegpt", "messages", "hf"]), default="alpaca", show_default=True,
              help="A JSONL format, or hf: a Hugging Face dataset folder (splits + dataset card).")
@click.option("--min-score", type=float, default=None, help="Only examples scoring at least this.")
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Output JSONL [<run dir>/export_<format>.jsonl]; with --format hf a folder [<run dir>/hf].")
@click.option("--set", "overrides", multiple=True, metavar="export.hf.KEY=VALUE",
              help="With --format hf: override an export.hf config key (value parsed as YAML); repeatable.")
@click.option("--push-to-hub", "hub_repo", default=None, metavar="REPO",
              help="With --format hf: upload the folder as dataset REPO (needs huggingface_hub and a token; honours HF_ENDPOINT).")
def export_command(run_dir: str, fmt: str, min_score: float | None, output: str | None, overrides: tuple[str, ...],
                   hub_repo: str | None) -> None:
    """Re-export a run's accepted examples (as curated in `ootgen review`) in another format (no API call)."""
    from pathlib import Path

    from .store import RunStore

    store = RunStore.open_run_dir(Path(run_dir), readonly=True)
    if fmt == "hf":
        from .hf import export_hf, hf_settings, push_to_hub

        folder = Path(output) if output else Path(run_dir) / "hf"
        result = export_hf(store, folder, run_name=Path(run_dir).resolve().name, settings=hf_settings(store, overrides),
                           min_score=min_score)
        for warning in result.warnings:
            click.echo(f"ootgen: warning: {warning}", err=True)
        sizes = ", ".join(f"{split} {n}" for split, n in result.sizes.items())
        click.echo(f"wrote {result.folder} ({sizes}; {result.groups} leak-free groups), {result.card}")
        if hub_repo:
            click.echo(f"pushed to {push_to_hub(result.folder, hub_repo)}")
        return
    if overrides or hub_repo:
        raise click.UsageError("--set and --push-to-hub go with --format hf")
    from .export import export_run

    target = store.get_meta("target")
    out = Path(output) if output else Path(run_dir) / f"export_{fmt}.jsonl"
    paths = export_run(store, output=out, target=target, fmt=fmt, min_score=min_score, stop_reason="export")
    click.echo(f"wrote {paths['dataset']} ({fmt}), {paths['metadata']}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--port", type=click.IntRange(min=0, max=65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--no-browser", is_flag=True, help="Print the address instead of opening a browser.")
def review(run_dir: str, port: int, no_browser: bool) -> None:
    """Curate a run in a local web page: filter, read, accept, reject or edit examples (safe while it runs)."""
    from pathlib import Path

    from .review import serve

    serve(Path(run_dir), port=port, open_browser=not no_browser, announce=click.echo)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the HTML report [RUN_DIR/report.html].")
def report(run_dir: str, out_path: str | None) -> None:
    """Write a self-contained HTML report of a run (read-only; safe while it runs)."""
    from pathlib import Path

    from .report import write_report

    written = write_report(Path(run_dir), Path(out_path) if out_path else Path(run_dir) / "report.html")
    click.echo(str(written))


# --- static commands (index, check) ---


@main.command("index")
@click.argument("decomp_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", default="oot_symbols.json.gz", show_default=True, help="where to write the index")
def index_command(decomp_dir: str, output: str) -> None:
    """Build a symbol index from a zeldaret/oot checkout (tree-sitter-c)."""
    import time
    from pathlib import Path

    from .index import build_index
    from .load import check_writable

    check_writable(Path(output), key="--output")  # before a parse that takes minutes
    started = time.perf_counter()
    index = build_index(decomp_dir)
    index.save(output)
    counts = index.counts()
    parse = index.provenance.get("parse", {})
    click.echo(f"{output}: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items() if k != "renames"))
    click.echo(f"parse: {parse.get('files', 0)} files, {parse.get('files_with_errors', 0)} with syntax errors "
               f"({parse.get('error_nodes', 0)} error nodes), {len(parse.get('failed_files', []))} unreadable")
    click.echo(f"commit {index.provenance.get('commit') or 'unknown'}; {time.perf_counter() - started:.1f}s")


@main.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--config", "config", default="default", show_default=True,
              help="run preset whose scoring, checks, symbols and example types to use")
@click.option("--symbols", default=None, help="symbol index: a .json.gz or `default` [the preset's `symbols`]")
@click.option("--checks", "checks_path", default=None, help="check policy YAML [the preset's `checks`]")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@click.option("--min-score", type=float, default=None, help="acceptance threshold [the preset's scoring.threshold]")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="worker processes for large files (default: one per CPU; files under 2,000 examples use one)")
@click.option("--decomp", "decomp", default=None, type=click.Path(file_okay=False),
              help="zeldaret/oot checkout: compile each answer's C with its CC_CHECK (gcc) "
                   "[the preset's `compiler.checkout`]")
def check_command(file: str, config: str, symbols: str | None, checks_path: str | None, fmt: str,
                  min_score: float | None, jobs: int | None, decomp: str | None) -> None:
    """Static L1 checks and static-only L3 score of a JSONL file. Exit 0 all pass, 1 some fail, 2 bad input."""
    import os

    from .check import check_file, format_jsonl, format_text
    from .load import load_checks, load_run_config, load_types
    from .symbols import SymbolIndex
    from .validate.compile import checkout_from_config, open_compiler

    preset = load_run_config(config)
    compiler = open_compiler(decomp or checkout_from_config(preset.compiler, preset.grounding), version=preset.compiler.version)
    symbols = symbols or preset.symbols
    types = {name: t.as_template_vars() for name, t in load_types(preset).items()}
    report = check_file(file, index=SymbolIndex.load(symbols), checks=load_checks(checks_path or preset.checks),
                        scoring=preset.scoring, min_score=min_score, example_types=types,
                        jobs=jobs or os.cpu_count() or 1, symbols=symbols, compiler=compiler)
    if fmt == "jsonl":
        click.echo(report.compiler_status, err=True)
    click.echo(format_text(report) if fmt == "text" else format_jsonl(report))
    sys.exit(0 if report.failed == 0 else 1)


# --- end static commands ---
