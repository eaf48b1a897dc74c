"""``python -m vsrkit.cli``."""

from vsrkit.jobs import catch_signals

catch_signals()  # a SIGTERM or Ctrl-C during the imports below is kept for the command, not raised in them

from vsrkit.cli.main import main  # noqa: E402

main()
