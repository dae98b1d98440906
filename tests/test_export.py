"""Export records: Alpaca rows always carry `input` unless the preset asks for the original script's format."""

from __future__ import annotations

import json
import os
import stat

from ootgen.export import record, write_atomic
from ootgen.records import Example, Turn


def test_alpaca_rows_carry_an_empty_input_by_default_and_omit_it_on_request():
    plain = Example(instruction="What does Actor_Kill do?", output="It marks the actor for removal.", input="", type="t")
    assert record(plain, "alpaca") == {"instruction": plain.instruction, "input": "", "output": plain.output}
    assert record(plain, "alpaca", empty_input="omit") == {"instruction": plain.instruction, "output": plain.output}
    with_code = Example(instruction="Explain this.", output="It scales the actor.", input="Actor_SetScale(&this->actor, 0.01f);", type="t")
    for mode in ("empty_string", "omit"):
        assert record(with_code, "alpaca", empty_input=mode)["input"] == with_code.input


def test_a_flattened_single_exchange_has_an_empty_input():
    dialogue = Example(instruction="", output="", type="t", turns=(Turn("user", "Hi?"), Turn("assistant", "Hello.")))
    assert record(dialogue, "alpaca") == {"instruction": "Hi?", "input": "", "output": "Hello."}


def test_outputs_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "data.jsonl", [json.dumps({"a": 1}) + "\n"])
        os.umask(0o077)
        write_atomic(tmp_path / "private.jsonl", ["x\n"])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "data.jsonl").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.jsonl").stat().st_mode) == 0o600
