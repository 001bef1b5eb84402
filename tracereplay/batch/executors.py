"""Where the work runs: a pool of local worker processes, or a Dask distributed cluster.

An executor takes the function that replays one item (:func:`~tracereplay.batch.work.replay_item`
with the batch's results, profile and scratch bound) and yields each item's records as they
finish; an item whose worker fails is recorded as failed, never raised.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa

from tracereplay.batch.work import ResultRecord, WorkItem, failed
from tracereplay.errors import BadInputError

__all__ = ["DASK_CONNECT_TIMEOUT", "EXECUTORS", "ItemReplay", "ItemRunner", "dask_executor",
           "local_executor"]

EXECUTORS = ("local", "dask")
DASK_CONNECT_TIMEOUT = "20s"

ItemReplay = Callable[[WorkItem], list[ResultRecord]]
ItemRunner = Callable[[Sequence[WorkItem]], Iterator[list[ResultRecord]]]


def _worker_init() -> None:
    """Worker set-up: die with the batch (even on kill -9), leave Ctrl-C to the batch."""
    import multiprocessing
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One worker per core already: Arrow's own thread pool would make them fight (a 2-core
    # batch ran each trace 2.3x slower with it than without).
    pa.set_cpu_count(1)
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the batch process is gone
        os._exit(1)

    threading.Thread(target=watch, name="tracereplay-batch-watch", daemon=True).start()


def local_executor(jobs: int, replay: ItemReplay) -> ItemRunner:
    def runner(items: Sequence[WorkItem]) -> Iterator[list[ResultRecord]]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        if jobs == 1 or len(items) == 1:
            for it in items:  # no pool to start: in this process
                yield replay(it)
            return
        # Workers start from a server that has imported the engine once (fork would copy the
        # progress bar's thread); each watches the batch and exits when it dies.
        ctx: multiprocessing.context.BaseContext
        if "forkserver" in multiprocessing.get_all_start_methods():
            server = multiprocessing.get_context("forkserver")
            server.set_forkserver_preload(["tracereplay.replay", "tracereplay.batch"])
            ctx = server
        else:
            ctx = multiprocessing.get_context("spawn")
        pending = list(items)
        crashes: dict[WorkItem, int] = {}
        while pending:
            pool = ProcessPoolExecutor(max_workers=max(1, min(jobs, len(pending))),
                                       mp_context=ctx, initializer=_worker_init)
            retry: list[WorkItem] = []
            try:
                futures = {pool.submit(replay, it): it for it in pending}
                waiting = set(futures)
                while waiting:
                    finished, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        item = futures[fut]
                        try:
                            yield fut.result()
                        except BrokenProcessPool:
                            # The pool breaks for every item in flight; retry each once in a
                            # fresh pool, so only an item that kills its worker twice fails.
                            crashes[item] = crashes.get(item, 0) + 1
                            if crashes[item] >= 2:
                                yield failed(item, ("WorkerCrashed", "the worker process died "
                                                    "(killed, or out of memory) replaying it"))
                            else:
                                retry.append(item)
                        except Exception as e:
                            yield failed(item, e)
            finally:
                pool.shutdown(wait=not retry, cancel_futures=True)
            pending = retry

    return runner


def dask_executor(jobs: int, scheduler: str | None, replay: ItemReplay) -> ItemRunner:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise BadInputError(
            "the dask executor needs Dask distributed: pip install 'tracereplay[dask]'") from None

    def runner(items: Sequence[WorkItem]) -> Iterator[list[ResultRecord]]:
        import logging

        with contextlib.ExitStack() as stack:
            if scheduler:
                try:
                    client = stack.enter_context(Client(scheduler, timeout=DASK_CONNECT_TIMEOUT))
                except (OSError, TimeoutError) as e:
                    raise BadInputError(
                        f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
            else:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=jobs, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR))
                client = stack.enter_context(Client(cluster))
            futures = client.map(replay, list(items), pure=False)
            by_key = {f.key: it for f, it in zip(futures, items, strict=True)}
            for fut in as_completed(futures):
                item = by_key[fut.key]
                try:
                    yield fut.result()
                except Exception as e:  # KilledWorker, a worker without tracereplay, ...
                    yield failed(item, e)
                fut.release()

    return runner
