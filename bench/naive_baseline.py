"""The naive baseline: what the original single-file generator did, written independently of ootgen.

The original script (its user guide is ../shared/seed/) made, for every example, one generation call
asking for ONE example, then a separate Layer-1 call (technical accuracy) and a separate Layer-2 call
(usefulness), scored locally and kept it at >= 6.0. It ran sequentially, slept between requests to stay
under rate limits, sent the whole knowledge context in every request and used no prompt caching. Its own
guide estimates ~300-400 calls for 100 examples.

This script does exactly that with the synchronous `anthropic` SDK and imports nothing from ootgen: it
reads the Markdown contexts from contexts/ as plain text, writes its own prompts, parses JSON out of the
reply text with a regex (as the original did) and applies the original's scoring rule. It is the baseline
bench/run_all.py compares ootgen with, against the same fake API in the same bench run.

    python bench/naive_baseline.py --base-url URL --num-examples 30 [--sleep 1.0] [--model M]

Prints one JSON object: calls, tokens (as the server billed them), accepted, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EXAMPLE_TYPES = ["code_explanation", "feature_implementation", "debugging_help",
                 "architecture_question", "conversational", "code_modification"]
TOPICS = ["actor initialization", "collision setup", "drawing a display list", "player state flags",
          "scene loading", "save data fields", "sound effects", "an asm patch hook"]
THRESHOLD = 6.0


def load_contexts() -> list[tuple[str, str]]:
    """(name, text) of each Markdown context, front matter stripped: the original's context templates."""
    contexts = []
    for path in sorted((ROOT / "contexts").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if text.startswith("---"):
            text = text.split("---", 2)[2]
        contexts.append((path.stem, text.strip()))
    return contexts


def extract_json(text: str) -> dict | None:
    match = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.S) or re.search(r"(\{.*\})", text, re.S)
    if not match:
        return None
    try:
        data = json.loads(match.group(1))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class NaiveGenerator:
    def __init__(self, client, model: str, sleep: float) -> None:
        self.client, self.model, self.sleep = client, model, sleep
        self.calls = {"generate": 0, "technical": 0, "usefulness": 0}
        self.tokens = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                       "cache_read_input_tokens": 0}

    def ask(self, kind: str, system: str, prompt: str) -> str:
        for attempt in range(3):  # the original's exponential backoff on errors
            try:
                message = self.client.messages.create(model=self.model, max_tokens=4000, system=system,
                                                      messages=[{"role": "user", "content": prompt}])
                break
            except Exception:  # the original retried on any API error
                time.sleep(self.sleep * 2 ** attempt)
        else:
            return ""
        self.calls[kind] += 1
        for key in self.tokens:
            self.tokens[key] += getattr(message.usage, key, 0) or 0
        time.sleep(self.sleep)  # the original's pause between requests
        return "".join(getattr(block, "text", "") for block in message.content)

    def one(self, n: int, contexts: list[tuple[str, str]]) -> float | None:
        example_type = EXAMPLE_TYPES[n % len(EXAMPLE_TYPES)]
        context_name, context = contexts[n % len(contexts)]
        topic = TOPICS[n % len(TOPICS)]
        system = f"You are an expert in Ocarina of Time romhacking with the zeldaret/oot decomp.\n\n{context}"
        reply = self.ask("generate", system,
                         f"<example_type>{example_type}</example_type>\n<examples_wanted>1</examples_wanted>\n"
                         f"<topic>{topic}</topic>\nWrite one {example_type} training example about {topic} "
                         f"({context_name}). Reply with JSON: {{\"examples\": [{{\"instruction\", \"input\", \"output\"}}]}}.")
        data = extract_json(reply)
        examples = (data or {}).get("examples") or []
        if not examples or not isinstance(examples[0], dict):
            return None
        example = examples[0]
        shown = f"<candidate index=\"0\">\n{example.get('instruction', '')}\n{example.get('input', '')}\n" \
                f"{example.get('output', '')}\n</candidate>"
        technical = extract_json(self.ask("technical", system, "Layer 1: rate the technical accuracy of this example "
                                          f"from 1 to 10 and list technical issues, as JSON.\n{shown}")) or {}
        useful = extract_json(self.ask("usefulness", system, "Layer 2: rate clarity, completeness, practical value, "
                                       f"level of detail and teaching value from 1 to 10, as JSON.\n{shown}")) or {}
        return score(technical, useful, "```" in str(example.get("output", "")))


def score(technical: dict, useful: dict, has_code: bool) -> float | None:
    """The original's Layer 3: base from L1 and L2, bonuses and penalties, 0..10."""
    verdict_t = (technical.get("verdicts") or [technical])[0]
    verdict_u = (useful.get("verdicts") or [useful])[0]
    accuracy = verdict_t.get("technical_accuracy")
    scores = verdict_u.get("usefulness") or {}
    if not isinstance(accuracy, (int, float)) or not scores:
        return None
    usefulness = sum(scores.values()) / len(scores)
    value = (accuracy + usefulness) / 2
    value += 0.5 if has_code else 0
    value += 0.5 if verdict_t.get("uses_correct_terminology") else 0
    value -= min(len(verdict_t.get("technical_issues") or []), 3)
    value -= 1.5 if usefulness < 5 else 0
    return max(0.0, min(10.0, value))


def run(base_url: str, num_examples: int, *, model: str, sleep: float, max_attempts_factor: float = 3.0) -> dict:
    import anthropic

    client = anthropic.Anthropic(api_key=os.environ.get("NAIVE_KEY", "bench-key"), base_url=base_url, max_retries=2)
    generator = NaiveGenerator(client, model, sleep)
    contexts = load_contexts()
    accepted = rejected = failed = 0
    started = time.perf_counter()
    n = 0
    while accepted < num_examples and n < num_examples * max_attempts_factor:
        value = generator.one(n, contexts)
        n += 1
        if value is None:
            failed += 1
        elif value >= THRESHOLD:
            accepted += 1
        else:
            rejected += 1
    client.close()
    calls = sum(generator.calls.values())
    tokens = generator.tokens
    billed = (tokens["input_tokens"] + 1.25 * tokens["cache_creation_input_tokens"]
              + 0.1 * tokens["cache_read_input_tokens"])
    return {"accepted": accepted, "rejected": rejected, "failed": failed, "attempts": n,
            "calls": generator.calls, "api_calls": calls, "tokens": tokens,
            "calls_per_accepted": calls / accepted if accepted else None,
            "billed_input_per_accepted": billed / accepted if accepted else None,
            "seconds": time.perf_counter() - started, "sleep": sleep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--num-examples", type=int, default=30)
    parser.add_argument("--sleep", type=float, default=1.0, help="pause after each request, as the original [1.0 s]")
    parser.add_argument("--model", default="claude-sonnet-5")
    args = parser.parse_args()
    json.dump(run(args.base_url, args.num_examples, model=args.model, sleep=args.sleep), sys.stdout)
    print()


if __name__ == "__main__":
    main()
