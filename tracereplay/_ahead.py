"""Produce an iterator's items on a thread, a bounded number ahead of the consumer.

Worth it when the producer's work releases the GIL (Parquet decoding) or the consumer's does
(the compiled kernel): the two then run at once on two cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

from tracereplay._priority import run_in_background

T = TypeVar("T")

_DONE = object()


def ahead(items: Iterable[T], *, depth: int, name: str,
          background: bool = False) -> Generator[T, None, None]:
    """Yield what ``items`` yields, in order, iterating it on a thread named ``name`` that
    stays at most ``depth`` items ahead (``background``: at a lower priority, see
    :mod:`tracereplay._priority`). An exception raised by ``items`` is raised here, where its
    item would have been; closing this generator (or an exception in the consumer) stops the
    thread after the item it is making, and waits for it."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        if background:
            run_in_background()
        try:
            for item in items:
                if not put(item):
                    return
            end: Any = _DONE
        except BaseException as e:  # handed to the consumer, raised there
            end = e
        put(end)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
