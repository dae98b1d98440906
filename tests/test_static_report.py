"""The text report of `ootgen check`: rows numbered by their line in the file, the instruction quoted, C_SYNTAX at the
line of the answer."""

from __future__ import annotations

import json
import subprocess
import sys


def test_text_report_numbers_rows_by_file_line_and_quotes_the_instruction(tmp_path):
    broken = "Here:\n\n```c\nvoid f(void) {\n    Actor_Kill(&this->actor;\n}\n```\n\nRebuild it and test it in an emulator first, then on hardware."
    rows = [{"instruction": "Kill the actor", "output": broken}, None,
            {"instruction": "Second   question\nspanning lines", "output": "Use Actor_Kill."}]
    path = tmp_path / "in.jsonl"
    path.write_text("".join((json.dumps(r) if r else "") + "\n" for r in rows))
    proc = subprocess.run([sys.executable, "-m", "ootgen", "check", str(path)], capture_output=True, text=True)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("line 1: FAIL") and lines[0].endswith('"Kill the actor"')
    assert "C_SYNTAX: C does not parse near line 5 of the output (fence 1): `Actor_Kill(&this->actor;`" in proc.stdout
    third = next(line for line in lines if line.startswith("line 3:"))
    assert third.endswith('"Second question spanning lines"')
    assert not any(line.startswith("line 2:") for line in lines)
