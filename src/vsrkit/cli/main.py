"""The ``vsrkit`` command group: one thin module per command, imported when the group is built.

Every ``VsrkitError`` (what a user can fix) becomes one line on stderr and exit code 2, and so do a bad option
(click's usage errors) and a full disk; an interrupted run exits with 130 (Ctrl-C) or 143 (SIGTERM), after the same clean-up. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys

import click

from vsrkit.cli.common import say
from vsrkit.errors import VsrkitError
from vsrkit.jobs import Terminated, arm, catch_signals, disarm, disk_full, ignore_signals, restore_signals


class _Group(click.Group):
    """Runs a command; a VsrkitError (and an interrupted run) becomes one line on stderr and exit code 2.

    SIGTERM and Ctrl-C are raised only at safe points of the command (``jobs.critical``), never during an import
    or the interpreter's exit; run as the program (no ``args``), a signal after the command has ended changes
    nothing, and called with ``args`` (in tests) the caller's handlers are given back at the end."""

    def main(self, args=None, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN201 - click's signature
        old = catch_signals()
        try:
            return super().main(args, *a, **kw)
        finally:
            disarm()
            if args is not None:
                restore_signals(old)
            else:  # the program ends: a signal now would only turn its exit status into a death by that signal
                ignore_signals()

    def invoke(self, ctx: click.Context):
        try:
            arm()
            try:
                return super().invoke(ctx)
            finally:
                disarm()  # what follows (the messages below, the exit) is not cut by a late signal
        except VsrkitError as e:
            say(f"error: {e}")
            sys.exit(e.exit_code)
        except click.UsageError as e:  # a bad option or argument: one line too, naming it
            where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
            say(f"error: {' '.join(e.format_message().split()).rstrip('.')}{where}")
            sys.exit(e.exit_code)
        except KeyboardInterrupt as e:
            what = "terminated" if isinstance(e, Terminated) else "interrupted"
            say(f"{what}; " + getattr(e, "vsrkit_note", "no output was left behind"))
            sys.exit(143 if isinstance(e, Terminated) else 130)
        except OSError as e:
            if not disk_full(e):
                raise
            where = f" writing {e.filename}" if e.filename else ""
            say(f"error: {e.strerror or e}{where}; nothing was left under the output's name")
            sys.exit(VsrkitError.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vsrkit")
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """Video super-resolution: BasicVSR, IconVSR, EDVR, RLSP, edge-SR and VRT on real videos."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="vsrkit: %(levelname)s: %(message)s")


def _add_commands() -> None:
    from vsrkit.cli.bench import bench
    from vsrkit.cli.degrade import degrade
    from vsrkit.cli.demo import demo
    from vsrkit.cli.eval import eval_
    from vsrkit.cli.export import export
    from vsrkit.cli.models import models
    from vsrkit.cli.report import report
    from vsrkit.cli.train import train
    from vsrkit.cli.upscale import upscale

    for cmd in (upscale, degrade, eval_, bench, report, models, demo, train, export):
        main.add_command(cmd)


_add_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
