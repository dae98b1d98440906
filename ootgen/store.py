"""Pipeline stage 7, store: one SQLite file (WAL) per run directory, the run's source of truth.

It holds the resolved config, the plan, every request and response (by request hash), every candidate
with its layer results and verdict, and batch ids in flight. Output files are exports of it. Each
write commits at once, so a killed run loses at most the call in flight, never a stored response.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, OotgenError
from .models import Usage
from .records import Example, Turn

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    idx INTEGER PRIMARY KEY, type TEXT NOT NULL, context TEXT NOT NULL, complexity TEXT NOT NULL,
    topics TEXT NOT NULL, instructions TEXT NOT NULL, extras TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'planned', attempts INTEGER NOT NULL DEFAULT 0, error TEXT
);
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY, kind TEXT NOT NULL, model TEXT NOT NULL, task_idx INTEGER,
    text TEXT, stop_reason TEXT, usage TEXT NOT NULL, cost REAL, batch INTEGER NOT NULL DEFAULT 0,
    valid INTEGER NOT NULL, error TEXT, from_cache INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task_idx INTEGER NOT NULL, slot INTEGER NOT NULL,
    type TEXT NOT NULL, context TEXT NOT NULL, complexity TEXT NOT NULL, topic TEXT,
    instruction TEXT NOT NULL, input TEXT NOT NULL, output TEXT NOT NULL, turns TEXT NOT NULL,
    findings TEXT NOT NULL DEFAULT '[]', verdict TEXT, score REAL, breakdown TEXT,
    status TEXT NOT NULL, reason TEXT, duplicate_of INTEGER, accepted_seq INTEGER, created REAL NOT NULL,
    extras TEXT NOT NULL DEFAULT '{}', dedup BLOB,
    UNIQUE(task_idx, slot)
);
CREATE INDEX IF NOT EXISTS candidates_status ON candidates(status);
CREATE INDEX IF NOT EXISTS candidates_seq ON candidates(accepted_seq);
CREATE INDEX IF NOT EXISTS candidates_status_context ON candidates(status, context, id);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task_idx INTEGER, kind TEXT NOT NULL, reason TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS waves (type TEXT PRIMARY KEY, snapshot TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, request_keys TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS human_verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    status TEXT NOT NULL, reason TEXT, edit TEXT, created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS human_verdicts_candidate ON human_verdicts(candidate_id, id);
"""

# Candidate statuses: pending (awaiting the judge), accepted, rejected.
PENDING, ACCEPTED, REJECTED = "pending", "accepted", "rejected"


@dataclass(frozen=True)
class StoredCandidate:
    id: int
    task_idx: int
    slot: int
    example: Example
    context: str
    complexity: str
    findings: list
    verdict: dict | None
    score: float | None
    breakdown: dict | None
    status: str
    reason: str | None
    accepted_seq: int | None
    extras: dict | None = None  # {"source": {function, file, line, end_line, commit}, "ladder": {"task", "step", "of"}, "question": bool}


@dataclass(frozen=True)
class HumanVerdict:
    """A person's decision on a candidate (from `ootgen review`). The model's own verdict is never changed:
    decisions are appended, the latest one per candidate is in force, and an edit carries the edited text
    (instruction, input, output) forward to later decisions."""

    candidate_id: int
    status: str  # accepted or rejected
    reason: str | None
    edit: dict | None  # {"instruction", "input", "output"} or None when the text is the model's
    created: float


class RunStore:
    """The SQLite run database. One writer (the run process); readers (status/export) may open it too."""

    FILE_NAME = "run.sqlite"

    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = Path(path)
        uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
        self.db = sqlite3.connect(uri, uri=readonly, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        if not readonly:
            self.db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives the process being killed (SIGKILL, Ctrl-C); only an OS crash or
            # power cut may roll back the last commits, and the file stays consistent either way.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_DDL)
            _migrate(self.db)
        # The single writer keeps candidate counts by status in memory (the scheduler asks for them on every
        # event); changes made inside a transaction apply only when it commits.
        self._counts: Counter | None = None if readonly else Counter(
            dict(self.db.execute("SELECT status, COUNT(*) FROM candidates GROUP BY status").fetchall()))
        self._delta: Counter = Counter()

    @classmethod
    def open_run_dir(cls, run_dir: Path, *, readonly: bool = False) -> RunStore:
        path = Path(run_dir) / cls.FILE_NAME
        if readonly and not path.is_file():
            raise OotgenError("no run database here", file=str(run_dir), expected=f"a run directory holding {cls.FILE_NAME}")
        try:
            if not readonly:
                Path(run_dir).mkdir(parents=True, exist_ok=True)
            return cls(path, readonly=readonly)
        except sqlite3.DatabaseError as error:
            raise OotgenError(f"cannot open the run database: {error}", file=str(path)) from None
        except OSError as error:
            raise OotgenError(
                f"cannot create the run directory: {error.strerror}", file=str(run_dir),
                expected="a writable folder (set --run-dir or --output)",
            ) from None

    def close(self) -> None:
        self.db.close()

    # meta ---------------------------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, json.dumps(value, default=str)))

    def bind(self, *, work_hash: str, config_hash: str, settings: dict, force: bool) -> bool:
        """Attach this store to a config. Returns True when resuming earlier work."""
        existing = self.get_meta("work_hash")
        if existing is not None and existing != work_hash:
            if not force:
                changed = _changed_settings(self.get_meta("settings") or {}, settings)
                what = ("the setting " + ", ".join(changed) + " changed" if changed
                        else "a template, context, example type, checks file or the model table changed")
                raise ConfigError(
                    f"this run directory holds a run of a different configuration ({what}); use another --run-dir, "
                    "or --force to start fresh here",
                    file=str(self.path.parent), key=", ".join(changed) or None,
                    expected="the settings the run directory was made with",
                )
            self.reset()
            existing = None
        elif existing is not None and force:
            self.reset()
            existing = None
        resuming = existing is not None
        if not resuming:
            self.set_meta("schema_version", SCHEMA_VERSION)
            self.set_meta("work_hash", work_hash)
            self.set_meta("created", time.time())
        self.set_meta("config_hash", config_hash)
        self.set_meta("settings", settings)
        return resuming

    def add_http_counts(self, counts: dict) -> None:
        """Add one session's HTTP counts (attempts, retries, faults by kind; the peak is the maximum)."""
        total = self.get_meta("http") or {"attempts": 0, "retries": 0, "peak_concurrency": 0, "faults": {}}
        total["attempts"] += counts["attempts"]
        total["retries"] += counts["retries"]
        total["peak_concurrency"] = max(total["peak_concurrency"], counts["peak_concurrency"])
        for kind, n in counts["faults"].items():
            total["faults"][kind] = total["faults"].get(kind, 0) + n
        self.set_meta("http", total)

    def reset(self) -> None:
        with self.transaction():
            for table in ("meta", "tasks", "requests", "candidates", "failures", "batches", "human_verdicts", "waves"):
                self.db.execute(f"DELETE FROM {table}")
        self._counts = Counter()

    def transaction(self):
        return _Transaction(self)

    # tasks --------------------------------------------------------------------------------------

    def save_tasks(self, tasks) -> None:
        with self.transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO tasks(idx, type, context, complexity, topics, instructions, extras) VALUES(?,?,?,?,?,?,?)",
                [(t.index, t.type, t.context, t.complexity, json.dumps(t.topics), json.dumps(t.instructions), json.dumps(t.extras()))
                 for t in tasks],
            )

    def task_states(self) -> dict[int, str]:
        return {row[0]: row[1] for row in self.db.execute("SELECT idx, state FROM tasks")}

    def set_task_state(self, idx: int, state: str, error: str | None = None) -> None:
        self.db.execute("UPDATE tasks SET state=?, attempts=attempts+1, error=? WHERE idx=?", (state, error, idx))

    def save_wave_snapshot(self, type_name: str, snapshot: dict) -> None:
        """A type's planner state at its latest wave boundary (scheduler.TypeWaves.snapshot)."""
        self.db.execute("INSERT OR REPLACE INTO waves(type, snapshot) VALUES(?, ?)", (type_name, json.dumps(snapshot)))

    def wave_snapshots(self) -> dict[str, dict]:
        return {name: json.loads(snapshot) for name, snapshot in self.db.execute("SELECT type, snapshot FROM waves")}

    # requests (responses paid for) --------------------------------------------------------------

    def get_response(self, key: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM requests WHERE key=?", (key,)).fetchone()

    def save_response(self, **response) -> None:
        self._save_response(**response)

    def _save_response(self, *, key: str, kind: str, model: str, task_idx: int | None, text: str,
                      stop_reason: str | None, usage: Usage, cost: float | None, batch: bool,
                      valid: bool, error: str | None, from_cache: bool) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO requests(key, kind, model, task_idx, text, stop_reason, usage, cost, batch, valid, error, from_cache, created)"
            " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, kind, model, task_idx, text, stop_reason, json.dumps(usage.as_dict()), cost, int(batch),
             int(valid), error, int(from_cache), time.time()),
        )

    def record_failure(self, task_idx: int | None, kind: str, reason: str) -> None:
        self.db.execute("INSERT INTO failures(task_idx, kind, reason, created) VALUES(?,?,?,?)", (task_idx, kind, reason, time.time()))

    # candidates ---------------------------------------------------------------------------------

    def commit_generation(self, response: dict | None, rows: list[dict], task_idx: int) -> None:
        """Store a generation response, its candidates and the task's new state in one transaction.

        A response is never stored without its effect, so a resumed run never asks for it again.
        """
        with self.transaction():
            if response is not None:
                self._save_response(**response)
            for row in rows:
                self._insert_candidate(row)
            self.db.execute("UPDATE tasks SET state='done', attempts=attempts+1 WHERE idx=?", (task_idx,))

    def commit_judgement(self, responses: list[dict], results: list[dict]) -> list[int]:
        """Store judge responses and every verdict they carry in one transaction; returns accepted seqs."""
        seqs = []
        with self.transaction():
            for response in responses:
                self._save_response(**response)
            for result in results:
                seq = self._finish_candidate(**result)
                if seq is not None:
                    seqs.append(seq)
        return seqs

    def _insert_candidate(self, row: dict) -> None:
        example: Example = row["example"]
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO candidates(task_idx, slot, type, context, complexity, topic, instruction, input, output,"
            " turns, findings, status, reason, duplicate_of, score, breakdown, created, extras, dedup)"
            " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (row["task_idx"], row["slot"], example.type, row["context"], row["complexity"], example.topic,
             example.instruction, example.input, example.output,
             json.dumps([[t.role, t.content] for t in example.turns]), json.dumps(row["findings"]),
             row["status"], row.get("reason"), row.get("duplicate_of"), row.get("score"),
             json.dumps(row.get("breakdown")) if row.get("breakdown") else None, time.time(), json.dumps(row.get("extras") or {}),
             row.get("dedup")),
        )
        self._delta[row["status"]] += cursor.rowcount  # 0 when the slot was already stored

    def _finish_candidate(self, cid: int, *, status: str, reason: str | None, verdict: dict | None,
                          score: float | None, breakdown: dict | None) -> int | None:
        seq = None
        if status == ACCEPTED:
            seq = (self.db.execute("SELECT COALESCE(MAX(accepted_seq), 0) FROM candidates").fetchone()[0]) + 1
        cursor = self.db.execute(
            "UPDATE candidates SET status=?, reason=?, verdict=?, score=?, breakdown=?, accepted_seq=? WHERE id=? AND status=?",
            (status, reason, json.dumps(verdict) if verdict else None, score,
             json.dumps(breakdown) if breakdown else None, seq, cid, PENDING),
        )
        if cursor.rowcount != 1:
            return None  # already decided (never judged twice)
        self._delta[PENDING] -= 1
        self._delta[status] += 1
        return seq

    def candidates(self, status: str | None = None, *, order: str = "id") -> Iterator[StoredCandidate]:
        sql = "SELECT * FROM candidates" + (" WHERE status=?" if status else "") + f" ORDER BY {order}"
        for row in self.db.execute(sql, (status,) if status else ()):
            yield _candidate(row)

    def candidates_by_ids(self, ids: list[int], status: str | None = None) -> list[StoredCandidate]:
        """The candidates with these ids (and `status`, when given), in this order."""
        placeholders = ",".join("?" * len(ids))
        sql = f"SELECT * FROM candidates WHERE id IN ({placeholders})" + (" AND status=?" if status else "")
        rows = {row["id"]: row for row in self.db.execute(sql, (*ids, status) if status else ids)}
        return [_candidate(rows[i]) for i in ids if i in rows]

    def pending_contexts(self) -> list[tuple[int, str]]:
        """(id, context) of every pending candidate, in id order: what the streaming loop groups into judge calls
        on each turn (two columns, not whole candidates: the loop runs once per completed call)."""
        return self.db.execute("SELECT id, context FROM candidates WHERE status=? ORDER BY id", (PENDING,)).fetchall()

    def pending_ids_by_context(self, limit: int) -> list[tuple[int, str]]:
        """(id, context) of at most `limit` pending candidates, grouped by context (index: status, context, id)."""
        return [(row[0], row[1]) for row in self.db.execute(
            "SELECT id, context FROM candidates WHERE status=? ORDER BY context, id LIMIT ?", (PENDING, limit))]

    def pending_by_type(self) -> Counter:
        """Pending candidates per example type (through the status index: as cheap as the pending work is small)."""
        return Counter(dict(self.db.execute("SELECT type, COUNT(*) FROM candidates WHERE status=? GROUP BY type", (PENDING,))))

    def statuses_of_tasks(self, task_indexes: list[int]) -> Counter:
        """Candidates per status among those of these tasks."""
        counts: Counter = Counter()
        for start in range(0, len(task_indexes), 500):
            chunk = task_indexes[start : start + 500]
            counts.update(dict(self.db.execute(
                f"SELECT status, COUNT(*) FROM candidates WHERE task_idx IN ({','.join('?' * len(chunk))}) GROUP BY status", chunk)))
        return counts

    def dedup_entries(self) -> Iterator[tuple[int, int, bytes | None, str, str]]:
        """(task_idx, slot, stored dedup fingerprint, instruction, input) of every candidate the live run
        added to its dedup index (it passed static L1 and was no duplicate), in insertion order."""
        yield from self.db.execute(
            "SELECT task_idx, slot, dedup, instruction, input FROM candidates WHERE NOT (status=? AND"
            " (reason LIKE 'static:%' OR reason LIKE 'duplicate%')) ORDER BY id", (REJECTED,))

    def candidate(self, candidate_id: int) -> StoredCandidate | None:
        row = self.db.execute("SELECT * FROM candidates WHERE id=?", (candidate_id,)).fetchone()
        return _candidate(row) if row else None

    def count(self, status: str | None = None) -> int:
        """Candidates with `status` (all candidates when None)."""
        if self._counts is not None:
            return sum(self._counts.values()) if status is None else self._counts[status]
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM candidates WHERE status=?", (status,)).fetchone()[0]

    # human verdicts (ootgen review) --------------------------------------------------------------

    def record_human_verdict(self, candidate_id: int, status: str, *, reason: str | None = None,
                             edit: dict | None = None) -> HumanVerdict:
        """Append a person's decision; without `edit`, an earlier edit of the candidate stays in force."""
        if status not in (ACCEPTED, REJECTED):
            raise ValueError(f"a human verdict is accepted or rejected, not {status!r}")
        with self.transaction():
            if self.db.execute("SELECT 1 FROM candidates WHERE id=?", (candidate_id,)).fetchone() is None:
                raise KeyError(candidate_id)
            if edit is None:
                earlier = self.human_verdict(candidate_id)
                edit = earlier.edit if earlier else None
            verdict = HumanVerdict(candidate_id, status, reason, edit, time.time())
            self.db.execute(
                "INSERT INTO human_verdicts(candidate_id, status, reason, edit, created) VALUES(?,?,?,?,?)",
                (candidate_id, status, reason, json.dumps(edit) if edit else None, verdict.created),
            )
        return verdict

    def human_verdict(self, candidate_id: int) -> HumanVerdict | None:
        """The decision in force for one candidate."""
        if not self._has_human_verdicts():
            return None
        row = self.db.execute("SELECT * FROM human_verdicts WHERE candidate_id=? ORDER BY id DESC LIMIT 1",
                              (candidate_id,)).fetchone()
        return _human_verdict(row) if row else None

    def human_verdicts(self) -> dict[int, HumanVerdict]:
        """The decision in force for every candidate a person has decided on."""
        if not self._has_human_verdicts():
            return {}
        rows = self.db.execute("SELECT * FROM human_verdicts WHERE id IN (SELECT MAX(id) FROM human_verdicts GROUP BY candidate_id)")
        return {row["candidate_id"]: _human_verdict(row) for row in rows}

    def human_history(self, candidate_id: int) -> list[HumanVerdict]:
        if not self._has_human_verdicts():
            return []
        rows = self.db.execute("SELECT * FROM human_verdicts WHERE candidate_id=? ORDER BY id", (candidate_id,))
        return [_human_verdict(row) for row in rows]

    def curated_candidates(self, status: str | None = None, *, order: str = "id") -> Iterator[StoredCandidate]:
        """Candidates as a person left them: a human verdict overrides the status (and an edit the text);
        the model's verdict, score and findings stay as they were. Pending candidates are left alone."""
        human = self.human_verdicts()
        for candidate in self.candidates(order=order):
            curated = apply_human_verdict(candidate, human.get(candidate.id))
            if status is None or curated.status == status:
                yield curated

    def curated_by_ids(self, ids: list[int]) -> list[StoredCandidate]:
        """The candidates with these ids, in this order, as curated_candidates() gives them."""
        placeholders = ",".join("?" * len(ids))
        rows = {row["id"]: row for row in self.db.execute(f"SELECT * FROM candidates WHERE id IN ({placeholders})", ids)}
        human = self._human_verdicts_for(ids)
        return [apply_human_verdict(_candidate(rows[i]), human.get(i)) for i in ids if i in rows]

    def _human_verdicts_for(self, ids: list[int]) -> dict[int, HumanVerdict]:
        if not self._has_human_verdicts():
            return {}
        placeholders = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT * FROM human_verdicts WHERE id IN (SELECT MAX(id) FROM human_verdicts"
            f" WHERE candidate_id IN ({placeholders}) GROUP BY candidate_id)", ids)
        return {row["candidate_id"]: _human_verdict(row) for row in rows}

    def _has_human_verdicts(self) -> bool:
        # A read-only store opened on a run made before this table existed has no such table.
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='human_verdicts'").fetchone() is not None

    # batches ------------------------------------------------------------------------------------

    def save_batch_intent(self, entries: list[dict]) -> str:
        """Record a batch's entries (custom ids) before it is created; returns the record's temporary id."""
        intent = f"creating:{uuid.uuid4().hex}"
        self.db.execute(
            "INSERT INTO batches(id, kind, request_keys, status, created) VALUES(?,?,?,?,?)",
            (intent, "mixed", json.dumps(entries), "creating", time.time()),
        )
        return intent

    def set_batch_id(self, intent: str, batch_id: str) -> None:
        self.db.execute("UPDATE batches SET id=?, status='in_progress' WHERE id=?", (batch_id, intent))

    def drop_batch_intent(self, intent: str) -> None:
        self.db.execute("DELETE FROM batches WHERE id=? AND status='creating'", (intent,))

    def batch_ids(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT id FROM batches WHERE status!='creating'")}

    def open_batches(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM batches WHERE status IN ('creating', 'in_progress') ORDER BY created"))

    def close_batch(self, batch_id: str, status: str = "ended") -> None:
        self.db.execute("UPDATE batches SET status=? WHERE id=?", (status, batch_id))

    # totals -------------------------------------------------------------------------------------

    def longest_outputs(self) -> dict[tuple[str, str], int]:
        """The most output tokens of one stored reply per slot (a generation reply's candidates; a judge reply
        is one), per (kind, model): the budget's floors (budget.OutputFloors)."""
        rows = self.db.execute(
            "SELECT kind, model, MAX(json_extract(usage, '$.output_tokens') * 1.0 / COALESCE(made.n, 1)) FROM requests"
            " LEFT JOIN (SELECT task_idx, COUNT(*) AS n FROM candidates GROUP BY task_idx) AS made"
            " ON kind = 'generate' AND made.task_idx = requests.task_idx GROUP BY kind, model")
        return {(kind, model): math.ceil(longest) for kind, model, longest in rows if longest is not None}

    def totals(self) -> dict:
        # Aggregates in SQL (issue 17): a resumed 100k run does not parse every stored response's usage.
        usage = Usage()
        cost = 0.0
        cost_known = True
        calls = {"generate": 0, "judge": 0}
        cached = 0
        fields = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        sums = ", ".join(f"COALESCE(SUM(json_extract(usage, '$.{f}')), 0)" for f in fields)
        for kind, from_cache, count, unknown_cost, cost_sum, *tokens in self.db.execute(
                f"SELECT kind, from_cache, COUNT(*), SUM(cost IS NULL), COALESCE(SUM(cost), 0), {sums}"
                " FROM requests GROUP BY kind, from_cache"):
            if from_cache:
                cached += count
                continue
            usage = usage + Usage(*(int(t) for t in tokens))
            calls[kind] = calls.get(kind, 0) + count
            cost_known = cost_known and not unknown_cost
            cost += cost_sum
        failures: dict[str, int] = dict(self.db.execute(
            "SELECT substr(reason, 1, instr(reason || ':', ':') - 1) AS head, COUNT(*) FROM failures GROUP BY head"))
        return {
            "usage": usage,
            "cost_usd": round(cost, 6) if cost_known else None,
            "calls": calls,
            "responses_reused_from_cache": cached,
            "failures": failures,
            "accepted": self.count(ACCEPTED),
            "rejected": self.count(REJECTED),
            "pending": self.count(PENDING),
        }


def _migrate(db: sqlite3.Connection) -> None:
    """Columns added since a store was created (CREATE TABLE IF NOT EXISTS leaves an old table as it was)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(candidates)")}
    if "dedup" not in columns:  # issue 17: dedup fingerprints, so a resume does not recompute them
        db.execute("ALTER TABLE candidates ADD COLUMN dedup BLOB")


class _Transaction:
    def __init__(self, store: RunStore):
        self.store = store

    def __enter__(self):
        self.store._delta.clear()
        self.store.db.execute("BEGIN IMMEDIATE")
        return self.store.db

    def __exit__(self, exc_type, exc, tb):
        store = self.store
        store.db.execute("ROLLBACK" if exc_type else "COMMIT")
        if not exc_type and store._counts is not None:
            store._counts.update(store._delta)
        store._delta.clear()
        return False


def _candidate(row: sqlite3.Row) -> StoredCandidate:
    turns = tuple(Turn(role, content) for role, content in json.loads(row["turns"]))
    example = Example(
        instruction=row["instruction"], output=row["output"], input=row["input"], type=row["type"], topic=row["topic"], turns=turns
    )
    return StoredCandidate(
        id=row["id"], task_idx=row["task_idx"], slot=row["slot"], example=example, context=row["context"],
        complexity=row["complexity"], findings=json.loads(row["findings"]),
        verdict=json.loads(row["verdict"]) if row["verdict"] else None, score=row["score"],
        breakdown=json.loads(row["breakdown"]) if row["breakdown"] else None, status=row["status"],
        reason=row["reason"], accepted_seq=row["accepted_seq"], extras=json.loads(row["extras"] or "{}"),
    )


def _human_verdict(row: sqlite3.Row) -> HumanVerdict:
    return HumanVerdict(candidate_id=row["candidate_id"], status=row["status"], reason=row["reason"],
                        edit=json.loads(row["edit"]) if row["edit"] else None, created=row["created"])


HUMAN_REASON_PREFIX = "human"


def apply_human_verdict(candidate: StoredCandidate, verdict: HumanVerdict | None) -> StoredCandidate:
    """`candidate` with a person's decision applied (unchanged when there is none or it is still pending)."""
    if verdict is None or candidate.status == PENDING:
        return candidate
    example = candidate.example
    if verdict.edit:
        edit = verdict.edit
        turns = example.turns
        if turns:  # a dialogue: the edit replaces its first user turn and its last assistant turn
            first_user = next(i for i, t in enumerate(turns) if t.role == "user")
            last_assistant = max(i for i, t in enumerate(turns) if t.role == "assistant")
            turns = tuple(Turn(t.role, edit["instruction"] if i == first_user else edit["output"] if i == last_assistant
                               else t.content) for i, t in enumerate(turns))
        example = replace(example, instruction=edit["instruction"], input=edit.get("input", ""), output=edit["output"],
                          turns=turns)
    reason = None if verdict.status == ACCEPTED else f"{HUMAN_REASON_PREFIX}: {verdict.reason or 'rejected in review'}"
    extras = {**(candidate.extras or {}), "human": {"status": verdict.status, "reason": verdict.reason,
                                                    "edited": bool(verdict.edit), "at": verdict.created}}
    return replace(candidate, example=example, status=verdict.status, reason=reason, extras=extras)


_NOT_WORK = ("num_examples", "output", "concurrency", "budget")  # settings that do not change the work


def _changed_settings(before: dict, after: dict, prefix: str = "") -> list[str]:
    """Key paths whose values differ (the CLI flags set these too: --seed is `seed`, --model is `model`)."""
    changed = []
    for key in sorted(set(before) | set(after)):
        if not prefix and key in _NOT_WORK:
            continue
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += _changed_settings(old, new, f"{prefix}{key}.")
        elif old != new:
            changed.append(prefix + key)
    return changed


class ResponseCache:
    """Responses shared across runs, keyed by request hash (valid responses only)."""

    def __init__(self, path: Path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, text TEXT NOT NULL, stop_reason TEXT, usage TEXT NOT NULL, created REAL NOT NULL)"
        )

    @staticmethod
    def default_path() -> Path:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "ootgen" / "responses.sqlite"

    def get(self, key: str) -> tuple[str, str | None, Usage] | None:
        row = self.db.execute("SELECT text, stop_reason, usage FROM responses WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return row[0], row[1], Usage(**json.loads(row[2]))

    def put(self, key: str, text: str, stop_reason: str | None, usage: Usage) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO responses(key, text, stop_reason, usage, created) VALUES(?,?,?,?,?)",
            (key, text, stop_reason, json.dumps(usage.as_dict()), time.time()),
        )

    def close(self) -> None:
        self.db.close()
