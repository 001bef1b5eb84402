"""How long a block spent compiling with numba, so that speeds can be measured without it.

The compiled functions are cached on disk (``cache=True``): the first run after installing
compiles them, later runs load them. numba reports each compilation as a ``numba:compile`` event
(a load from the cache is none); nested ones (a function compiling the functions it calls) are
counted once, by the outermost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from numba.core import event


@dataclass
class CompileTime:
    seconds: float = 0.0  # wall time in numba compilations of the block


class _Outermost(event.Listener):
    def __init__(self, into: CompileTime) -> None:
        self.into, self.depth, self.t0 = into, 0, 0.0

    def on_start(self, ev: event.Event) -> None:
        if self.depth == 0:
            self.t0 = time.perf_counter()
        self.depth += 1

    def on_end(self, ev: event.Event) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.into.seconds += time.perf_counter() - self.t0


@contextmanager
def compile_time() -> Iterator[CompileTime]:
    """Measure the numba compilations of the block: ``with compile_time() as c: ...``, then
    ``c.seconds``."""
    got = CompileTime()
    with event.install_listener("numba:compile", _Outermost(got)):
        yield got


def timing(lines: int, wall_s: float, compile_s: float) -> dict[str, float | int | None]:
    """A manifest's timing: the wall time, the part of it spent compiling, and the speed
    without that part (what later runs, which load the compiled code, will see)."""
    work = wall_s - compile_s
    return {"wall_s": round(wall_s, 3), "compile_s": round(compile_s, 3),
            "lines_per_s": round(lines / work) if work > 0 else None}
