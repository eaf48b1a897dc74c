"""What every command shares: one-line messages on stderr, numbers that are numbers."""

from __future__ import annotations

import math

import click


def say(msg: str) -> None:
    """A one-line message for the user on stderr, prefixed with the program name."""
    click.echo(f"vsrkit: {msg}", err=True)


class FiniteFloat(click.ParamType):
    """A float option that refuses NaN and the infinities (``float()`` takes ``nan`` and ``inf``)."""

    name = "number"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        v = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return v


FINITE = FiniteFloat()
