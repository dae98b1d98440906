from __future__ import annotations

import json

import pytest

from ootgen.check import read_examples
from ootgen.errors import ConfigError
from tests.conftest import run_cli

GOOD = {"instruction": "Kill it", "input": "", "output": "Call it from update once the timer ends:\n\n```c\nActor_Kill(&this->actor);\n```\n\nThe actor context frees it at the end of the frame."}
BAD = {"instruction": "Kill it", "input": "", "output": "Call it from update once the timer ends:\n\n```c\nActor_Despawn(&this->actor);\n```\n\nThe actor context frees it at the end of the frame."}


def _jsonl(path, *rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_read_examples_accepts_three_formats(tmp_path):
    p = _jsonl(tmp_path / "x.jsonl", GOOD,
               {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
               {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
    examples = list(read_examples(p))
    assert examples[0].output == GOOD["output"]
    assert [t.role for t in examples[1].turns] == ["user", "assistant"]
    assert examples[2].instruction == "q" and examples[2].output == "a"


def test_bad_json_line_names_file_and_line(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text(json.dumps(GOOD) + "\n{oops\n")
    with pytest.raises(ConfigError) as info:
        list(read_examples(p))
    assert "x.jsonl:2" in str(info.value)


def test_check_exit_codes_and_formats(tmp_path):
    good = _jsonl(tmp_path / "good.jsonl", GOOD)
    r = run_cli("check", str(good))
    assert r.returncode == 0, r.stderr
    assert "static-only" in r.stdout
    mixed = _jsonl(tmp_path / "mixed.jsonl", GOOD, BAD)
    r = run_cli("check", str(mixed), "--format", "jsonl")
    assert r.returncode == 1
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["accepted"] for row in rows] == [True, False]
    assert rows[1]["findings"][0]["code"] == "UNKNOWN_FUNCTION"
    assert set(rows[1]["findings"][0]) == {"code", "severity", "message"}


def test_check_broken_rows_are_findings_with_their_line_and_the_rest_is_checked(tmp_path):
    p = tmp_path / "broken.jsonl"
    p.write_bytes(b"{nope\n" + json.dumps(GOOD).encode() + b"\n" + b'{"instruction": "x", "output": "caf\xe9"}\n'
                  + json.dumps({"instruction": "no answer"}).encode() + b"\n")
    r = run_cli("check", str(p), "--format", "jsonl")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(row["line"], row["accepted"]) for row in rows] == [(1, False), (2, True), (3, False), (4, False)]
    messages = [row["findings"][0]["message"] for row in rows if not row["accepted"]]
    assert [m.split(":")[0] for m in messages] == ["line 1", "line 3", "line 4"]
    assert "invalid JSON" in messages[0] and "UTF-8" in messages[1] and "missing key 'output'" in messages[2]


def test_check_unreadable_symbols_exits_2_with_one_line(tmp_path):
    r = run_cli("check", str(_jsonl(tmp_path / "g.jsonl", GOOD)), "--symbols", str(tmp_path / "none.json.gz"))
    assert r.returncode == 2
    assert "none.json.gz" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_index_command_builds_an_index(tmp_path):
    root = tmp_path / "oot"
    (root / "include").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "include" / "a.h").write_text("void Actor_Kill(Actor* actor);\n")
    out = tmp_path / "idx.json.gz"
    r = run_cli("index", str(root), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.exists() and "1 functions" in r.stdout


def test_check_takes_scoring_and_policy_from_a_preset(tmp_path):
    data = _jsonl(tmp_path / "x.jsonl", GOOD)
    assert run_cli("check", str(data), "--format", "jsonl").returncode == 0
    strict = tmp_path / "strict.yaml"
    strict.write_text("extends: default\nscoring:\n  threshold: 9.9\n")
    result = run_cli("check", str(data), "--config", str(strict), "--format", "jsonl")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["accepted"] is False


def test_check_with_a_broken_preset_is_one_line_exit_2(tmp_path):
    data = _jsonl(tmp_path / "x.jsonl", GOOD)
    broken = tmp_path / "broken.yaml"
    broken.write_text("extends: default\nscoring:\n  threshold: 11\n")
    result = run_cli("check", str(data), "--config", str(broken))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "broken.yaml:3" in lines[0] and "threshold" in lines[0]
