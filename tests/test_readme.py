"""The README is the user's manual: every command and every flag the CLI accepts must be described there."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from ootgen.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _visible_options():
    for name, command in sorted(main.commands.items()):
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                longest = max(param.opts, key=len)
                yield name, longest


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_a_readme_section(command):
    assert f"`ootgen {command}" in README


@pytest.mark.parametrize("command,flag", list(_visible_options()))
def test_every_flag_is_documented_in_readme(command, flag):
    assert flag in README, f"{command} {flag} is missing from README.md"


def test_readme_test_command_matches_ci_script():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install '.[test]'" in README and "pip install '.[test]'" in ci
    assert "python -m pytest -q" in README and "python -m pytest -q" in ci
