"""The command line: one thin click module per command (``main.py`` holds the group)."""
