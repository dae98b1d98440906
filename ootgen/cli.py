"""The `ootgen` command line: a thin click layer over the library API.

Heavy modules (anthropic, jsonschema, tree-sitter) are imported inside commands so `ootgen --help` stays fast.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import OotgenError


class _Group(click.Group):
    """Turns every OotgenError into one line on stderr and its exit status (2 for bad input)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except OotgenError as error:
            click.echo(f"ootgen: error: {error}", err=True)
            sys.exit(error.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ootgen")
def main() -> None:
    """Generate instruction-tuning data about Ocarina of Time romhacking (zeldaret/oot) with Claude."""


# --- static commands (index, check) ---
# --- end static commands ---
