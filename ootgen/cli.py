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


_set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
    help="Override any config key (value parsed as YAML); repeatable.",
)


@main.command()
@click.argument("config")
@_set_option
def validate(config: str, overrides: tuple[str, ...]) -> None:
    """Load and check CONFIG (a preset file or built-in name) and everything it names; exit 0 or 2."""
    from .load import load_project
    from .offline import validation_summary

    project = load_project(config, overrides)
    click.echo(validation_summary(project))


@main.command(name="types")
@click.argument("config")
@_set_option
def list_types(config: str, overrides: tuple[str, ...]) -> None:
    """Table of example types with their contexts, complexities and mix weights."""
    from .load import load_project
    from .offline import types_table

    click.echo(types_table(load_project(config, overrides)))


@main.command()
@click.argument("config")
@_set_option
@click.option("--type", "type_name", default=None, help="Show the first planned task of this example type.")
@click.option("--seed", type=int, default=None, help="Plan with this seed instead of the config's.")
@click.option("--index", "task_index", type=int, default=0, show_default=True, help="Which planned task (of --type, if given).")
@click.option("--judge", is_flag=True, help="Render the judge prompt for sample candidates of that task instead.")
def render(config: str, overrides: tuple[str, ...], type_name: str | None, seed: int | None, task_index: int, judge: bool) -> None:
    """Print the exact system and user prompt of a planned task."""
    from .load import load_project
    from .offline import render_task

    if seed is not None:
        overrides = (*overrides, f"seed={seed}")
    click.echo(render_task(load_project(config, overrides), type_name=type_name, index=task_index, judge=judge))


@main.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: str, force: bool) -> None:
    """Copy the editable configs/, templates/, contexts/ and schemas/ into DIRECTORY."""
    from .offline import init_project

    for line in init_project(directory, force=force):
        click.echo(line)


# --- static commands (index, check) ---
# --- end static commands ---
