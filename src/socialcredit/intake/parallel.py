"""Reading and validating the rest of a long JSON lines input in a second process, while this
one appends what is already valid.

An ingest spends a third of its time parsing lines and validating events (pseudonyms, the
policy's catalogue), work that needs nothing from the database. For a batch long enough to
stream (registry/ingest.py), the lines after its first chunk go to a child process in
blocks, and come back as ValidEvents or as the problems of their lines, in order: the same
`Validator` (the child is forked, so it holds the same policy and pseudonym key and nothing
is sent but lines and events), the same messages, the same line numbers as reading them here.

    this process                                   the child (forked)
    a thread reads the input, sends blocks  ──▶    parses and validates each block
    the appender receives them in order     ◀──    sends back (line, ValidEvent | problem)

At most `_AHEAD` blocks are in flight, so memory holds a few blocks, not the file. The child
ignores Ctrl-C (this process decides what an interrupt means and rolls back) and is killed by
the kernel if this process dies (PR_SET_PDEATHSIG): nothing of the ingest outlives it. A read
error of the input (not UTF-8) is raised here, where reading it in this process raises it.
"""

from __future__ import annotations

import ctypes
import marshal
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Iterable, Iterator
from itertools import islice

from .readers import InputError, parse_line
from .validation import ValidEvent, Validator

BLOCK = 4_000  # lines a block
_AHEAD = 4  # blocks sent before the first comes back
_POLL_S = 0.5  # how often the sender, waiting for room, looks whether it should stop
_PR_SET_PDEATHSIG = 1
_END = marshal.dumps(None)


def available() -> bool:
    """Whether a second process can help: more than one core to run on, and fork (Linux)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cores > 1 and "fork" in multiprocessing.get_all_start_methods()


def validated(first: int, lines: Iterable[str], validator: Validator
              ) -> Iterator[tuple[int, ValidEvent | InputError]]:
    """(line, ValidEvent or InputError) for each line that is not blank, numbered from `first`:
    what `validator.validate` makes of `read_jsonl`'s items, made in a child process."""
    context = multiprocessing.get_context("fork")
    from_parent, to_child = context.Pipe(duplex=False)  # (a reading end, a writing end)
    from_child, to_parent = context.Pipe(duplex=False)
    worker = context.Process(target=_child, args=(validator, from_parent, to_parent, os.getpid()),
                             name="socialcredit-validate", daemon=True)
    worker.start()
    from_parent.close()
    to_parent.close()
    sender = _Sender(first, lines, to_child)
    sender.start()
    # The child's answers are read as they come (a thread, waiting with the GIL released): a
    # child writing a block's answer while this process is busy would otherwise wait for it.
    answers: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    threading.Thread(target=_receive, args=(from_child, answers), name="socialcredit-answers", daemon=True).start()
    try:
        while True:
            data = answers.get()
            if data is None:  # the child's end closed before it said it was done
                worker.join(timeout=5)
                raise RuntimeError(f"the process validating the input ended ({worker.exitcode}) before it was done")
            message = marshal.loads(data)
            if message is None:
                break
            if message.__class__ is str:  # the child failed: what it says is the traceback
                raise RuntimeError(f"the process validating the input failed:\n{message}")
            sender.received()
            yield from _in_line_order(*message)
        if sender.error is not None:
            raise sender.error
    finally:
        if worker.is_alive():  # stopped early (an error, Ctrl-C): its work is not wanted
            worker.kill()
        worker.join()
        sender.stop()  # (sending to a dead child fails at once)
        from_child.close()


def _receive(connection, answers: "queue.SimpleQueue[bytes | None]") -> None:
    """Every message the child sends, into `answers`, then None if its end closed first."""
    while True:
        try:
            data = connection.recv_bytes()
        except (EOFError, OSError):
            answers.put(None)
            return
        answers.put(data)
        if data == _END:
            return


class _Sender(threading.Thread):
    """Reads the input and sends it to the child in numbered blocks, `_AHEAD` at most in
    flight; then None. An error reading the input is kept for the receiving side to raise."""

    def __init__(self, first: int, lines: Iterable[str], connection):
        super().__init__(name="socialcredit-read", daemon=True)
        self._first = first
        self._lines = iter(lines)
        self._connection = connection
        self._room = threading.Semaphore(_AHEAD)
        self._stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        number = self._first
        try:
            while not self._stopping.is_set():
                block = list(islice(self._lines, BLOCK))
                if not block:
                    break
                while not self._room.acquire(timeout=_POLL_S):
                    if self._stopping.is_set():
                        return
                self._connection.send_bytes(marshal.dumps((number, block)))
                number += len(block)
            self._connection.send_bytes(_END)
        except (OSError, EOFError):  # the child is gone: the receiving side says why
            pass
        except BaseException as exc:  # reading the input failed (not UTF-8): raised by the receiver
            self.error = exc
            self._connection.send_bytes(_END)
        finally:
            self._connection.close()

    def received(self) -> None:
        self._room.release()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=5)


def _child(validator: Validator, inbox, outbox, parent: int) -> None:
    """The child's life: validate blocks until None, then end with os._exit, never returning
    to multiprocessing, which would flush the copies of the parent's unwritten output."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    status = 0
    try:
        if os.getppid() != parent:  # the parent died before the line above
            return
        while True:
            message = marshal.loads(inbox.recv_bytes())
            if message is None:
                break
            outbox.send_bytes(marshal.dumps(_validate_block(validator, *message)))
        outbox.send_bytes(_END)
    except (EOFError, OSError):  # the parent stopped sending or reading: it wants no more
        pass
    except BaseException:
        import traceback

        status = 1
        try:
            outbox.send_bytes(marshal.dumps(traceback.format_exc()))
        except OSError:
            pass
    finally:
        os._exit(status)


def _validate_block(validator: Validator, first: int, block: list[str]) -> tuple:
    """A block's valid events as the columns of ValidEvent, and (line, message) of its
    problems: what marshal sends fast (a fifth of pickle's time for ValidEvents)."""
    valid, problems = [], []
    for number, line in enumerate(block, start=first):
        if not line.strip():
            continue
        raw = parse_line(number, line)
        if raw.__class__ is InputError:
            problems.append((number, raw.message))
            continue
        try:
            valid.append(validator.validate(raw, number))
        except InputError as exc:
            problems.append((number, exc.message))
    return list(zip(*valid)), problems


def _in_line_order(columns: list, problems: list) -> Iterator[tuple[int, ValidEvent | InputError]]:
    """A block's (line, ValidEvent | InputError) pairs, by line, from `_validate_block`'s parts."""
    events = list(map(ValidEvent, *columns)) if columns else []
    if not problems:
        for event in events:
            yield event.line, event
        return
    bad = iter(problems)
    line, message = next(bad)
    for event in events:
        while line is not None and line < event.line:
            yield line, InputError(line, message)
            line, message = next(bad, (None, None))
        yield event.line, event
    while line is not None:
        yield line, InputError(line, message)
        line, message = next(bad, (None, None))
