"""``python -m vsrkit.cli``."""

from vsrkit.cli.main import main

main()
