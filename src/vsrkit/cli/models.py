"""``vsrkit models [NAME] [--long]``: the named models, short enough for a 100-column terminal."""

from __future__ import annotations

import textwrap

import click

from vsrkit.hub.loader import describe_entry
from vsrkit.hub.registry import all_aliases, all_entries
from vsrkit.models.registry import get_entry

WIDTH = 100


def _legend() -> str:
    from vsrkit.models.edgesr import PLAIN_SCALE

    return ("weights: yes = here; download = fetched on first use; random = architecture only (--weights FILE). "
            f"Plain edge-SR names (esr-tr, espcn, ...) are their x{PLAIN_SCALE} models.")


def _params(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e5 else f"{n / 1e3:.0f}K"


def _short(text: str, width: int) -> str:
    text = text.split(";")[0]
    return text if len(text) <= width else text[: width - 1] + "…"


def _details(row: dict) -> list[str]:
    p = row["protocol"]
    proto = f"end padding {p.end_padding}" + (f", clips of {p.clip}" if p.clip else "") + (
        f", overlap {p.clip_overlap}" if p.clip_overlap is not None else "")
    return [
        f"{row['name']}: {row['summary']}",
        f"  family {row['family']}, {row['temporal']}, {row['scale']}, {row['channels']}, {_params(row['params'])} parameters",
        f"  weights: {row['weights']}; source: {row['source']}" + (f"; licence: {row['licence']}" if row["licence"] else ""),
        f"  protocol: {proto}",
    ]


@click.command()
@click.argument("name", required=False)
@click.option("--long", "long_", is_flag=True, help="Every detail: sources, licences, protocols.")
def models(name: str | None, long_: bool) -> None:
    """List the models: name, scale, what it is for, whether its weights are here. NAME: one model in full."""
    if name is not None:
        family, entry = get_entry(name)
        for line in _details(describe_entry(family.name, entry)):
            click.echo(line)
        return
    rows = [describe_entry(f, e) for f, e in all_entries()]
    if long_:
        for r in rows:
            for line in _details(r):
                click.echo(line)
        return
    name_w = max(len(r["name"]) for r in rows)
    fixed = name_w + 2 + 5 + 2 + 8 + 2
    click.echo(f"{'NAME'.ljust(name_w)}  SCALE  WEIGHTS   FOR")
    for r in rows:
        click.echo(f"{r['name'].ljust(name_w)}  {r['scale'].ljust(5)}  {r['weights'].ljust(8)}  "
                   f"{_short(r['summary'], WIDTH - fixed)}")
    aliases = ", ".join(f"{a} = {n}" for a, n in all_aliases().items())
    for text in (f"aliases: {aliases}", _legend(), "`vsrkit models NAME` or `--long`: sources, licences and protocols."):
        click.echo(textwrap.fill(text, WIDTH))
