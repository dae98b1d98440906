"""JSON Schema validation of declarative files and model replies, with errors mapped back to YAML lines.

Schemas live in schemas/*.schema.json (data, not code); this module only loads and applies them.
"""

from __future__ import annotations

import difflib
import functools
import json
from typing import Any

from . import resources
from .errors import ConfigError
from .yamlfile import SourceMap, format_key


@functools.cache
def load_schema(name: str) -> dict:
    path = resources.schema_path(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("schema file not found", file=str(path)) from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"schema is not valid JSON: {error.msg}", file=str(path), line=error.lineno) from None


def schema_text(name: str) -> str:
    """A schema as compact JSON, for prompts that ask for JSON in text (models without structured output)."""
    return json.dumps(load_schema(name), indent=1)


@functools.cache
def _validator(name: str):
    from jsonschema import Draft202012Validator

    # The schemas ship with ootgen and tests/test_schemas.py checks each against the metaschema: checking them
    # again in every process cost about a third of a short CLI run (four schemas per `ootgen run`).
    return Draft202012Validator(load_schema(name))


def schema_errors(data: Any, name: str) -> list:
    """All jsonschema errors of `data` against schema `name`, most relevant first."""
    from jsonschema.exceptions import relevance

    return sorted(_validator(name).iter_errors(data), key=relevance)


def validate_file_data(data: Any, name: str, source: SourceMap, file: str, what: str | None = None) -> None:
    """Raise one ConfigError naming file, line, key path and what was expected, or return."""
    from jsonschema.exceptions import best_match

    nan = _nan_path(data, ())
    if nan is not None:  # YAML's .nan passes every minimum/maximum, so the schema alone cannot refuse it
        at_file, line = source.locate(nan)
        raise ConfigError("bad value .nan", file=at_file or file, line=line, key=format_key(nan), expected="a number")
    error = best_match(_validator(name).iter_errors(data))
    if error is None:
        return
    raise explain(error, source, file, what or load_schema(name).get("title", name))


def _nan_path(data: Any, path: tuple) -> tuple | None:
    if isinstance(data, float) and data != data:
        return path
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = _nan_path(value, path + (key,))
        if found is not None:
            return found
    return None


def explain(error, source: SourceMap, file: str, what: str) -> ConfigError:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(schema.get("properties", {}))
        extras = [key for key in error.instance if key not in allowed]
        key = extras[0] if extras else "?"
        hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        message = f"unknown key '{key}'" + (f"; did you mean '{hint[0]}'?" if hint else "")
        expected = "one of: " + ", ".join(allowed) if allowed else None
        at_file, line = source.locate(path + (key,))
        return ConfigError(message, file=at_file or file, line=line, key=format_key(path + (key,)), expected=expected)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        at_file, line = source.locate(path)
        return ConfigError(
            f"missing required key '{missing}'",
            file=at_file or file,
            line=line,
            key=format_key(path + (missing,)),
            expected=schema.get("properties", {}).get(missing, {}).get("description") or f"'{missing}' in {what}",
        )
    at_file, line = source.locate(path)
    return ConfigError(
        f"bad value {_short(error.instance)}",
        file=at_file or file,
        line=line,
        key=format_key(path),
        expected=_expected(error),
    )


def _expected(error) -> str:
    validator, value = error.validator, error.validator_value
    if validator == "type":
        return f"type {value if isinstance(value, str) else ' or '.join(value)}"
    if validator in ("minimum", "exclusiveMinimum"):
        return f"a number {'>=' if validator == 'minimum' else '>'} {value}"
    if validator in ("maximum", "exclusiveMaximum"):
        return f"a number {'<=' if validator == 'maximum' else '<'} {value}"
    if validator == "enum":
        return "one of: " + ", ".join(str(v) for v in value)
    if validator == "minItems":
        return f"at least {value} item(s)"
    if validator == "minLength":
        return f"a string of at least {value} character(s)"
    if validator == "pattern":
        return f"text matching {value}"
    if validator == "uniqueItems":
        return "no repeated items"
    return error.message


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
