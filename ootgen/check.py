"""`ootgen check`: static L1 checks plus the static-only L3 score of every example in a JSONL file.

Reads Alpaca (instruction/input/output), ShareGPT (conversations) and chat (messages) lines.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .records import Example, Finding, ScoreBreakdown, Turn
from .settings import ScoringSettings
from .symbols import SymbolIndex

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant",
          "system": "system"}


@dataclass(frozen=True)
class CheckResult:
    index: int
    accepted: bool
    score: ScoreBreakdown
    findings: tuple[Finding, ...]
    line: int | None = None  # the row's line in the file
    instruction: str = ""

    def as_dict(self) -> dict:
        return {"index": self.index, "line": self.line, "accepted": self.accepted, "score": self.score.score,
                "findings": [{"code": f.code, "severity": f.severity, "message": f.message} for f in self.findings]}


@dataclass(frozen=True)
class CheckReport:
    path: str
    results: tuple[CheckResult, ...]
    by_code: dict
    threshold: float
    compiler_status: str = ""  # one line: the compiler layer is on (how) or off (why)

    @property
    def passed(self) -> int:
        return sum(r.accepted for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed


def _turns(items: list, key_role: str, key_text: str, path: str, line: int) -> Example:
    turns = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or key_role not in item or key_text not in item:
            raise ConfigError(f"turn {i} lacks `{key_role}`/`{key_text}`", file=path, line=line)
        role = _ROLES.get(str(item[key_role]).lower())
        if role is None:
            raise ConfigError(f"unknown role {item[key_role]!r}", file=path, line=line, expected="user/human, assistant/gpt, system")
        if role != "system":
            turns.append(Turn(role, str(item[key_text])))
    users = [t.content for t in turns if t.role == "user"]
    answers = [t.content for t in turns if t.role == "assistant"]
    return Example(instruction=users[0] if users else "", output=answers[-1] if answers else "", turns=tuple(turns))


@dataclass(frozen=True)
class RowProblem:
    """A JSONL row that is not an example (bad UTF-8, bad JSON, missing keys): a finding of `check`, not a crash."""

    line: int
    message: str
    expected: str | None = None


def read_rows(path: str | Path) -> Iterator[tuple[int, Example | RowProblem]]:
    """(line number, Example or RowProblem) for every non-empty line; only an unreadable file raises."""
    from .limits import LIMITS

    path = str(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - opened here to turn OSError into ConfigError
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", file=path) from None
    with fh:
        line_no = 0
        while raw := fh.readline(LIMITS.check_row_bytes + 1):
            line_no += 1
            if len(raw) > LIMITS.check_row_bytes and not raw.endswith(b"\n"):
                while (rest := fh.readline(1 << 20)) and not rest.endswith(b"\n"):
                    pass  # skip the rest of the over-long row
                yield line_no, RowProblem(line_no, f"row is longer than {LIMITS.check_row_bytes} bytes")
                continue
            if not raw.strip():
                continue
            yield line_no, _parse_row(raw, path, line_no)


def _parse_row(raw: bytes, path: str, line_no: int) -> Example | RowProblem:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return RowProblem(line_no, f"not valid UTF-8 (byte {error.start + 1} of the row)", "UTF-8 text")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as error:
        return RowProblem(line_no, f"invalid JSON: {error.msg}", "one JSON object per line")
    except RecursionError:
        return RowProblem(line_no, "invalid JSON: nested too deeply", "one JSON object per line")
    if not isinstance(obj, dict):
        return RowProblem(line_no, "not a JSON object", "one JSON object per line")
    meta = {"type": obj.get("type"), "topic": obj.get("topic")}
    try:
        if isinstance(obj.get("conversations"), list):
            ex = _turns(obj["conversations"], "from", "value", path, line_no)
        elif isinstance(obj.get("messages"), list):
            ex = _turns(obj["messages"], "role", "content", path, line_no)
        elif "instruction" in obj and "output" in obj:
            ex = Example(instruction=str(obj["instruction"]), output=str(obj["output"]), input=str(obj.get("input") or ""))
        elif "instruction" in obj or "output" in obj:
            missing = "output" if "instruction" in obj else "instruction"
            return RowProblem(line_no, f"missing key '{missing}'", "instruction/input/output")
        else:
            return RowProblem(line_no, "unknown example format", "instruction/input/output, conversations or messages")
    except ConfigError as error:
        return RowProblem(line_no, error.message, error.expected)
    return Example(ex.instruction, ex.output, ex.input, meta["type"] if isinstance(meta["type"], str) else None,
                   meta["topic"] if isinstance(meta["topic"], str) else None, ex.turns)


def read_examples(path: str | Path) -> Iterator[Example]:
    """Examples of a JSONL file; a bad line raises ConfigError naming the file and line."""
    for _, row in read_rows(path):
        if isinstance(row, RowProblem):
            raise ConfigError(row.message, file=str(path), line=row.line, expected=row.expected)
        yield row


def load_checks(path: str | Path | None = None) -> dict:
    """checks.yaml (the built-in one by default), validated: the loader's own function."""
    from .load import load_checks as load

    return load(path)


def load_scoring(config: str | Path = "default") -> ScoringSettings:
    """The `scoring:` section of a run preset (the built-in default by default), validated like a run's."""
    from .load import load_run_config

    return load_run_config(config).scoring


def load_example_types(config: str | Path = "default") -> dict[str, dict]:
    """The example types a preset names, as the plain dicts the static checks read."""
    from .load import load_run_config, load_types

    return {name: t.as_template_vars() for name, t in load_types(load_run_config(config)).items()}


_IDENTIFIER = re.compile(r"[A-Za-z_]\w{3,}")


def count_known_identifiers(example: Example, index: SymbolIndex) -> int:
    text = "\n".join(t.content for t in example.turns if t.role == "assistant") if example.turns else example.output
    return len(set(_IDENTIFIER.findall(text)) & index.symbol_names())


def check_examples(examples, *, index: SymbolIndex, checks: dict, scoring: ScoringSettings, example_types: dict | None = None,
                   min_score: float | None = None, compiled: list | None = None) -> list[CheckResult]:
    """`compiled`: the compiler layer's findings of each example (validate.compile.compile_findings), if any."""
    from .validate.score import score_candidate
    from .validate.static import compile_policy, run_static_checks, split_fences

    if min_score is not None:
        scoring = dataclasses.replace(scoring, threshold=min_score)
    example_types = example_types or {}
    policy = compile_policy(checks)
    results = []
    for i, ex in enumerate(examples):
        etype = example_types.get(ex.type or "")
        findings = run_static_checks(ex, index, policy, example_type=etype) + (compiled[i] if compiled else [])
        texts = [t.content for t in ex.turns if t.role == "assistant"] if ex.turns else [ex.output]
        has_code = any(split_fences(t)[0] for t in texts)
        score = score_candidate(findings, None, requires_code=bool(etype and etype.get("requires_code_in_output")),
                                has_code=has_code, scoring=scoring, checks=checks,
                                known_identifiers=count_known_identifiers(ex, index))
        results.append(CheckResult(i, score.accepted, score, tuple(findings)))
    return results


PARALLEL_MIN_EXAMPLES = 2000  # below this, starting worker processes costs more than it saves
_CHUNK = 500


def check_file(path: str | Path, *, index: SymbolIndex, checks: dict, scoring: ScoringSettings, min_score: float | None = None,
               example_types: dict | None = None, jobs: int = 1, symbols: str | Path = "default",
               compiler=None) -> CheckReport:
    """Check every example of a JSONL file; the report has one result per example and counts by finding code.

    With jobs > 1 and a large file, chunks are checked in worker processes (each loads `symbols` once);
    results keep the file's order.
    """
    from .validate.compile import compile_findings, open_compiler

    rows = list(read_rows(path))
    examples = [row for _, row in rows if isinstance(row, Example)]
    types = load_example_types() if example_types is None else example_types
    compiler = open_compiler(None) if compiler is None else compiler  # CompileChecker or Unavailable
    compiled = compile_findings(compiler, examples, checks)
    if jobs > 1 and len(examples) >= PARALLEL_MIN_EXAMPLES:
        checked = _check_in_processes(examples, jobs, symbols, checks, scoring, types, min_score, compiled)
    else:
        checked = check_examples(examples, index=index, checks=checks, scoring=scoring, example_types=types,
                                 min_score=min_score, compiled=compiled)
    results = _in_file_order(rows, checked)
    by_code = Counter(f.code for r in results for f in r.findings)
    threshold = min_score if min_score is not None else scoring.threshold
    return CheckReport(str(path), tuple(results), dict(sorted(by_code.items())), threshold, compiler.status)


def _in_file_order(rows: list[tuple[int, Example | RowProblem]], checked: list[CheckResult]) -> list[CheckResult]:
    """One result per row, numbered in file order; a broken row is a failed result with one ROW_INVALID finding."""
    results, done = [], iter(checked)
    for number, (line, row) in enumerate(rows):
        if isinstance(row, RowProblem):
            finding = Finding("ROW_INVALID", "error", f"line {line}: {row.message}" + (f" (expected {row.expected})" if row.expected else ""),
                              location=f"line {line}")
            results.append(CheckResult(number, False, ScoreBreakdown(0.0, 0.0, static_only=True), (finding,), line))
        else:
            results.append(dataclasses.replace(next(done), index=number, line=line, instruction=_instruction(row)))
    return results


_WORKER: dict = {}


def _init_worker(symbols: str, checks: dict, scoring: ScoringSettings, types: dict, min_score: float | None) -> None:
    _WORKER.update(index=SymbolIndex.load(symbols), checks=checks, scoring=scoring, types=types, min_score=min_score)


def _check_chunk(chunk: tuple[int, list[Example], list]) -> list[CheckResult]:
    offset, examples, compiled = chunk
    results = check_examples(examples, index=_WORKER["index"], checks=_WORKER["checks"], scoring=_WORKER["scoring"],
                             example_types=_WORKER["types"], min_score=_WORKER["min_score"], compiled=compiled)
    return [dataclasses.replace(r, index=r.index + offset) for r in results]


def _check_in_processes(examples, jobs, symbols, checks, scoring, types, min_score, compiled) -> list[CheckResult]:
    from concurrent.futures import ProcessPoolExecutor

    chunks = [(start, examples[start : start + _CHUNK], compiled[start : start + _CHUNK])
              for start in range(0, len(examples), _CHUNK)]
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                             initargs=(str(symbols), checks, scoring, types, min_score)) as pool:
        return [result for chunk in pool.map(_check_chunk, chunks) for result in chunk]


def _instruction(example: Example) -> str:
    if example.instruction or not example.turns:
        return example.instruction
    return next((t.content for t in example.turns if t.role != "assistant"), "")


def format_text(report: CheckReport) -> str:
    """One block per row: its line in the file (1-based), verdict, the instruction quoted, then its findings."""
    lines = []
    for r in report.results:
        status = "PASS" if r.accepted else "FAIL"
        where = f"line {r.line}" if r.line else f"#{r.index + 1}"
        quoted = " ".join(r.instruction.split())
        quoted = quoted if len(quoted) <= 80 else quoted[:77] + "..."
        lines.append(f"{where}: {status} score {r.score.score:.2f} (static-only)" + (f' "{quoted}"' if quoted else ""))
        for f in r.findings:
            lines.append(f"    {f.severity:<7} {f.code}: {f.message}")
    lines.append("")
    if report.compiler_status:
        lines.append(report.compiler_status)
    lines.append(f"{report.path}: {len(report.results)} examples, {report.passed} pass, {report.failed} fail "
                 f"(static-only score: L1 from static findings, L2 neutral 0.7; threshold {report.threshold:g})")
    for code, n in report.by_code.items():
        lines.append(f"    {code}: {n}")
    return "\n".join(lines)


def format_jsonl(report: CheckReport) -> str:
    return "\n".join(json.dumps(r.as_dict(), ensure_ascii=False) for r in report.results)
