"""The one error type users see: a clear, one-line message, exit code 2 on the command line."""


class VsrkitError(Exception):
    """A problem with the user's input (file, model name, checkpoint, option), said in one line."""

    exit_code = 2
