"""Background threads (the trace's reader, the event tables' writers) run at a lower priority
than the replay's lanes and the caller (Linux)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from tracereplay._ahead import ahead
from tracereplay._priority import BACKGROUND_NICE, run_in_background
from tracereplay.events import _Background

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def _expected(base: int) -> int:
    return min(19, base + BACKGROUND_NICE)


def test_a_thread_put_in_the_background_gets_a_higher_nice_value_and_no_other_does() -> None:
    base = _nice()
    seen: list[int] = []

    def work() -> None:
        run_in_background()
        seen.append(_nice())

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen == [_expected(base)]
    assert _nice() == base  # the caller's own priority is untouched


def test_the_reader_thread_runs_in_the_background_only_when_asked() -> None:
    base = _nice()

    def nices() -> object:
        for _ in range(3):
            yield _nice()

    assert list(ahead(nices(), depth=1, name="r", background=True)) == [_expected(base)] * 3
    assert list(ahead(nices(), depth=1, name="r")) == [base] * 3


def test_the_writer_thread_runs_in_the_background() -> None:
    base = _nice()
    bg = _Background()
    try:
        assert bg._pool.submit(_nice).result() == _expected(base)
    finally:
        bg._pool.shutdown(wait=True)
