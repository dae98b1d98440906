"""Pipeline stage 8, export: the run store -> training JSONL, rejected JSONL and metadata JSON.

Every file is written to a temporary file in the same folder and renamed into place (never half a file).
Formats: alpaca (instruction, input ("" when empty, or omitted on request), output), sharegpt (conversations: from/value)
and messages (chat role/content).
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from .diversity import Diversity, DiversityMeter
from .errors import OotgenError
from .load import recorded_settings
from .plan import type_quotas
from .records import Example
from .store import ACCEPTED, PENDING, REJECTED, RunStore, StoredCandidate

FORMATS = ("alpaca", "sharegpt", "messages")
MULTI_TURN_RULES = ("flatten", "skip")


def write_atomic(path: Path, chunks: Iterable[str]) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise OotgenError(f"cannot write output: {error.strerror}", file=str(path)) from None
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600; an output file gets the user's usual mode
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except OSError as error:  # a full disk or a vanished folder: the old file stays whole
        Path(temp).unlink(missing_ok=True)
        raise OotgenError(f"cannot write output: {error.strerror or error}; the previous file is unchanged", file=str(path)) from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def sibling(output: Path, suffix: str) -> Path:
    """oot_training_data.jsonl -> oot_training_data_metadata.json etc."""
    return output.with_name(f"{output.stem}_{suffix}")


def record(example: Example, fmt: str, multi_turn: str = "flatten", empty_input: str = "empty_string") -> dict | None:
    """One output record in `fmt`, or None when the rule drops it (multi-turn with `skip` in alpaca)."""
    turns = [(t.role, t.content) for t in example.turns] or [("user", _joined(example.instruction, example.input)), ("assistant", example.output)]
    if fmt == "sharegpt":
        return {"conversations": [{"from": "human" if role == "user" else "gpt", "value": text} for role, text in turns]}
    if fmt == "messages":
        return {"messages": [{"role": role, "content": text} for role, text in turns]}
    if example.turns:
        if multi_turn == "skip":
            return None
        # flatten: the last user message is the instruction, the dialogue before it the input.
        last_user = max(i for i, (role, _) in enumerate(turns) if role == "user")
        history = "\n\n".join(f"{'User' if r == 'user' else 'Assistant'}: {t}" for r, t in turns[:last_user])
        answer = next((t for r, t in turns[last_user + 1 :] if r == "assistant"), example.output)
        return _alpaca(turns[last_user][1], history, answer, empty_input)
    return _alpaca(example.instruction, example.input, example.output, empty_input)


def _alpaca(instruction: str, input_text: str, output: str, empty_input: str) -> dict:
    """An Alpaca row; `input` is "" when there is none (load_dataset then gives "", not None, and the usual
    Unsloth template writes nothing), or absent with `export.empty_input: omit`."""
    if input_text.strip() or empty_input != "omit":
        return {"instruction": instruction, "input": input_text if input_text.strip() else "", "output": output}
    return {"instruction": instruction, "output": output}


def _joined(instruction: str, input_text: str) -> str:
    return f"{instruction}\n\n{input_text}" if input_text.strip() else instruction


def accepted_for_export(store: RunStore, target: int | None, min_score: float | None = None) -> Iterator[StoredCandidate]:
    """`target` accepted examples: each type's first `quota` (the run's mix split by `type_quotas`) in plan
    order (task, then slot), then, when a type fell short, the others' next ones in that order. The same stored
    responses give the same dataset whatever order the calls completed in, whichever mode made them, and however
    far past its quota a type's stream ran; the steps of a difficulty ladder (one task) stay together in step
    order. Human review decides (ootgen review): its rejections drop out, its acceptances follow the model's.
    Streamed from the store: memory does not grow with the run (issue 17)."""
    mix = store.get_meta("mix")
    if not target or not mix:  # no target (every accepted example), or a run made before quotas existed
        yield from itertools.islice(_acceptable(store, min_score), target or None)
        return
    quotas = type_quotas(mix, target)
    taken = 0
    for fill in (False, True):  # the quotas first; then, when a type fell short, the others' next ones
        seen: Counter = Counter()
        for candidate in _acceptable(store, min_score):
            if taken >= target:
                return
            seen[candidate.example.type] += 1
            if (seen[candidate.example.type] > quotas.get(candidate.example.type or "", 0)) == fill:
                taken += 1
                yield candidate


def _acceptable(store: RunStore, min_score: float | None) -> Iterator[StoredCandidate]:
    for candidate in store.curated_candidates(ACCEPTED, order="accepted_seq IS NULL, task_idx, slot"):
        if min_score is None or (candidate.score or 0) >= min_score:
            yield candidate


@dataclass
class ChosenStats:
    """What the metadata says about the exported examples, gathered while they are written."""

    scores: float = 0.0
    scored: int = 0
    count: int = 0
    types: Counter = field(default_factory=Counter)
    coverage: Counter = field(default_factory=Counter)
    topics: set = field(default_factory=set)  # distinct topics: bounded by the plan's topic lists
    ids: array = field(default_factory=lambda: array("q"))  # 8 bytes an example
    diversity: DiversityMeter = field(default_factory=DiversityMeter)

    def add(self, candidate: StoredCandidate) -> None:
        self.count += 1
        if candidate.score is not None:
            self.scores += candidate.score
            self.scored += 1
        self.types[candidate.example.type] += 1
        self.coverage[f"{candidate.example.type}/{candidate.context}/{candidate.complexity}"] += 1
        if candidate.example.topic:
            self.topics.add(candidate.example.topic)
        self.ids.append(candidate.id)
        self.diversity.add(candidate.example.instruction)

    def measure_diversity(self, store: RunStore) -> Diversity | None:
        """ootgen.diversity of the exported instructions; its sample is read back from the store by id."""
        sampled = store.curated_by_ids([self.ids[i] for i in self.diversity.sample_positions()])
        return self.diversity.result([c.example.instruction for c in sampled])


def export_run(store: RunStore, *, project=None, output: Path, target: int | None, stop_reason: str = "",
               fmt: str = "alpaca", min_score: float | None = None) -> dict:
    """Write the dataset, rejected examples and metadata; return their paths. Streams from the store."""
    output = Path(output)
    recorded = recorded_settings(store.get_meta("settings", {}) or {})
    multi_turn, empty_input = recorded.export.alpaca_multi_turn, recorded.export.empty_input
    stats = ChosenStats()
    exported = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8") as provenance:
        def dataset_lines() -> Iterator[str]:
            nonlocal exported
            for candidate in accepted_for_export(store, target, min_score):
                stats.add(candidate)
                item = record(candidate.example, fmt, multi_turn, empty_input)
                if item is not None:
                    exported += 1
                    yield json.dumps(item, ensure_ascii=False) + "\n"
                    if candidate.extras:
                        entry = {"line": exported, "type": candidate.example.type, **candidate.extras}
                        provenance.write(json.dumps(entry, ensure_ascii=False) + "\n")

        write_atomic(output, dataset_lines())
        rejected_path = sibling(output, "rejected.jsonl")
        write_atomic(rejected_path, (json.dumps(_rejected_record(c), ensure_ascii=False) + "\n" for c in store.curated_candidates(REJECTED)))
        metadata = build_metadata(store, stats, exported=exported, target=target, stop_reason=stop_reason,
                                  fmt=fmt, project=project)
        provenance.seek(0)
        metadata_path = sibling(output, "metadata.json")
        write_atomic(metadata_path, _metadata_chunks(metadata, provenance))
    return {"dataset": str(output), "rejected": str(rejected_path), "metadata": str(metadata_path)}


def _metadata_chunks(metadata: dict, provenance: IO[str]) -> Iterator[str]:
    """The metadata JSON with its `example_provenance` list (where examples came from: real functions with
    file and commit, community questions, ladder steps) copied line by line from a temporary file."""
    head = json.dumps(metadata, indent=2, ensure_ascii=False)
    yield head[: head.rindex("}")].rstrip() + ',\n  "example_provenance": ['
    first = True
    for line in provenance:
        yield ("\n    " if first else ",\n    ") + line.rstrip("\n")
        first = False
    yield ("\n  ]" if not first else "]") + "\n}\n"


def _rejected_record(candidate: StoredCandidate) -> dict:
    example = candidate.example
    return {
        "id": candidate.id,
        "type": example.type,
        "context": candidate.context,
        "complexity": candidate.complexity,
        "reason": candidate.reason,
        "score": candidate.score,
        "instruction": example.instruction,
        "input": example.input,
        "output": example.output,
        "turns": [{"role": t.role, "content": t.content} for t in example.turns],
        "findings": candidate.findings,
        "provenance": candidate.extras or None,
        "judge": {k: candidate.verdict.get(k) for k in ("technical_accuracy", "technical_issues", "summary")} if candidate.verdict else None,
        "judges": (candidate.breakdown or {}).get("judges"),
    }


def build_metadata(store: RunStore, chosen: ChosenStats, *, exported: int, target: int | None,
                   stop_reason: str, fmt: str, project=None) -> dict:
    totals = store.totals()
    usage = totals["usage"]
    http = store.get_meta("http") or {"attempts": 0, "retries": 0, "peak_concurrency": 0, "faults": {}}
    # Paid for but not in this dataset: accepted beyond the target and candidates never judged. They stay in
    # the store (a later, larger --num-examples uses them); their share of the generation calls' cost:
    generation_cost: dict[int, float] = {}
    for task_idx, cost in store.db.execute("SELECT task_idx, cost FROM requests WHERE kind='generate' AND valid=1"):
        generation_cost[task_idx] = generation_cost.get(task_idx, 0.0) + (cost or 0.0)
    per_task: dict[int, int] = dict(store.db.execute("SELECT task_idx, COUNT(*) FROM candidates GROUP BY task_idx"))
    exported_ids = np.sort(np.frombuffer(chosen.ids, dtype=np.int64)) if chosen.ids else np.empty(0, dtype=np.int64)
    # One pass over every candidate (as human review left it), counting; nothing is kept per candidate.
    status_counts: Counter = Counter()
    histogram: Counter = Counter()
    per_type: dict[str, dict] = {}
    reasons: Counter = Counter()
    finding_codes: Counter = Counter()
    disagreements = human_reviewed = 0
    surplus_cost = 0.0
    for c in store.curated_candidates():
        status_counts[c.status] += 1
        if c.status in (ACCEPTED, REJECTED) and c.score is not None:
            histogram[f"{min(int(c.score), 9)}-{min(int(c.score), 9) + 1}"] += 1
        entry = per_type.setdefault(c.example.type or "?", {"candidates": 0, "accepted": 0, "rejected": 0, "pending": 0})
        entry["candidates"] += 1
        entry[c.status] = entry.get(c.status, 0) + 1
        if c.status == REJECTED:
            reasons[(c.reason or "").split(" (")[0].split(":")[0]] += 1
        finding_codes.update(f["code"] for f in c.findings)
        disagreements += bool((c.breakdown or {}).get("disagreement"))
        human_reviewed += "human" in (c.extras or {})
        if c.status == PENDING or (c.status == ACCEPTED and not _contains(exported_ids, c.id)):
            surplus_cost += generation_cost.get(c.task_idx, 0.0) / per_task[c.task_idx]
    for entry in per_type.values():
        decided = entry["accepted"] + entry["rejected"]
        entry["acceptance_rate"] = round(entry["accepted"] / decided, 3) if decided else None
    total_candidates = sum(status_counts.values())
    settings = store.get_meta("settings", {}) or {}
    read_share = usage.cache_read_input_tokens / usage.total_input if usage.total_input else 0.0
    diversity = chosen.measure_diversity(store)
    return {
        "total_examples": exported,
        "average_quality": round(chosen.scores / chosen.scored, 3) if chosen.scored else None,
        "type_distribution": dict(chosen.types),
        "target": target,
        "complete": exported >= (target or 0),
        "stop_reason": stop_reason,
        "format": fmt,
        "score_histogram": dict(sorted(histogram.items())),
        "per_type": per_type,
        "rejection_reasons": dict(reasons),
        "static_finding_codes": dict(finding_codes),
        "coverage": {"type/context/complexity": dict(sorted(chosen.coverage.items())), "distinct_topics": len(chosen.topics)},
        "diversity": diversity.as_dict() if diversity else None,
        "candidates": {"total": total_candidates, "accepted": status_counts[ACCEPTED], "rejected": status_counts[REJECTED],
                       "pending": status_counts[PENDING], "surplus_accepted": max(0, status_counts[ACCEPTED] - chosen.count),
                       "exported": exported, "surplus_generation_cost_usd": round(surplus_cost, 6),
                       "human_reviewed": human_reviewed},
        "api": {
            "calls": totals["calls"],
            "failures": totals["failures"],
            "responses_reused_from_cache": totals["responses_reused_from_cache"],
            # Counted at the HTTP transport, over every session of this run directory: what the API saw.
            "peak_concurrency": http["peak_concurrency"],
            "http_attempts": http["attempts"],
            "sdk_retries": http["retries"],
            "http_faults": http["faults"],
        },
        "tokens": {**usage.as_dict(), "cache_read_share_of_input": round(read_share, 4)},
        "cost_usd": totals["cost_usd"],
        "model": settings.get("model"),
        "judge_model": (settings.get("judge") or {}).get("model") or settings.get("model"),
        "cross_validation": {"judges": settings.get("judges") or None,
                             "rule": recorded_settings(settings).cross_validation.rule,
                             "disagreements": disagreements},
        "seed": settings.get("seed"),
        "config_hash": store.get_meta("config_hash"),
        "work_hash": store.get_meta("work_hash"),
        "duration_seconds": store.get_meta("total_duration_seconds"),
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _contains(sorted_ids: np.ndarray, candidate_id: int) -> bool:
    at = int(np.searchsorted(sorted_ids, candidate_id))
    return at < len(sorted_ids) and int(sorted_ids[at]) == candidate_id
