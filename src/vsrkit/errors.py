"""The one error type users see: a clear, one-line message, exit code 2 on the command line."""


class VsrkitError(Exception):
    """A problem with the user's input (file, model name, checkpoint, option), said in one line."""

    exit_code = 2


class WorkKeptError(VsrkitError):
    """A failure in the last steps of a job (joining the video, renaming it into place), after every frame was
    made: the finished work is kept in the job's folder, where ``--resume`` finds it."""
