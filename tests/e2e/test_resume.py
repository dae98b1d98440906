"""Resuming `ootgen run`: no stored response is paid for twice, after a clean finish or a SIGKILL.

The SIGKILL trials kill real `ootgen run` processes; the reruns (after a clean finish, and the last resume of each
killed run) execute the same command in process."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ootgen.plan import type_quotas
from tests.e2e.conftest import Cli, body_hash, events, posts, query, request_key
from tests.fake_anthropic import FakeAnthropic


def _stored_keys(out) -> set[str]:
    return {row["key"] for row in out.db("SELECT key FROM requests WHERE valid=1")}


def test_rerun_sends_nothing_and_a_bigger_target_sends_only_new_work(cli: Cli):
    first = cli.run_in_process("--no-cache", num=8)
    assert first.returncode == 0, first.stderr
    out = cli.outputs()
    dataset = out.dataset.read_bytes()
    assert len(out.lines()) == 8
    seen = max(e["seq"] for e in cli.fake.log)

    again = cli.run_in_process("--no-cache", num=8)
    assert again.returncode == 0, again.stderr
    assert posts(cli.fake, since=seen) == [], "a finished run re-sent requests"
    assert out.dataset.read_bytes() == dataset
    assert next(e for e in events(again.stderr) if e["event"] == "start")["resuming"] is True

    stored = _stored_keys(out)
    accepted_before = out.metadata()["candidates"]["accepted"]  # may exceed 8: surplus is kept, not exported
    first_bodies = {body_hash(e["body"]): e for e in posts(cli.fake)}
    bigger = cli.run_in_process("--no-cache", num=12)
    assert bigger.returncode == 0, bigger.stderr
    lines = out.lines()
    assert len(lines) == 12 and len({line["instruction"] for line in lines}) == 12
    # Plan-order export: examples accepted later from earlier tasks may come first, but none of the 8 is lost.
    first_eight = [json.loads(line) for line in dataset.decode().splitlines()]
    assert all(example in lines for example in first_eight), "an example of the first 8 was lost when the target grew"
    new = posts(cli.fake, since=seen)
    assert new or accepted_before >= 12, "a bigger target sent no request"
    resent = [e["seq"] for e in new if request_key(e["body"]) in stored]
    assert not resent, f"requests whose responses were stored were sent again: {resent}"
    repeated = [e["seq"] for e in new if body_hash(e["body"]) in first_bodies and request_key(e["body"]) in stored]
    assert not repeated
    meta = out.metadata()
    assert meta["total_examples"] == 12
    assert sum(meta["api"]["calls"].values()) == len(_stored_keys(out))


def test_changed_template_is_refused_unless_forced(cli: Cli):
    first = cli.run_in_process(num=6)
    assert first.returncode == 0, first.stderr
    out = cli.outputs()
    old_keys = _stored_keys(out)
    seen = max(e["seq"] for e in cli.fake.log)

    template = cli.project / "templates" / "generate.md.j2"
    template.write_text(template.read_text() + "\nKeep every answer focused on the current decomp names.\n")
    refused = cli.run_in_process(num=6)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    message = [line for line in refused.stderr.splitlines() if line.startswith("ootgen: error")]
    assert len(message) == 1, refused.stderr
    assert "different configuration" in message[0] and "--force" in message[0]
    assert posts(cli.fake, since=seen) == []

    forced = cli.run_in_process("--force", num=6)
    assert forced.returncode == 0, forced.stderr
    assert next(e for e in events(forced.stderr) if e["event"] == "start")["resuming"] is False
    assert posts(cli.fake, since=seen), "a fresh start sent nothing"
    assert len(out.lines()) == 6
    assert not (_stored_keys(out) & old_keys), "rows of the old configuration survived --force"
    gen_prompts = [e["body"]["messages"][0]["content"] for e in posts(cli.fake, since=seen)
                   if e["body"]["output_config"]["format"]["schema"].get("title") == "generation_reply"]
    assert gen_prompts and all("current decomp names" in p for p in gen_prompts)


# --- SIGKILL -------------------------------------------------------------------------------------

KILLS = 10  # SIGKILLs in all: each trial's run is killed twice, then resumed to the end
TRIALS = 5
KILLS_PER_TRIAL = KILLS // TRIALS
TARGET = 10
CONCURRENCY = 8  # configs/default.yaml concurrency.max


@dataclass
class _Kill:
    at: float  # time.monotonic() of the kill (the fake logs with the same clock)
    segment: list[dict]  # POSTs the killed process sent
    accepted: dict[int, int]  # candidate id -> accepted_seq, in the DB after the kill
    stored: set[str]  # valid response keys in the run store after the kill
    cached: set[str]  # keys in the response cache after the kill
    finished: bool  # the process had exited before the kill


@dataclass
class _Trial:
    number: int
    cli: Cli  # with the trial's own fake server and response cache
    rng: random.Random
    kills: list[_Kill] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return f"kill{self.number}/data.jsonl"


def _cache_keys(cache_home: Path) -> set[str]:
    path = cache_home / "ootgen" / "responses.sqlite"
    if not path.exists():
        return set()
    # A kill between creating the file and creating its table leaves an empty database (seen in CI).
    if not query(path, "SELECT 1 FROM sqlite_master WHERE type='table' AND name='responses'"):
        return set()
    return {row["key"] for row in query(path, "SELECT key FROM responses")}


def _kill(trial: _Trial) -> None:
    """Start `ootgen run` processes and SIGKILL each at a random time (real processes: a kill is a process matter)."""
    cli, fake, rng, output = trial.cli, trial.cli.fake, trial.rng, trial.output
    out = cli.outputs(output)
    for _ in range(KILLS_PER_TRIAL):  # the first kill hits a fresh run, the next ones a resumed run
        since = max((e["seq"] for e in fake.log), default=0)
        launched = time.monotonic()
        proc = cli.popen(output=output, num=TARGET, progress="quiet")
        if rng.random() < 0.3:  # measured from launch: often during start-up, before any request
            deadline = launched + rng.uniform(0.2, 3.0)
        else:  # measured from the first request: while calls are in flight and being stored
            while proc.poll() is None and not posts(fake, since) and time.monotonic() - launched < 60:
                time.sleep(0.005)
            deadline = time.monotonic() + rng.uniform(0.0, 0.8)
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        finished = proc.poll() is not None
        proc.kill()  # SIGKILL, this child only
        proc.wait(timeout=30)
        at = time.monotonic()
        db = out.run_dir / "run.sqlite"
        accepted = {r["id"]: r["accepted_seq"] for r in query(db, "SELECT id, accepted_seq FROM candidates WHERE status='accepted'")} if db.exists() else {}
        stored = {r["key"] for r in query(db, "SELECT key FROM requests WHERE valid=1")} if db.exists() else set()
        trial.kills.append(_Kill(at, posts(fake, since), accepted, stored, _cache_keys(cli.cache_home), finished))


def _resume_and_check(trial: _Trial) -> None:
    """Resume the killed run to the end (in process: resuming is library behaviour) and check what it kept and paid."""
    cli, fake, output = trial.cli, trial.cli.fake, trial.output
    out = cli.outputs(output)
    since = max((e["seq"] for e in fake.log), default=0)
    final = cli.run_in_process(output=output, num=TARGET, progress="quiet")
    if final.returncode != 0:
        trial.problems.append(f"final run exit {final.returncode}: {final.stderr[-1500:]}")
        return
    segments = [k.segment for k in trial.kills] + [posts(fake, since)]

    lines = out.lines()
    if len(lines) != TARGET:
        trial.problems.append(f"{len(lines)} lines, not {TARGET}")
    if len({line["instruction"] for line in lines}) != len(lines):
        trial.problems.append("repeated instructions in the dataset")
    final_accepted = {r["id"]: r["accepted_seq"] for r in out.db("SELECT id, accepted_seq FROM candidates WHERE status='accepted'")}
    for k, kill in enumerate(trial.kills):
        lost = {cid: seq for cid, seq in kill.accepted.items() if final_accepted.get(cid) != seq}
        if lost:
            trial.problems.append(f"kill {k}: accepted candidates lost or renumbered after the restart: {lost}")
    # Each type's quota of accepted examples, in plan order.
    in_plan = out.db("SELECT instruction, turns FROM candidates WHERE status='accepted' ORDER BY task_idx, slot")
    position = {row["instruction"]: i for i, row in enumerate(in_plan) if row["turns"] == "[]"}
    order = [position[line["instruction"]] for line in lines if line["instruction"] in position]
    if order != sorted(order) or len(order) < len(lines) // 2:
        trial.problems.append(f"dataset lines out of plan order: {order}")
    quotas = type_quotas(json.loads(out.db("SELECT value FROM meta WHERE key='mix'")[0]["value"]), TARGET)
    if out.metadata()["type_distribution"] != {name: n for name, n in quotas.items() if n}:
        trial.problems.append(f"type mix {out.metadata()['type_distribution']} is not the quotas {quotas}")

    # No response that was stored (run store or response cache) at a kill was asked for again later.
    for k, kill in enumerate(trial.kills):
        paid = kill.stored | kill.cached
        for later in segments[k + 1 :]:
            again = [e["seq"] for e in later if request_key(e["body"]) in paid]
            if again:
                trial.problems.append(f"kill {k}: stored responses requested again: seqs {again}")
    # A body is sent twice only across a kill, when its first answer was still in flight (not yet stored).
    first_send: dict[str, tuple[int, dict]] = {}
    resent = 0
    for s, segment in enumerate(segments):
        in_segment: set[str] = set()
        for entry in segment:
            digest = body_hash(entry["body"])
            if digest in in_segment:
                trial.problems.append(f"seq {entry['seq']}: the same body twice in one uninterrupted run")
            in_segment.add(digest)
            if digest in first_send:
                resent += 1
                where, earlier = first_send[digest]
                kill = trial.kills[where] if where < len(trial.kills) else None
                if kill is None or where >= s:
                    trial.problems.append(f"seq {entry['seq']}: body re-sent without a kill in between")
                elif earlier["end"] is not None and earlier["end"] < kill.at - 2.0:
                    trial.problems.append(
                        f"seq {entry['seq']}: re-sent although its answer (seq {earlier['seq']}) came "
                        f"{kill.at - earlier['end']:.2f}s before the kill"
                    )
            first_send[digest] = (s, entry)
    total = sum(len(s) for s in segments)
    if resent > len(trial.kills) * CONCURRENCY * 2:
        trial.problems.append(f"{resent} re-sent bodies for {len(trial.kills)} kills")
    if total > len(set(first_send)) + len(trial.kills) * CONCURRENCY * 2:
        trial.problems.append(f"{total} POSTs for {len(first_send)} distinct bodies")


def test_sigkill_at_random_times_loses_nothing_and_never_pays_twice(project_dir: Path, preset: Path):
    with ExitStack() as servers:
        trials = []
        for number in range(TRIALS):
            rng = random.Random(1000 + number)
            fake = servers.enter_context(FakeAnthropic(api_key="test-key", responder="oot", latency_ms=rng.choice([50, 100, 150])))
            trials.append(_Trial(number, Cli(project_dir, preset, fake, cache_home=project_dir / f"cache{number}"), rng))
        with ThreadPoolExecutor(max_workers=2) as pool:  # two trials' processes at a time
            list(pool.map(_kill, trials))
        for trial in trials:  # one at a time: an in-process run owns the process's cwd and environment
            _resume_and_check(trial)
    kills = [k for t in trials for k in t.kills]
    mid_run = [k for k in kills if k.segment and not k.finished]
    assert len(kills) >= KILLS
    assert len(mid_run) >= KILLS // 2, f"only {len(mid_run)} of {len(kills)} kills hit a run with requests in flight"
    problems = [f"trial {t.number}: {p}" for t in trials for p in t.problems]
    assert not problems, "\n".join(problems)
    # Guard against a vacuous check: keys rebuilt from the bodies the fake saw match what the store holds.
    rebuilt = {request_key(e["body"]) for k in kills for e in k.segment}
    assert any(k.stored & rebuilt for k in kills), "request keys rebuilt from the wire never match the run store"
