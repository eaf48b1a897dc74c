"""What every command shares: one-line messages on stderr."""

from __future__ import annotations

import click


def say(msg: str) -> None:
    """A one-line message for the user on stderr, prefixed with the program name."""
    click.echo(f"vsrkit: {msg}", err=True)
