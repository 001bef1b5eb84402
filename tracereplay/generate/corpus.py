"""A varied, seeded corpus of small pmbench-like traces to run batches on.

:func:`corpus_entries` draws ``count`` parameter sets of
:class:`~tracereplay.generate.pmbench.PmbenchParams` from one ``numpy.random.default_rng(seed)``:
the access pattern cycles through all patterns, and each trace draws its machine (8, 16 or 32 CPUs
on 2 or 4 nodes), thread count, working set, mapping, read share, arrival process, migratepages
interval and length (``max_set_mib`` caps the working set, hence the pages each migratepages call
moves). The trace spans 3 to 10 migratepages intervals, so every trace migrates its pages back and
forth a few times whatever its interval. ``accesses`` sets the typical size (each trace has 0.5x to
2x of it, plus one prefault touch per working-set page).

:func:`write_corpus` writes ``<name>.parquet`` per trace and ``corpus.csv``, one row of
parameters per trace (``file`` is the file name), to join with batch results. The file name
carries the main parameters, e.g. ``pmb-0007-pareto-t8-c16-s4m-e0.5ms.parquet``. The same
count, seed and size give the same files, byte for byte.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracereplay.errors import BadInputError
from tracereplay.generate.pmbench import ARRIVALS, PATTERNS, PmbenchParams, write_pmbench

__all__ = ["CorpusEntry", "corpus_entries", "write_corpus"]

DEFAULT_ACCESSES = 20_000

_CPUS = (8, 16, 32)
_THREADS = (1, 2, 4, 8, 16, 24)
_SET_MIB = (1, 2, 4, 8)
_MAP_FACTOR = (1, 2, 4)
_READ_PCT = (0.0, 50.0, 70.0, 90.0, 100.0)
_MIGRATE_EVERY_MS = (0.25, 0.5, 1.0, 2.0, 5.0)
_INTERVALS = (3.0, 10.0)  # trace length, in migratepages intervals


@dataclass(frozen=True, slots=True, kw_only=True)
class CorpusEntry:
    """One trace of a corpus: its file stem and its generator parameters."""

    name: str
    params: PmbenchParams


def _fmt(x: float) -> str:
    return f"{x:g}"


def corpus_entries(count: int, seed: int = 0, *, accesses: int = DEFAULT_ACCESSES,
                   max_set_mib: int = max(_SET_MIB)) -> list[CorpusEntry]:
    """``count`` varied trace parameter sets drawn from ``seed`` (see the module doc)."""
    if count < 1:
        raise BadInputError(f"corpus: 'count' must be at least 1: {count}")
    if accesses < 1:
        raise BadInputError(f"corpus: 'accesses' must be at least 1: {accesses}")
    set_choices = [m for m in _SET_MIB if m <= max_set_mib]
    if not set_choices:
        raise BadInputError(f"corpus: 'max_set_mib' must be at least {min(_SET_MIB)}: {max_set_mib}")
    rng = np.random.default_rng(seed)
    entries = []
    for i in range(count):
        pattern = PATTERNS[i % len(PATTERNS)]
        cpus = int(rng.choice(_CPUS))
        nodes = 4 if cpus >= 16 and rng.random() < 0.25 else 2
        # Leave at least one CPU free for the migratepages driver.
        threads = int(rng.choice([t for t in _THREADS if t < cpus]))
        set_mib = int(rng.choice(set_choices))
        every_ms = float(rng.choice(_MIGRATE_EVERY_MS))
        n = max(1, round(accesses * 2.0 ** rng.uniform(-1.0, 1.0)))
        duration_ms = every_ms * rng.uniform(*_INTERVALS)
        params = PmbenchParams(
            threads=threads,
            cpus=cpus,
            nodes=nodes,
            set_mib=set_mib,
            map_mib=set_mib * int(rng.choice(_MAP_FACTOR)),
            pattern=pattern,  # type: ignore[arg-type]
            read_pct=float(rng.choice(_READ_PCT)),
            arrivals=ARRIVALS[int(rng.integers(len(ARRIVALS)))],  # type: ignore[arg-type]
            thread_rate_per_s=n / threads / (duration_ms * 1e-3),
            migrate_every_ms=every_ms,
            accesses=n,
            seed=int(rng.integers(1 << 31)),
        )
        name = (f"pmb-{i:04d}-{pattern}-t{threads}-c{cpus}-s{set_mib}m-e{_fmt(every_ms)}ms")
        entries.append(CorpusEntry(name=name, params=params))
    return entries


def write_corpus(
    out_dir: str | os.PathLike[str],
    count: int,
    seed: int = 0,
    *,
    accesses: int = DEFAULT_ACCESSES,
    max_set_mib: int = max(_SET_MIB),
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write the corpus into ``out_dir`` (created); returns the trace paths in order."""
    entries = corpus_entries(count, seed, accesses=accesses, max_set_mib=max_set_mib)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInputError(f"corpus: cannot create {out}: {e.strerror or e}") from None
    paths = []
    fields = [f.name for f in dataclasses.fields(PmbenchParams)]
    rows = []
    for k, entry in enumerate(entries):
        path = out / f"{entry.name}.parquet"
        write_pmbench(path, entry.params)
        paths.append(path)
        values = dataclasses.asdict(entry.params)
        rows.append({"file": path.name, **{f: values[f] for f in fields}})
        if progress is not None:
            progress(k + 1, len(entries))
    with open(out / "corpus.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", *fields])
        w.writeheader()
        w.writerows(rows)
    return paths
