"""The shipped JSON Schemas are valid Draft 2020-12 schemas (ootgen.schemas no longer checks them in every process)."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ootgen import resources

SCHEMAS = sorted(p.name.removesuffix(".schema.json") for p in (resources.data_root() / "schemas").glob("*.schema.json"))


def test_every_schema_the_code_loads_is_shipped():
    assert {"run_config", "example_type", "context", "checks", "models", "generation_reply", "judge_reply",
            "alpaca_record", "metadata"} <= set(SCHEMAS)


@pytest.mark.parametrize("name", SCHEMAS)
def test_shipped_schema_is_valid_against_the_metaschema(name):
    Draft202012Validator.check_schema(json.loads(resources.schema_path(name).read_text(encoding="utf-8")))


def test_the_check_catches_a_broken_schema():
    with pytest.raises(SchemaError):
        Draft202012Validator.check_schema({"type": "objekt"})
