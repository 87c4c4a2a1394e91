"""The forked worker used by bulk ingest: values come back, errors are raised, nothing leaks."""

from __future__ import annotations

import os

import pytest

from socialcredit import _forked


def _square_all(numbers):
    return [n * n for n in numbers], os.getpid()


def _fail(message):
    raise ValueError(message)


def test_the_result_is_computed_in_another_process():
    values, pid = _forked.start(_square_all, range(5)).result()
    assert values == [0, 1, 4, 9, 16]
    assert pid != os.getpid()


def test_inline_when_fork_is_off():
    values, pid = _forked.start(_square_all, [3], fork=False).result()
    assert (values, pid) == ([9], os.getpid())


def test_an_error_in_the_worker_is_raised_in_the_parent():
    with pytest.raises(_forked.WorkerError, match="ValueError: no good"):
        _forked.start(_fail, "no good").result()


def test_cancel_reaps_the_worker():
    pending = _forked.start(_square_all, range(10))
    pending.cancel()
    with pytest.raises(ChildProcessError):
        os.waitpid(pending._pid, os.WNOHANG)
