"""Work folders of long jobs: beside each output, locked while a process holds them, kept for ``--resume``.

An output ``OUT`` is made in the hidden folder ``.vsrkit-job-<hash of OUT's name>`` beside it (a short name, so a
long but legal output name still fits, and the same filesystem, so the finished output is renamed into place).
The folder holds a lock file that its process keeps locked (``flock``) until it ends, however it ends: a
folder whose lock can be taken belongs to a process that no longer exists. Such leftovers (of a run killed
by SIGKILL or a power cut) are removed by the next run for the same output, or resumed with ``--resume``;
temporary folders of the engine (``vsrkit-job-*`` in the system's temporary folder) are removed by any run.

This module is a bottom-floor utility (like ``errors``): it imports only ``errors`` and ``atomic``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from vsrkit.atomic import write_atomic_text
from vsrkit.errors import VsrkitError

JOB_PREFIX = "vsrkit-job-"
_STALE_WITHOUT_LOCK = 600  # seconds: a job folder without a lock file (killed while being made) counts as dead


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that every ``with`` block cleans up as for Ctrl-C."""


# ---------------------------------------------------------------------------------------------- signals
# SIGTERM and Ctrl-C become exceptions (Terminated, KeyboardInterrupt) in the main thread, but only at a safe point:
# never inside an import (a half-imported native library crashes at exit), a ``critical()`` section (starting or
# joining the I/O threads, cleaning up) or the interpreter's exit; there the signal is kept and raised as soon as
# the main thread is out of it (looked at again every _RETRY seconds). Before the command starts (``arm``) and after
# it ended (``disarm``) signals are only kept: the first is raised when the command starts, and a signal that comes
# while the process is ending changes nothing.
_RETRY = 0.05
_signals = {"armed": False, "depth": 0, "pending": None}


def _unsafe(frame) -> bool:  # noqa: ANN001 - a frame
    if _signals["depth"] or sys.is_finalizing():
        return True
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _raise_pending() -> None:
    signum, _signals["pending"] = _signals["pending"], None
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_signal(signum, frame):  # noqa: ANN001, ANN202 - signal handler
    if signum != signal.SIGALRM:
        _signals["pending"] = _signals["pending"] or signum
    if _signals["pending"] is None or not _signals["armed"]:
        return
    if _unsafe(frame):
        signal.setitimer(signal.ITIMER_REAL, _RETRY)  # not here: look again soon
        return
    _raise_pending()


def catch_signals() -> dict | None:
    """Take SIGTERM and SIGINT (kept, not raised, until :func:`arm`); returns the handlers they had (None when this
    is not the main thread, where signals cannot be taken)."""
    try:
        old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
        for s in old:
            signal.signal(s, _on_signal)
    except ValueError:  # not the main thread
        return None
    if old[signal.SIGTERM] is not _on_signal:  # taken afresh: a signal kept from an earlier command is stale
        _signals["pending"] = None
    return old


def restore_signals(old: dict | None) -> None:
    """Give SIGTERM and SIGINT back the handlers :func:`catch_signals` returned."""
    if not old:
        return
    disarm()
    signal.setitimer(signal.ITIMER_REAL, 0)
    for s, h in old.items():
        signal.signal(s, h)
    _signals["pending"] = None


def ignore_signals() -> None:
    """The program is ending: SIGTERM and SIGINT are ignored (Python's exit would give them their default action back,
    and a finished run would then end as killed)."""
    disarm()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)
    except ValueError:  # not the main thread
        pass


def arm() -> None:
    """The command starts: a signal is raised from now on (at once if one came before)."""
    _signals["armed"] = True
    if _signals["pending"] is not None:
        _raise_pending()


def disarm() -> None:
    """The command has ended: later signals are kept, not raised."""
    _signals["armed"] = False


@contextmanager
def critical() -> Iterator[None]:
    """Work that a signal must not cut in the middle (starting and joining threads, closing files, cleaning up): a
    SIGTERM or Ctrl-C that comes meanwhile is raised when it ends."""
    _signals["depth"] += 1
    try:
        yield
    finally:
        _signals["depth"] -= 1
        if not _signals["depth"] and _signals["armed"] and _signals["pending"] is not None:
            _raise_pending()


def raise_on_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` (and Ctrl-C KeyboardInterrupt) at safe points from now on."""
    catch_signals()
    arm()


def hold_lock(folder: Path) -> IO[str]:
    """Take ``folder/lock`` for this process (it is released when the process ends, however it ends)."""
    f = open(Path(folder) / "lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        pid = f.read().strip() or "?"
        f.close()
        raise VsrkitError(f"{folder}: in use by another vsrkit process (pid {pid})") from None
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def owner_alive(folder: Path) -> tuple[bool, str]:
    """(whether a live process holds the folder's lock, the pid written in it)."""
    lock = Path(folder) / "lock"
    try:
        f = open(lock, "r+")
    except FileNotFoundError:
        try:
            age = time.time() - Path(folder).stat().st_mtime
        except OSError:
            return False, "?"
        return age < _STALE_WITHOUT_LOCK, "?"
    except OSError:
        return True, "?"  # not ours to judge (permissions)
    with f:
        pid = f.read().strip() or "?"
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True, pid
        fcntl.flock(f, fcntl.LOCK_UN)
        return False, pid


def sweep(folder: Path, names: Callable[[str], bool] | None = None) -> list[tuple[Path, str]]:
    """Remove the job folders in ``folder`` whose process no longer exists; returns (path, pid) of each."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        name = p.name.lstrip(".")
        if not name.startswith(JOB_PREFIX) or not p.is_dir() or p.is_symlink():
            continue
        if names is not None and not names(p.name):
            continue
        alive, pid = owner_alive(p)
        if alive:
            continue
        shutil.rmtree(p, ignore_errors=True)
        if not p.exists():
            removed.append((p, pid))
    return removed


def sweep_temp(say: Callable[[str], None] | None = None) -> None:
    """Remove the engine's temporary folders left by processes that no longer exist."""
    for p, pid in sweep(Path(tempfile.gettempdir())):
        if say is not None:
            say(f"removed the temporary files of an interrupted run (pid {pid}): {p}")


def job_dir(output: Path) -> Path:
    """The work folder of ``output``: a short hidden name beside it."""
    key = hashlib.sha1(os.fsencode(Path(output).name)).hexdigest()[:16]
    return Path(output).parent / f".{JOB_PREFIX}{key}"


def _name_max(folder: Path) -> int:
    p = folder
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return os.pathconf(p, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def check_name(output: str | os.PathLike) -> None:
    """A one-line error when a part of ``output``'s path is longer than its filesystem takes."""
    output = Path(output)
    for part in output.parts:
        size = len(os.fsencode(part))
        if size > 255 or size > _name_max(output.parent):
            raise VsrkitError(f"{output}: file name too long ({size} bytes; this filesystem takes "
                              f"{min(255, _name_max(output.parent))})")


def prepare_parent(output: Path) -> list[Path]:
    """Check that ``output`` can be written before any work: its name fits the filesystem and its folder exists
    or can be made, and can be written in. Returns the folders it made (removed again by :meth:`Job.abort`)."""
    output = Path(output)
    check_name(output)
    made: list[Path] = []
    missing = []
    p = output.parent
    while not p.exists():
        missing.append(p)
        if p == p.parent:
            break
        p = p.parent
    if p.exists() and not p.is_dir():
        raise VsrkitError(f"{output}: cannot write there: {p} is a file, not a folder")
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            for m in reversed(made):
                try:
                    m.rmdir()
                except OSError:
                    pass
            raise VsrkitError(f"{output}: cannot write in {d.parent}: {e.strerror or e}") from None
        made.append(d)
    return made


class Job:
    """The work folder of one output, from the first check to the rename of the finished output.

    ``open()`` checks the output can be written (before any work), removes the leftovers of a dead process for
    the same output (or keeps them when resuming) and locks the folder. ``finish()`` removes it after the
    output is in place; ``abort()`` removes it too, or only unlocks it when the job is kept for ``--resume``.
    """

    def __init__(self, output: str | os.PathLike, resume: bool = False, say: Callable[[str], None] | None = None):
        self.output = Path(output)
        self.dir = job_dir(self.output)
        self.resume = resume
        self.say = say
        self.resumed = False  # a dead run's folder was found and kept
        self._lock: IO[str] | None = None
        self._made: list[Path] = []

    def open(self) -> "Job":
        self._made = prepare_parent(self.output)
        if self.dir.exists():
            alive, pid = owner_alive(self.dir)
            if alive:
                raise VsrkitError(f"{self.output}: another vsrkit process (pid {pid}) is writing it")
            if self.resume:
                self.resumed = True
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
                if self.say is not None:
                    self.say(f"removed the leftovers of an interrupted run (pid {pid}) for {self.output.name} "
                             "(--resume continues such a run instead)")
        try:
            self.dir.mkdir(exist_ok=True)
            self._lock = hold_lock(self.dir)
        except VsrkitError:
            raise
        except OSError as e:
            self._remove_made()
            raise VsrkitError(f"{self.output}: cannot write in {self.dir.parent}: {e.strerror or e}") from None
        return self

    # manifest: what the partial output was made with
    def check_manifest(self, manifest: dict[str, Any]) -> None:
        """Write the job's manifest, or, when resuming, refuse a job made with other inputs or options."""
        path = self.dir / "job.json"
        if self.resumed and path.exists():
            old = json.loads(path.read_text())
            for key, value in manifest.items():
                if old.get(key) != value:
                    raise VsrkitError(f"{self.output}: cannot resume: the interrupted run had {key} {old.get(key)!r}, "
                                      f"this one {value!r} (run without --resume to start again)")
            return
        self.resumed = False
        for p in self.dir.iterdir():
            if p.name != "lock":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        write_atomic_text(path, json.dumps(manifest, indent=1, sort_keys=True))

    def finish(self) -> None:
        """The output is in place: remove the work folder."""
        self._release()
        shutil.rmtree(self.dir, ignore_errors=True)

    def abort(self, keep: bool = False) -> None:
        """The run failed or was stopped: keep the folder (unlocked) for --resume, or remove it."""
        self._release()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
            self._remove_made()

    def _remove_made(self) -> None:
        for d in reversed(self._made):
            try:
                d.rmdir()
            except OSError:
                pass

    def _release(self) -> None:
        if self._lock is not None:
            try:
                self._lock.close()
            except OSError:
                pass
            self._lock = None


def disk_full(e: BaseException) -> bool:
    """Whether an error means the disk (or the file-size limit) is full."""
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
