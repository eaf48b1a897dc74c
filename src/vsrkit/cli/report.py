"""``vsrkit report``: one self-contained HTML page from eval and bench results."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import say
from vsrkit.errors import VsrkitError


@click.command()
@click.argument("results", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="The HTML file to write.")
@click.option("--title", default="vsrkit report", show_default=True, help="Page title.")
def report(results, output, title) -> None:
    """Write RESULTS (JSON of `vsrkit eval --json` and `vsrkit bench --json`) as one offline HTML page."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise VsrkitError("vsrkit report needs matplotlib: pip install 'vsrkit[report]'")
    if output.suffix.lower() not in (".html", ".htm"):
        raise VsrkitError(f"{output}: the report is an HTML file (.html)")
    if any(Path(r).resolve() == output.resolve() for r in results):
        raise VsrkitError(f"{output}: is one of the results; write the report elsewhere")
    from vsrkit.eval.report import write_report

    say(f"wrote {write_report(list(results), output, title)}")
