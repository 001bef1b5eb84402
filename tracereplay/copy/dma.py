"""``dma``: the batch's folios are copied by a DMA engine over ``copy.channels`` channels, as
the dcbm driver of Shivank Garg's series does ("Accelerate page migration with batch copying
and hardware offload", RFC v1 Jun 2024 ... RFC v6 30 Jun 2026, linux-mm; dcbm over AMD PTDMA):

- the migrating CPU maps the batch (``submit_ns``) and prepares one descriptor per DMA segment
  (``dmaengine_prep_dma_memcpy()`` per mapped scatterlist segment, ``descriptor_ns`` each; a
  folio is ``ceil(bytes / descriptor_bytes)`` segments);
- the folios are split among the channels in order, in near-equal shares; each channel runs
  its descriptors one after another, ``channel_descriptor_ns`` each plus the bytes at
  ``channel_page_ns`` per base page; all channels together at most at ``device_page_ns`` per
  base page;
- the CPU **waits**: dcbm sets ``DMA_PREP_INTERRUPT`` on the last descriptor and sleeps on a
  completion that the interrupt's callback signals (the code quoted in Karim Manaouil's review,
  linux-mm 19 Jun 2026: "waiting for an interrupt adds massive scheduling overhead"), so the
  copy stays on the migration's critical path and ``completion_ns`` (interrupt, wake-up) is
  paid once per batch. The folios' copies are known done only then.

Simplification: descriptors are all prepared before the channels start (dcbm issues each
channel's work as it is prepared, so a channel may start a little earlier).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tracereplay.config import setting
from tracereplay.copy.registry import Copied, Setup, bytes_ns, register


@dataclass(frozen=True, slots=True, kw_only=True)
class DmaCopyConfig:
    """``[copy.dma]``."""

    submit_ns: int = setting("per batch: map the source and destination lists, take the channels, ns")
    descriptor_ns: int = setting("per descriptor: the CPU prepares and submits it, ns")
    descriptor_bytes: int = setting("largest segment one descriptor copies, bytes", at_least=1)
    channel_descriptor_ns: int = setting("per descriptor: the channel fetches and completes it, ns")
    channel_page_ns: int = setting(
        "time one channel takes to copy one base page's bytes, ns (its bandwidth: page_size / "
        "channel_page_ns bytes per ns)")
    device_page_ns: int = setting(
        "time all channels together take per base page copied, at best, ns (the engine's "
        "shared bandwidth)")
    completion_ns: int = setting("per batch: the completion interrupt and the wake-up of the waiting CPU, ns")


@register(name="dma", description="a DMA engine over copy.channels channels copies the batch; the CPU waits",
          config=DmaCopyConfig, order=2)
def cost(cfg: DmaCopyConfig, setup: Setup, sizes: np.ndarray) -> Copied:
    n = len(sizes)
    used = min(setup.channels, n)
    descriptors = -(-sizes // cfg.descriptor_bytes)
    per_folio = descriptors * cfg.channel_descriptor_ns + bytes_ns(sizes, cfg.channel_page_ns,
                                                                   setup.page_size)
    # Channel c takes the next share of the list: the first n % used channels one folio more.
    shares = np.full(used, n // used, np.int64)
    shares[: n % used] += 1
    busiest = int(np.add.reduceat(per_folio, np.cumsum(shares) - shares).max())
    device = int(bytes_ns(int(sizes.sum()), cfg.device_page_ns, setup.page_size))
    total = (cfg.submit_ns + int(descriptors.sum()) * cfg.descriptor_ns + max(busiest, device)
             + cfg.completion_ns)
    return Copied(start_ns=np.zeros(n, np.int64), end_ns=np.full(n, total, np.int64),
                  total_ns=total)
