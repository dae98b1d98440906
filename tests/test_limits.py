"""The README's limits table is the one in ootgen/limits.py (names and values)."""

from __future__ import annotations

import re

from ootgen.limits import KIB, LIMITS, MIB
from tests.conftest import REPO


def _value(text: str) -> int:
    number, _, unit = text.partition(" ")
    return int(number) * {"": 1, "KiB": KIB, "MiB": MIB}[unit]


def test_readme_limits_table_matches_the_code():
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- limits-table -->")[1].split("<!-- /limits-table -->")[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", table, re.M))
    assert {name: _value(value) for name, value in rows.items()} == LIMITS.as_table()
