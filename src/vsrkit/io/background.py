"""Decoding and encoding in their own threads, so that the model never waits on I/O.

PyAV and the codecs release the GIL while they work, as torch does during a layer, so a reader thread
decodes the next frames and a writer thread encodes the last ones while the model runs. Queues are
short (a few frames), so memory stays bounded. An error in either thread is raised in the caller's
thread, as if the work had been done there; ``close`` stops a thread early without waiting for its
queue to drain. A thread nobody closed is stopped and joined when the interpreter exits, before it tears down
what the thread's native calls use.
"""

from __future__ import annotations

import atexit
import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

DEPTH = 4  # frames queued between a thread and the model
_POLL = 0.1  # seconds between checks of the stop flag while a queue is full or empty

_END = object()
_JOIN_AT_EXIT = 30.0  # seconds the interpreter's exit waits for a thread still in a decoder or encoder call
_live: weakref.WeakSet = weakref.WeakSet()  # the threads not closed yet


@atexit.register
def _stop_all() -> None:
    """Stop and join the threads nobody closed, before the interpreter tears down what their native calls use."""
    for worker in list(_live):
        worker._stop.set()
        worker._thread.join(_JOIN_AT_EXIT)


class Prefetch(Generic[T]):
    """Iterates ``source`` in a background thread, ``depth`` items ahead of the consumer."""

    def __init__(self, source: Iterable[T], depth: int = DEPTH, name: str = "vsrkit-decode"):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        _live.add(self)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterable[T]) -> None:
        items = iter(source)
        try:
            for item in items:
                if not self._put((True, item)):
                    return
            self._put((False, _END))
        except BaseException as e:  # raised in the consumer's thread
            self._put((False, e))
        finally:
            # a generator is closed here, by the thread that ran it, not later by whichever thread collects it
            close = getattr(items, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001 - its error (if any) was raised in the consumer's thread already
                    pass

    def __iter__(self) -> Iterator[T]:
        while True:
            ok, item = self._q.get()
            if ok:
                yield item
            elif item is _END:
                return
            else:
                raise item

    def close(self) -> None:
        """Stop reading (a generator source is closed) and wait for the thread."""
        self._stop.set()
        self._thread.join()
        _live.discard(self)


class Writer:
    """Calls ``write(*args)`` in a background thread, in order; ``done(n)`` after the n-th call."""

    def __init__(self, write: Callable[..., None], done: Callable[[int], None] | None = None, depth: int = DEPTH,
                 name: str = "vsrkit-encode"):
        self._write = write
        self._done = done
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        _live.add(self)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        try:
            while not self._stop.is_set():
                try:
                    args = self._q.get(timeout=_POLL)
                except queue.Empty:
                    continue
                if args is _END:
                    return
                self._write(*args)
                n += 1
                if self._done is not None:
                    self._done(n)
                self._q.task_done()
        except BaseException as e:
            self._error = e

    def _check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._stop.set()
            raise error

    def put(self, *args: Any) -> None:
        """Queue one call; raises the writer thread's error, if it had one."""
        while True:
            self._check()
            if not self._thread.is_alive():
                raise RuntimeError("the writer thread has stopped")
            try:
                self._q.put(args, timeout=_POLL)
                return
            except queue.Full:
                continue

    def drain(self) -> None:
        """Wait until every call queued so far is done (the thread keeps running); raises its error, if any."""
        with self._q.all_tasks_done:
            while self._q.unfinished_tasks:
                if self._error is not None or not self._thread.is_alive():
                    break
                self._q.all_tasks_done.wait(_POLL)
        self._check()
        if not self._thread.is_alive():
            raise RuntimeError("the writer thread has stopped")

    def finish(self) -> None:
        """Wait until every queued call is done; raises the writer thread's error, if any."""
        while self._thread.is_alive():
            try:
                self._q.put(_END, timeout=_POLL)
                break
            except queue.Full:
                self._check()
        self._thread.join()
        _live.discard(self)
        self._check()

    def close(self) -> None:
        """Stop without finishing the queue (after an error elsewhere) and wait for the thread."""
        self._stop.set()
        self._thread.join()
        _live.discard(self)
