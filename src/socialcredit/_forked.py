"""Run one CPU-bound function in a forked child while the parent goes on with I/O.

Bulk ingest has two big steps that do not depend on each other: writing the entries
(database time) and folding the touched subjects' standings (Python time). Threads do not
help, since both hold the GIL most of the time; a forked child sees the parent's memory
(the histories to fold) without copying or pickling it, and sends back only the result.

The child never touches the parent's database connection and leaves with `os._exit`, so no
finalizer closes a socket or a file the parent still uses. Where fork is not available the
function simply runs in-process.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from typing import Any


class WorkerError(RuntimeError):
    """The function failed in the child; the message carries its error."""


class _Inline:
    def __init__(self, value: Any):
        self._value = value

    def result(self) -> Any:
        return self._value

    def cancel(self) -> None:
        pass


class _Child:
    def __init__(self, pid: int, read_fd: int):
        self._pid = pid
        self._read_fd = read_fd
        self._done = False

    def result(self) -> Any:
        with os.fdopen(self._read_fd, "rb") as pipe:
            payload = pipe.read()
        self._reap()
        if not payload:
            raise WorkerError("the worker process died before it answered")
        ok, value = pickle.loads(payload)
        if not ok:
            raise WorkerError(value)
        return value

    def cancel(self) -> None:
        if self._done:
            return
        try:
            os.kill(self._pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(self._read_fd)
        self._reap()

    def _reap(self) -> None:
        os.waitpid(self._pid, 0)
        self._done = True


def start(function: Callable[..., Any], *args: Any, fork: bool = True):
    """Start `function(*args)`; `.result()` waits for its value, `.cancel()` abandons it."""
    if not fork or not hasattr(os, "fork"):
        return _Inline(function(*args))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 0
        try:
            os.close(read_fd)
            payload = pickle.dumps((True, function(*args)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as exc:  # reported to the parent, which raises it
            payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
            status = 1
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(status)
    os.close(write_fd)
    return _Child(pid, read_fd)
