"""`python -m ootgen` runs the CLI."""

from .cli import main

main()
