"""Plan-stage helper: community questions (`--questions FILE`) as seeds for instructions.

Reads txt (one question a line), JSONL (`question`, `instruction` or `text`) or CSV (a `question`
column, else the first); each question goes to the best-fitting example type (by the `question_cues`
each type declares) and context (by words shared with its title, tags and topics).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from .errors import ConfigError
from .limits import LIMITS
from .yamlfile import read_text

_WORD = re.compile(r"[a-z][a-z0-9_]{2,}")
_STOP = {"the", "and", "how", "does", "what", "why", "can", "for", "with", "this", "that", "are", "you", "your", "from", "when",
         "into", "use", "using", "doesn", "there", "which", "have", "has", "its", "it's", "oot", "zelda", "decomp"}


def load_questions(path: str | Path) -> list[str]:
    path = Path(path)
    text = read_text(path, "questions file", max_bytes=LIMITS.questions_file_bytes)
    suffix = path.suffix.lower()
    found: list[tuple[int, str]] = []  # (line, question)
    if suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as error:
                raise ConfigError(f"not valid JSON: {error.msg}", file=str(path), line=number) from None
            value = item.get("question") or item.get("instruction") or item.get("text") if isinstance(item, dict) else None
            if not isinstance(value, str) or not value.strip():
                raise ConfigError("no question text", file=str(path), line=number, expected='{"question": "..."}')
            found.append((number, value.strip()))
    elif suffix == ".csv":
        reader = csv.reader(io.StringIO(text))
        try:
            header = [h.strip().lower() for h in next(reader)]
            column = header.index("question") if "question" in header else 0
            for row in reader:
                if column < len(row) and row[column].strip():
                    found.append((reader.line_num, row[column].strip()))
        except StopIteration:
            raise ConfigError("the CSV file is empty", file=str(path)) from None
        except csv.Error as error:
            raise ConfigError(f"not valid CSV: {error}", file=str(path), line=reader.line_num) from None
    else:
        found = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise ConfigError("no questions found", file=str(path), expected="one question per line (txt), JSONL or CSV")
    for number, question in found:
        if len(question) > LIMITS.question_chars:
            raise ConfigError(f"question is {len(question)} characters, longer than the {LIMITS.question_chars} allowed",
                              file=str(path), line=number)
    questions = [question for _, question in found]
    return questions


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def classify(question: str, project) -> tuple[str, str]:
    """(type, context) that fit the question best; ties go to the larger mix weight, then the name."""
    lowered = question.lower()
    has_code = "```" in question or bool(re.search(r"\w+\([^)]*\)\s*[;{]", question))
    mix = project.mix

    def type_score(name: str) -> tuple:
        example_type = project.types[name]
        cues = sum(1 for cue in example_type.question_cues if cue in lowered)
        code_fit = 1 if example_type.carries_input == has_code else 0
        return (cues, code_fit, mix.get(name, 0.0), name)

    type_name = max((n for n in project.types if mix.get(n, 0) > 0), key=type_score)
    words = _words(question)

    def context_score(context_id: str) -> tuple:
        context = project.contexts[context_id]
        vocabulary = _words(" ".join([context.title, *context.tags, *context.topic_names]))
        return (len(words & vocabulary), context_id)

    context_id = max(project.types[type_name].contexts, key=context_score)
    return type_name, context_id
