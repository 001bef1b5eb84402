"""``mt``: the batch's folios are copied by ``copy.threads`` kernel threads, as in Zi Yan's
multi-threaded copy ("mm: batch folio copy with multi threads", linux-mm, Jan 2025, on top of
Shivank Garg's batch-copy series; "Accelerating page migration with multithreading", LSF/MM
slides):

- the migrating CPU queues one copy job per thread on a high-priority workqueue
  (``dispatch_ns`` each) and sleeps until all of them are done: it waits, and it learns that
  the folios are copied only when the last job ends;
- with no more folios than threads each thread copies one folio; otherwise each thread copies
  a ``1/threads`` part of every folio;
- each thread copies at ``thread_page_ns`` per base page, and all threads together at most at
  ``link_page_ns`` per base page (the memory path between the nodes they share), so past the
  point where the link is the limit a thread more only adds its dispatch: more threads are not
  always faster (Zi Yan's slides: "More threads do not mean higher copy throughput").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.config import setting
from tracereplay.copy.registry import Copied, Setup, bytes_ns, register


@dataclass(frozen=True, slots=True, kw_only=True)
class MtCopyConfig:
    """``[copy.mt]``."""

    dispatch_ns: int = setting("per thread used: queue its copy job and wake it, ns")
    thread_page_ns: int = setting(
        "time one thread takes to copy one base page's bytes, ns (its bandwidth: page_size / "
        "thread_page_ns bytes per ns)")
    link_page_ns: int = setting(
        "time all threads together take per base page copied, at best, ns: the shared "
        "bandwidth between the nodes, page_size / link_page_ns bytes per ns")


@register(name="mt", description="copy.threads kernel threads copy the batch; the CPU waits",
          config=MtCopyConfig, order=1)
def cost(cfg: MtCopyConfig, setup: Setup, sizes: np.ndarray) -> Copied:
    n, threads = len(sizes), setup.threads
    if n <= threads:
        used = n  # one folio a thread
        slowest = int(bytes_ns(sizes, cfg.thread_page_ns, setup.page_size).max())
    else:
        used = threads  # every thread a 1/threads part of every folio (the largest part)
        part = -(-sizes // threads)
        slowest = int(bytes_ns(int(part.sum()), cfg.thread_page_ns, setup.page_size))
    link = int(bytes_ns(int(sizes.sum()), cfg.link_page_ns, setup.page_size))
    total = used * cfg.dispatch_ns + max(slowest, link)
    return Copied(start_ns=np.zeros(n, np.int64), end_ns=np.full(n, total, np.int64),
                  total_ns=total)
