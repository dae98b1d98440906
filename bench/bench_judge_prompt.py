"""What the judge's evidence costs: judge prompt size with and without the static findings and decomp facts.

Run as `python bench/bench_judge_prompt.py [--candidates 60]`. Candidates are written by the fake server's
OotResponder (realistic decomp-style code, some deliberately wrong), statically checked like a run does, and
judged `judge.candidates_per_call` at a time with the shipped templates. Tokens are characters / 4, as in
`ootgen run --dry-run`. Judge *effort* cannot be measured offline (the fake server does not think); see README.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ootgen.load import load_project
from ootgen.plan import judge_vars
from ootgen.records import Example, Turn
from ootgen.symbols import SymbolIndex
from ootgen.validate.static import run_static_checks
from tests.fake_anthropic.oot_responder import OotResponder

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=60)
    args = parser.parse_args()
    project = load_project(REPO / "configs" / "default.yaml")
    index = SymbolIndex.load("default")
    responder = OotResponder(bad_fraction=0.2, seed=5)
    per_call = project.config.judge.candidates_per_call
    types = ["code_explanation", "debugging_help", "code_modification", "feature_implementation", "conversational"]
    candidates = []
    for n in range(args.candidates):
        type_name = types[n % len(types)]
        item = responder._example(n, type_name, "actor movement", None if n % 5 else "missing_fn")
        example = Example(item["instruction"], item["output"], item["input"], type_name, item["topic"],
                          tuple(Turn(t["role"], t["content"]) for t in item["turns"]))
        findings = [f.as_dict() for f in run_static_checks(example, index, project.checks,
                                                          example_type=project.types[type_name].as_template_vars())]
        candidates.append((example, findings))

    sizes = {"with": 0, "without": 0}
    started = time.perf_counter()
    calls = 0
    facts_lines = 0
    for start in range(0, len(candidates), per_call):
        group = candidates[start : start + per_call]
        variables = judge_vars([(e, "intermediate") for e, _ in group], project, "actor_system", structured=True,
                               findings=[f for _, f in group])
        facts_lines += len(variables["facts"])
        sizes["with"] += len(project.renderer.judge_prompt(variables).user)
        variables["facts"] = []
        for c in variables["candidates"]:
            c["findings"] = []
        sizes["without"] += len(project.renderer.judge_prompt(variables).user)
        calls += 1
    elapsed = time.perf_counter() - started
    with_tokens, without_tokens = sizes["with"] / 4 / len(candidates), sizes["without"] / 4 / len(candidates)
    print(f"{len(candidates)} candidates, {calls} judge calls of {per_call}")
    print(f"judge user prompt per candidate: {without_tokens:.0f} tokens without evidence, {with_tokens:.0f} with "
          f"(x{with_tokens / without_tokens:.2f}); {facts_lines / len(candidates):.1f} fact lines per candidate (one list per call)")
    print(f"building the evidence: {1000 * elapsed / len(candidates):.1f} ms per candidate")


if __name__ == "__main__":
    main()
