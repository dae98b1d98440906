"""`--dry-run`: the plan summary and an offline estimate of calls, tokens and cost (no key, no network).

Token counts are estimated from prompt lengths (about 3.3 characters a token for Markdown and C); the range spans an
acceptance rate from optimistic to pessimistic.
"""

from __future__ import annotations

import math
from collections import Counter

from .generate import CHARS_PER_TOKEN
from .models import Usage
from .plan import Task, generation_vars, judge_vars, type_quotas
from .records import Example

OUTPUT_TOKENS_PER_EXAMPLE = 900  # typical answer length of a generated example
JUDGE_OUTPUT_TOKENS_PER_CANDIDATE = 220
ACCEPT_RATES = (0.85, 0.55)  # optimistic, pessimistic


def dry_run_report(project, num_examples: int) -> str:
    config = project.config
    per_call = config.generation.examples_per_call
    judge_batch = config.judge.candidates_per_call
    model = project.models.resolve(config.model)
    judge_model = project.models.resolve(config.judge_model_id)
    structured = model.structured
    quotas = type_quotas(project.mix, num_examples)
    tasks = first_wave(project, num_examples)
    contexts = Counter(t.context for t in tasks)

    # Measure real rendered prompts for a sample of tasks.
    system_tokens, gen_user_tokens, judge_user_tokens = [], [], []
    for task in tasks[: min(len(tasks), 24)]:
        prompt = project.renderer.generation_prompt(
            generation_vars(task, project, structured=structured), override=project.types[task.type].generate_template
        )
        system_tokens.append((len(prompt.system) + len(prompt.rules) + len(prompt.instructions)) // CHARS_PER_TOKEN)
        gen_user_tokens.append(len(prompt.user) // CHARS_PER_TOKEN)
        fake = [(Example(instruction="x" * 300, output="y" * 3600, type=task.type), task.complexity)] * min(judge_batch, per_call)
        judge_user_tokens.append(len(project.renderer.judge_prompt(judge_vars(fake, project, task.context, structured=structured)).user) // CHARS_PER_TOKEN)
    sys_avg = sum(system_tokens) / len(system_tokens)
    gen_avg = sum(gen_user_tokens) / len(gen_user_tokens)
    judge_avg = sum(judge_user_tokens) / len(judge_user_tokens)

    lines = [
        f"dry run: {num_examples} accepted examples wanted, {per_call} per generation call, {judge_batch} per judge call",
        f"model {model.id}" + ("" if model.known else " (unknown: cost cannot be estimated)") + f", judge {judge_model.id}",
        "type quotas (accepted examples): " + ", ".join(f"{k} {v}" for k, v in sorted(quotas.items())),
        f"first wave: {len(tasks)} generation calls, on contexts " + ", ".join(f"{k} {v}" for k, v in sorted(contexts.items())),
        "",
        f"{'acceptance':>12} {'gen calls':>10} {'judge calls':>12} {'input tok':>10} {'cached tok':>11} {'output tok':>11} {'cost USD':>9}",
    ]
    for rate in ACCEPT_RATES:
        # Each type asks for its own quota over the acceptance rate, in calls of at most `per_call` of its own.
        asked = {name: math.ceil(quota / rate) for name, quota in quotas.items() if quota}
        candidates = sum(asked.values())
        gen_calls = max(len(tasks), sum(math.ceil(n / per_call) for n in asked.values()))
        judge_calls = math.ceil(candidates / judge_batch)
        n_contexts = max(1, len(contexts))
        gen_usage = Usage(
            input_tokens=int(gen_calls * gen_avg),
            output_tokens=int(candidates * OUTPUT_TOKENS_PER_EXAMPLE),
            cache_creation_input_tokens=int(n_contexts * sys_avg),
            cache_read_input_tokens=int(max(0, gen_calls - n_contexts) * sys_avg),
        )
        judge_usage = Usage(
            input_tokens=int(judge_calls * judge_avg),
            output_tokens=int(candidates * JUDGE_OUTPUT_TOKENS_PER_CANDIDATE),
            cache_read_input_tokens=int(judge_calls * sys_avg),
        )
        costs = [m.cost(u) for m, u in ((model, gen_usage), (judge_model, judge_usage))]
        cost = "unknown" if None in costs else f"{sum(costs):.2f}"
        total = gen_usage + judge_usage
        lines.append(
            f"{rate:>12.0%} {gen_calls:>10} {judge_calls:>12} {total.input_tokens + total.cache_creation_input_tokens:>10,}"
            f" {total.cache_read_input_tokens:>11,} {total.output_tokens:>11,} {cost:>9}"
        )
    lines.append("")
    lines.append("No request was sent. Estimates use ~3.3 characters per token; Message Batches (--batch) halve the cost.")
    return "\n".join(lines)


def first_wave(project, num_examples: int) -> list[Task]:
    """The generation tasks a run for `num_examples` sends first: each type's first wave, taken by the run's own
    wave logic (scheduler.type_waves, as its QuotaPlanner does), so the estimate cannot drift from it."""
    from .scheduler import Targets, type_waves

    tasks: list[Task] = []
    for waves in type_waves(project, Targets.from_config(project.config, num_examples)):
        waves.fill(lambda _task: False)
        tasks += waves.window
    return tasks
