"""Export variant: a run's curated examples as a Hugging Face dataset folder (splits + dataset card).

`datasets.load_dataset(DIR)` reads the card's `configs:` header and returns a DatasetDict. Splits are
made from groups, not examples: near-duplicates (MinHash/LSH from dedup.py, every pair above the run's
threshold), examples sharing a topic and the steps of one ladder are joined by union-find, and each
group goes whole to one split, so validation and test measure generalisation rather than recall.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .dedup import Deduplicator, dedup_text, normalise
from .errors import ConfigError, OotgenError
from .export import accepted_for_export, record, write_atomic
from .load import recorded_settings
from .store import ACCEPTED, PENDING, REJECTED, RunStore, StoredCandidate

SPLITS = ("train", "validation", "test")
CARD_TEMPLATE = "card.md.j2"


@dataclass(frozen=True)
class HfSettings:
    """The `export.hf` config section."""

    name: str | None
    license: str | None
    language: tuple[str, ...]
    rows: str
    file_format: str
    splits: dict[str, float]
    near_threshold: float  # the run's dedup settings: what counts as a near-duplicate
    num_perm: int

    @classmethod
    def from_settings(cls, section: dict, dedup: dict) -> HfSettings:
        shares = {split: float(section["splits"][split]) for split in SPLITS}
        total = sum(shares.values())
        return cls(name=section["name"], license=section["license"], language=tuple(section["language"]),
                   rows=section["rows"], file_format=section["file_format"],
                   splits={split: share / total for split, share in shares.items()},
                   near_threshold=float(dedup["near_threshold"]), num_perm=int(dedup["num_perm"]))


@dataclass(frozen=True)
class HfExport:
    folder: Path
    files: dict[str, Path]  # split -> data file
    card: Path
    sizes: dict[str, int]
    groups: int
    warnings: tuple[str, ...]


def hf_settings(store: RunStore, overrides: Sequence[str] = ()) -> HfSettings:
    """`export.hf` as the run stored it, over the built-in defaults (runs made before the section existed),
    with `--set export.hf.KEY=VALUE` overrides applied and the result validated against the run schema."""
    import yaml

    from .load import load_run_config
    from .schemas import schema_errors

    defaults = load_run_config("default").raw
    run_settings = store.get_meta("settings", {}) or {}
    section = {**defaults["export"]["hf"], **((run_settings.get("export") or {}).get("hf") or {})}
    dedup = {**defaults["dedup"], **(run_settings.get("dedup") or {})}
    for override in overrides:
        key, sep, value = override.partition("=")
        field = key.strip().removeprefix("export.hf.")
        if not sep or field == key.strip() or "." in field:
            raise ConfigError("an export override sets one export.hf key", key=key.strip() or override,
                              expected="--set export.hf.KEY=VALUE, e.g. export.hf.license=mit")
        section[field] = yaml.safe_load(value)
    relevant = [e for e in schema_errors({"export": {"hf": section}}, "run_config") if list(e.path)[:2] == ["export", "hf"]]
    if relevant:
        error = relevant[0]
        raise ConfigError(error.message, key=".".join(str(p) for p in error.path),
                          expected="a value the run config schema allows for export.hf")
    return HfSettings.from_settings(section, dedup)


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def grow(self, item: int) -> None:
        self.parent.append(item)

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def leak_groups(examples: Iterable[StoredCandidate], *, near_threshold: float, num_perm: int) -> list[list[int]]:
    """Positions in `examples` (one pass) joined when they are near-duplicates (instruction + input, as the run's
    dedup sees them), share a topic, or are steps of one ladder. Groups in order of their first member.
    Only the dedup index (compact, see ootgen.dedup) and one int per example are kept."""
    union = _UnionFind()
    dedup = Deduplicator(near_threshold=near_threshold, num_perm=num_perm)
    first_by_key: dict[tuple[str, object], int] = {}
    for index, candidate in enumerate(examples):
        union.grow(index)
        example = candidate.example
        for repeat in dedup.similar(str(index), dedup_text(example.instruction, example.input)):
            union.union(index, int(repeat.of))
        keys: list[tuple[str, object]] = []
        if example.topic and normalise(example.topic):
            keys.append(("topic", normalise(example.topic)))
        if (candidate.extras or {}).get("ladder"):
            keys.append(("ladder", candidate.task_idx))
        for key in keys:
            union.union(index, first_by_key.setdefault(key, index))
    dedup.close()
    groups: dict[int, list[int]] = {}
    for index in range(len(union.parent)):
        groups.setdefault(union.find(index), []).append(index)
    return list(groups.values())


def assign_splits(groups: list[list[int]], shares: dict[str, float], seed: int) -> dict[str, list[int]]:
    """Whole groups to splits in a seeded random order, each to the split furthest below its share."""
    total = sum(len(g) for g in groups)
    targets = {split: shares[split] * total for split in SPLITS}
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    chosen: dict[str, list[int]] = {split: [] for split in SPLITS}
    for group_index in order:
        group = groups[group_index]
        open_splits = [s for s in SPLITS if targets[s] > 0]
        split = max(open_splits, key=lambda s: ((targets[s] - len(chosen[s])) / targets[s], -SPLITS.index(s)))
        chosen[split].extend(group)
    return {split: sorted(indexes) for split, indexes in chosen.items()}


def size_category(n: int) -> str:
    """The Hub's size_categories bucket."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def export_hf(store: RunStore, out_dir: Path, *, run_name: str, settings: HfSettings,
              min_score: float | None = None) -> HfExport:
    """Write DIR/data/{train,validation,test}.{jsonl,parquet} and DIR/README.md (the dataset card).

    Streamed from the store (issue 17): one pass builds the leak groups and the card's counts, then one pass per
    split writes its rows; only compact per-example data (an id, a group, a split) is held."""
    out_dir = Path(out_dir)
    run_settings = store.get_meta("settings", {}) or {}
    seed = int(run_settings.get("seed") or 0)
    export_settings = recorded_settings(run_settings).export

    def kept() -> Iterator[tuple[StoredCandidate, dict]]:
        for candidate in accepted_for_export(store, store.get_meta("target"), min_score):
            row = record(candidate.example, settings.rows, export_settings.alpaca_multi_turn, export_settings.empty_input)
            if row is not None:
                yield candidate, row

    tally = CardTally()
    ids = array("q")

    def counted() -> Iterator[StoredCandidate]:
        for candidate, _ in kept():
            tally.add(candidate)
            ids.append(candidate.id)
            yield candidate

    groups = leak_groups(counted(), near_threshold=settings.near_threshold, num_perm=settings.num_perm)
    by_split = assign_splits(groups, settings.splits, seed)
    split_of = np.zeros(len(ids), dtype=np.int8)
    for number, split in enumerate(SPLITS):
        split_of[by_split[split]] = number

    def split_rows(number: int) -> Iterator[dict]:
        for position, (candidate, row) in enumerate(kept()):
            if position >= len(ids) or ids[position] != candidate.id:
                raise OotgenError("the run store changed while it was exported", file=str(store.path),
                                  expected="no run writing to this run directory during the export")
            if split_of[position] == number:
                yield row

    files: dict[str, Path] = {}
    for number, split in enumerate(SPLITS):
        path = out_dir / "data" / f"{split}.{settings.file_format}"
        if settings.file_format == "parquet":
            _write_parquet(path, split_rows(number))
        else:
            write_atomic(path, (json.dumps(r, ensure_ascii=False) + "\n" for r in split_rows(number)))
        files[split] = path
    sizes = {split: len(by_split[split]) for split in SPLITS}
    warnings = []
    if not settings.license:
        warnings.append("export.hf.license is not set: the card says `license: unknown` "
                        "(set it with --set export.hf.license=ID or in the run config)")
    for split in SPLITS:
        if settings.splits[split] > 0 and sizes[split] == 0:
            warnings.append(f"the {split} split is empty ({len(ids)} examples in {len(groups)} groups)")
    card = out_dir / "README.md"
    facts = card_facts(store, tally, sizes=sizes, groups=len(groups), settings=settings,
                       name=settings.name or run_name, files={s: p.relative_to(out_dir).as_posix() for s, p in files.items()})
    write_atomic(card, [render_card(facts)])
    return HfExport(folder=out_dir, files=files, card=card, sizes=sizes, groups=len(groups), warnings=tuple(warnings))


_PARQUET_ROWS = 2000  # rows converted to an Arrow table at a time


def _write_parquet(path: Path, rows: Iterable[dict]) -> None:
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError:
        raise OotgenError("export.hf.file_format parquet needs pyarrow", key="export.hf.file_format",
                          expected="`pip install pyarrow`, or file_format: jsonl") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    iterator = iter(rows)
    chunk = list(itertools.islice(iterator, _PARQUET_ROWS))
    first = pa.Table.from_pylist(chunk)  # its schema holds for every later chunk (rows of one format)
    try:
        with pq.ParquetWriter(temp, first.schema) as writer:
            writer.write_table(first)
            while chunk := list(itertools.islice(iterator, _PARQUET_ROWS)):
                writer.write_table(pa.Table.from_pylist(chunk, schema=first.schema))
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


@dataclass
class CardTally:
    """What the card says about the exported examples, counted while they stream past."""

    total: int = 0
    contexts: Counter = field(default_factory=Counter)
    types: Counter = field(default_factory=Counter)
    complexities: Counter = field(default_factory=Counter)
    histogram: Counter = field(default_factory=Counter)
    score_sum: float = 0.0
    scored: int = 0
    commits: set = field(default_factory=set)  # bounded: the checkouts a run was grounded on

    def add(self, candidate: StoredCandidate) -> None:
        self.total += 1
        self.contexts[candidate.context] += 1
        self.types[candidate.example.type or "?"] += 1
        self.complexities[candidate.complexity] += 1
        if candidate.score is not None:
            self.histogram[min(int(candidate.score), 9)] += 1
            self.score_sum += candidate.score
            self.scored += 1
        commit = (candidate.extras or {}).get("source", {}).get("commit")
        if commit:
            self.commits.add(str(commit))


@dataclass(frozen=True)
class CardFacts:
    """Everything the dataset card states, gathered from the run store."""

    name: str
    license: str
    language: tuple[str, ...]
    size_category: str
    rows: str
    files: dict[str, str]
    sizes: dict[str, int]
    groups: int
    total: int
    model: str | None
    judges: tuple[str, ...]
    threshold: float | None
    near_threshold: float
    seed: int | None
    contexts: list[tuple[str, int, float]]
    types: list[tuple[str, int, float]]
    complexities: list[tuple[str, int, float]]
    grounding_commits: tuple[str, ...]
    candidates: dict[str, int]
    human: dict[str, int]
    histogram: list[tuple[str, int]]
    average_score: float | None
    cost_usd: float | None
    rejection_reasons: list[tuple[str, int]]


def _shares(counter: Counter) -> list[tuple[str, int, float]]:
    total = sum(counter.values()) or 1
    return [(name, n, n / total) for name, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def card_facts(store: RunStore, tally: CardTally, *, sizes: dict[str, int], groups: int,
               settings: HfSettings, name: str, files: dict[str, str]) -> CardFacts:
    run_settings = store.get_meta("settings", {}) or {}
    status: Counter[str] = Counter()
    human: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for candidate in store.curated_candidates():  # one pass, nothing kept per candidate
        status[candidate.status] += 1
        if candidate.status == REJECTED:
            reasons[(candidate.reason or "unknown").split(" (")[0].split(":")[0]] += 1
        decision = (candidate.extras or {}).get("human")
        if decision:
            human[decision["status"]] += 1
            human["edited"] += bool(decision["edited"])
    histogram = tally.histogram
    judges = run_settings.get("judges") or [((run_settings.get("judge") or {}).get("model") or run_settings.get("model"))]
    total = tally.total
    return CardFacts(
        name=name, license=settings.license or "unknown", language=settings.language, size_category=size_category(total),
        rows=settings.rows, files=files, sizes=sizes, groups=groups, total=total,
        model=run_settings.get("model"), judges=tuple(str(j) for j in judges if j),
        threshold=(run_settings.get("scoring") or {}).get("threshold"),
        near_threshold=settings.near_threshold, seed=run_settings.get("seed"),
        contexts=_shares(tally.contexts),
        types=_shares(tally.types),
        complexities=_shares(tally.complexities),
        grounding_commits=tuple(sorted(tally.commits)),
        candidates={"total": sum(status.values()), ACCEPTED: status[ACCEPTED], REJECTED: status[REJECTED], PENDING: status[PENDING]},
        human=dict(human),
        histogram=[(f"{b}–{b + 1}", histogram[b]) for b in range(10) if histogram[b]],
        average_score=round(tally.score_sum / tally.scored, 2) if tally.scored else None,
        cost_usd=store.totals()["cost_usd"],
        rejection_reasons=sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])),
    )


def render_card(facts: CardFacts) -> str:
    from .web import text_environment

    header = {
        "pretty_name": facts.name,
        "license": facts.license,
        "language": list(facts.language),
        "task_categories": ["text-generation", "question-answering"],
        "tags": ["ocarina-of-time", "decompilation", "romhacking", "synthetic", "ootgen"],
        "size_categories": [facts.size_category],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": facts.files[split]} for split in SPLITS]}],
    }
    import yaml

    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    return text_environment().get_template(CARD_TEMPLATE).render(front_matter=front, f=facts, splits=SPLITS)


def push_to_hub(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Upload the folder as a dataset repository; honours HF_ENDPOINT and the token huggingface_hub finds."""
    try:
        from huggingface_hub import HfApi, get_token
    except ImportError:
        raise OotgenError("--push-to-hub needs huggingface_hub", expected="`pip install huggingface_hub`") from None
    token = get_token()
    if not token:
        raise OotgenError("--push-to-hub needs a Hugging Face token",
                          expected="HF_TOKEN in the environment or `huggingface-cli login`")
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(folder),
                                   commit_message="ootgen export")
    except Exception as error:  # huggingface_hub raises HfHubHTTPError and friends; the token is never in them
        raise OotgenError(f"push to the Hub failed: {type(error).__name__}: {str(error).splitlines()[0]}",
                          key=repo_id) from None
    return str(getattr(commit, "commit_url", "") or repo_id)
