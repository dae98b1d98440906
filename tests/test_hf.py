"""`ootgen export RUN_DIR --format hf`: a folder `datasets.load_dataset` reads, with leak-free splits and a card.

The 2,000-example fixture is built with the real RunStore API (no API calls) and holds injected exact and
near-duplicates; the check that no near-duplicate pair straddles two splits recomputes every pair's
Jaccard similarity independently (word 3-gram sets, inverted index), not with ootgen's MinHash.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import pytest
import yaml

from ootgen.models import Usage
from ootgen.plan import Task
from ootgen.records import Example
from ootgen.store import ACCEPTED, PENDING, RunStore
from tests.conftest import clean_env, run_cli

datasets = pytest.importorskip("datasets")

NEAR = 0.85
SLOTS = 20
_WORDS = [f"{a}{b}" for a in ("actor", "play", "flag", "scene", "room", "save", "skel", "anim", "coll", "cam")
          for b in ("init", "update", "draw", "kill", "spawn", "timer", "pos", "rot", "scale", "state")]


def _sentence(rng: random.Random, length: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(length))


def _texts(count: int, seed: int) -> tuple[list[str], list[str], dict[int, int]]:
    """Instructions and topics; about a third are rewordings of an earlier one (variant index -> source)."""
    rng = random.Random(seed)
    texts: list[str] = []
    topics: list[str] = []
    source: dict[int, int] = {}
    for i in range(count):
        if i > 50 and rng.random() < 0.33:
            j = rng.randrange(i)
            words = texts[j].split()
            kind = rng.choice(("case", "last", "append"))
            if kind == "case":  # exact after normalisation
                text = texts[j].upper() + "?"
            elif kind == "last":  # one changed word at the end: 1 of ~40 shingles differs
                text = " ".join([*words[:-1], rng.choice(_WORDS)])
            else:
                text = " ".join([*words, rng.choice(_WORDS)])
            source[i] = j
        else:
            text = _sentence(rng, 40)
        texts.append(text)
        topics.append(f"topic {rng.randrange(1500)}")
    return texts, topics, source


def build_big_run(run_dir: Path, count: int = 2000) -> tuple[list[str], list[str], dict[int, int]]:
    texts, topics, source = _texts(count, seed=7)
    store = RunStore.open_run_dir(run_dir)
    store.bind(work_hash="w" * 16, config_hash="c" * 16, force=False,
               settings={"model": "claude-sonnet-4-5", "seed": 99, "scoring": {"threshold": 6.0},
                         "dedup": {"enabled": True, "near_threshold": NEAR, "num_perm": 64},
                         "export": {"hf": {"license": "cc-by-4.0", "name": "oot-fixture"}}})
    store.set_meta("target", count)
    tasks = [Task(index=t, type=("code_explanation", "debugging_help")[t % 2], context=("actor_system", "save_data")[t % 2],
                  complexity="beginner", topics=tuple(topics[t * SLOTS:(t + 1) * SLOTS]), instructions=("q",) * SLOTS)
             for t in range(count // SLOTS)]
    store.save_tasks(tasks)
    usage = Usage(input_tokens=100, output_tokens=100, cache_creation_input_tokens=0, cache_read_input_tokens=0)
    for task in tasks:
        rows = []
        for slot in range(SLOTS):
            n = task.index * SLOTS + slot
            example = Example(instruction=texts[n], output=f"Answer {n}: see `Actor_Kill`.", type=task.type, topic=topics[n])
            rows.append({"task_idx": task.index, "slot": slot, "example": example, "context": task.context,
                         "complexity": task.complexity, "findings": [], "status": PENDING})
        store.commit_generation(dict(key=f"g{task.index}", kind="generate", model="claude-sonnet-4-5", task_idx=task.index,
                                     text="{}", stop_reason="end_turn", usage=usage, cost=0.001, batch=False, valid=True,
                                     error=None, from_cache=False), rows, task.index)
    results = [dict(cid=c.id, status=ACCEPTED, reason=None, verdict=None, score=6.0 + (c.id % 40) / 10,
                    breakdown=None) for c in store.candidates(PENDING)]
    store.commit_judgement([], results)
    store.close()
    return texts, topics, source


def _shingles(text: str) -> frozenset:
    words = " ".join(re.sub(r"[^\w\s]+", " ", text.casefold()).split()).split()
    return frozenset(zip(words, words[1:], words[2:]))


def _near_pairs(texts: list[str]) -> list[tuple[int, int]]:
    """Every pair with Jaccard >= NEAR, by brute force over pairs sharing at least one shingle."""
    sets = [_shingles(t) for t in texts]
    index: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for shingle in s:
            index[shingle].append(i)
    candidates = {pair for ids in index.values() for pair in combinations(ids, 2)}
    return sorted((a, b) for a, b in candidates if len(sets[a] & sets[b]) / len(sets[a] | sets[b]) >= NEAR)


@pytest.fixture(scope="module")
def big_run(tmp_path_factory) -> tuple[Path, list[str], list[str], dict[int, int]]:
    run_dir = tmp_path_factory.mktemp("hf") / "run"
    texts, topics, source = build_big_run(run_dir)
    return run_dir, texts, topics, source


def _split_of_each_text(folder: Path, texts: list[str]) -> dict[int, str]:
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(texts):
        by_text[text].append(i)
    where: dict[int, str] = {}
    for split in ("train", "validation", "test"):
        for line in (folder / "data" / f"{split}.jsonl").read_text().splitlines():
            row = json.loads(line)
            number = int(row["messages"][1]["content"].split(":")[0].removeprefix("Answer "))
            where[number] = split
    return where


def test_no_near_duplicate_or_shared_topic_straddles_two_splits(big_run, tmp_path):
    run_dir, texts, topics, source = big_run
    result = run_cli("export", str(run_dir), "--format", "hf", "-o", str(tmp_path / "hf"))
    assert result.returncode == 0, result.stderr
    where = _split_of_each_text(tmp_path / "hf", texts)
    assert len(where) == len(texts) == 2000

    pairs = _near_pairs(texts)
    injected = {(j, i) for i, j in source.items()}
    assert len(pairs) >= len(injected) > 500  # the fixture holds many near-duplicates to split wrongly
    assert injected <= set(pairs)
    assert [(a, b) for a, b in pairs if where[a] != where[b]] == []
    by_topic: dict[str, set[str]] = defaultdict(set)
    for i, topic in enumerate(topics):
        by_topic[topic].add(where[i])
    assert all(len(splits) == 1 for splits in by_topic.values())

    sizes = {split: sum(1 for s in where.values() if s == split) for split in ("train", "validation", "test")}
    assert abs(sizes["train"] - 1800) <= 40 and abs(sizes["validation"] - 100) <= 20 and abs(sizes["test"] - 100) <= 20
    assert f"train {sizes['train']}, validation {sizes['validation']}, test {sizes['test']}" in result.stdout


def test_load_dataset_reads_the_folder_as_a_datasetdict_with_the_card(big_run, tmp_path):
    run_dir, texts, _, _ = big_run
    assert run_cli("export", str(run_dir), "--format", "hf", "-o", str(tmp_path / "a")).returncode == 0
    dataset = datasets.load_dataset(str(tmp_path / "a"))

    assert set(dataset) == {"train", "validation", "test"}
    assert sum(len(dataset[s]) for s in dataset) == len(texts)
    assert dataset["train"][0]["messages"][0]["role"] == "user"
    card = (tmp_path / "a" / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["license"] == "cc-by-4.0" and header["pretty_name"] == "oot-fixture"
    assert header["size_categories"] == ["1K<n<10K"] and "text-generation" in header["task_categories"]
    assert header["configs"][0]["data_files"] == [{"split": s, "path": f"data/{s}.jsonl"} for s in ("train", "validation", "test")]
    assert "# oot-fixture" in card and "| code_explanation | 1000 | 50.0 % |" in card
    assert "claude-sonnet-4-5" in card and "0.85" in card and "API cost of the run: $0.10" in card


def test_same_run_gives_the_same_splits_and_parquet_rows_match(big_run, tmp_path):
    run_dir, _, _, _ = big_run
    for name in ("x", "y"):
        assert run_cli("export", str(run_dir), "--format", "hf", "-o", str(tmp_path / name)).returncode == 0
    for split in ("train", "validation", "test"):
        assert (tmp_path / "x/data" / f"{split}.jsonl").read_bytes() == (tmp_path / "y/data" / f"{split}.jsonl").read_bytes()
    result = run_cli("export", str(run_dir), "--format", "hf", "-o", str(tmp_path / "p"),
                     "--set", "export.hf.file_format=parquet", "--set", "export.hf.rows=alpaca")
    assert result.returncode == 0, result.stderr
    parquet = datasets.load_dataset(str(tmp_path / "p"))
    assert parquet["validation"].column_names == ["instruction", "input", "output"]  # export.empty_input: empty_string
    assert len(parquet["validation"]) == len((tmp_path / "x/data/validation.jsonl").read_text().splitlines())


def test_bad_export_override_is_one_line_and_exit_2(big_run, tmp_path):
    run_dir, _, _, _ = big_run
    result = run_cli("export", str(run_dir), "--format", "hf", "-o", str(tmp_path / "z"), "--set", "export.hf.rows=csv")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "export.hf.rows" in result.stderr
    assert not (tmp_path / "z").exists()


@pytest.fixture
def fake_hub():
    from tests.fake_hub import FakeHub

    hub = FakeHub()
    yield hub
    hub.close()


def _hub_env(tmp_path: Path, hub, token: str | None) -> dict:
    env = clean_env(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop("HF_TOKEN", None)
    env.pop("HUGGING_FACE_HUB_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    return env


def test_push_to_hub_uploads_the_folder_to_hf_endpoint(big_run, tmp_path, fake_hub):
    pytest.importorskip("huggingface_hub")
    run_dir, _, _, _ = big_run
    token = "hf_test_0123456789abcdef"
    result = run_cli("export", str(run_dir), "--format", "hf", "-o", str(tmp_path / "hf"), "--push-to-hub", "me/oot-data",
                     env=_hub_env(tmp_path, fake_hub, token))
    assert result.returncode == 0, result.stderr
    assert [(r["name"], r.get("organization"), r["type"]) for r in fake_hub.repos] == [("oot-data", "me", "dataset")]
    local = {p.relative_to(tmp_path / "hf").as_posix(): p.read_bytes() for p in (tmp_path / "hf").rglob("*") if p.is_file()}
    assert fake_hub.files == local and set(local) == {"README.md", "data/train.jsonl", "data/validation.jsonl", "data/test.jsonl"}
    assert {auth for method, _, auth in fake_hub.requests if method == "POST"} == {f"Bearer {token}"}
    assert token not in result.stdout + result.stderr and "pushed to" in result.stdout


def test_push_to_hub_without_a_token_is_a_user_error_and_sends_nothing(big_run, tmp_path, fake_hub):
    pytest.importorskip("huggingface_hub")
    run_dir, _, _, _ = big_run
    result = run_cli("export", str(run_dir), "--format", "hf", "-o", str(tmp_path / "hf"), "--push-to-hub", "me/oot-data",
                     env=_hub_env(tmp_path, fake_hub, None))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "needs a Hugging Face token" in result.stderr and result.stderr.strip().count("\n") == 0
    assert [r for r in fake_hub.requests if r[0] == "POST"] == []
    assert (tmp_path / "hf" / "README.md").is_file()  # the local folder is written either way


def test_readme_formatting_snippet_runs_on_the_export(big_run, tmp_path):
    """The README's `to_text` function, copied from the README, over the loaded DatasetDict."""
    import jinja2

    run_dir, texts, _, _ = big_run
    assert run_cli("export", str(run_dir), "--format", "hf", "-o", str(tmp_path / "d")).returncode == 0
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    snippet = re.search(r"\n(def to_text\(batch\):\n(?:    .*\n)+)\ndataset = dataset\.map\(to_text, batched=True\)\n", readme)
    assert snippet, "the README no longer holds the to_text snippet"

    class StandInTokenizer:  # what apply_chat_template does with a chat template, without a model download
        template = jinja2.Template("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}")

        def apply_chat_template(self, messages, tokenize=True):
            assert tokenize is False
            return self.template.render(messages=messages)

    namespace = {"tokenizer": StandInTokenizer()}
    exec(snippet.group(1), namespace)
    dataset = datasets.load_dataset(str(tmp_path / "d")).map(namespace["to_text"], batched=True)
    row = dataset["train"][0]
    assert row["text"].startswith("<|user|>") and "<|assistant|>Answer " in row["text"]
    assert sum(len(dataset[s]) for s in dataset) == len(texts)
