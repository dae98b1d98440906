"""Make a JSON value that is valid against a plain JSON Schema.

Used by the fake server's default responder to answer `output_config.format` requests the way
constrained decoding would: always schema-valid. Covers the subset structured outputs accept
(object/array/string/enum/const/integer/number/boolean/null, $ref to $defs, anyOf/oneOf/allOf).
"""

from __future__ import annotations

import itertools
from typing import Any

_counter = itertools.count(1)


def instance_for(schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "value") -> Any:
    """Return a value valid against `schema`; `root` resolves local `$ref`s."""
    root = schema if root is None else root
    if schema is True or schema == {}:
        return f"{name} {next(_counter)}"
    if schema is False:
        raise ValueError("no value is valid against the schema `false`")
    if "$ref" in schema:
        return instance_for(_resolve(schema["$ref"], root), root, name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return instance_for(schema[key][0], root, name)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            part = _resolve(part["$ref"], root) if "$ref" in part else part
            for k, v in part.items():
                if k in ("properties",) and k in merged:
                    merged[k] = {**merged[k], **v}
                elif k == "required" and k in merged:
                    merged[k] = list(dict.fromkeys(merged[k] + v))
                else:
                    merged[k] = v
        return instance_for(merged, root, name)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"

    if kind == "object":
        props = schema.get("properties", {})
        out = {key: instance_for(sub, root, key) for key, sub in props.items()}
        for key in schema.get("required", []):
            if key not in out:
                extra = schema.get("additionalProperties")
                out[key] = instance_for(extra if isinstance(extra, dict) else {}, root, key)
        return out
    if kind == "array":
        items = schema.get("items", {})
        low = schema.get("minItems", 1)
        high = schema.get("maxItems", max(low, 1))
        count = max(low, min(1, high))
        values = [instance_for(items, root, name) for _ in range(count)]
        if schema.get("uniqueItems") and len(set(map(repr, values))) < len(values):
            values = values[:1]  # only reachable when minItems <= 1 would not hold; keep it simple
        return values
    if kind == "string":
        text = f"{name} {next(_counter)}"
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if high is not None:
            text = text[:high]
        return text
    if kind in ("integer", "number"):
        return _number(schema, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    raise ValueError(f"unsupported schema type {kind!r}")


def _number(schema: dict[str, Any], *, integer: bool) -> int | float:
    low = schema.get("minimum")
    high = schema.get("maximum")
    if "exclusiveMinimum" in schema:
        low = schema["exclusiveMinimum"] + (1 if integer else 0.5)
    if "exclusiveMaximum" in schema:
        high = schema["exclusiveMaximum"] - (1 if integer else 0.5)
    if low is not None and high is not None:
        value: float = (low + high) / 2
    elif low is not None:
        value = low
    elif high is not None:
        value = min(high, 0)
    else:
        value = 1
    if integer:
        value = int(value)
        if low is not None and value < low:
            value = int(low) + 1
    return value


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node
