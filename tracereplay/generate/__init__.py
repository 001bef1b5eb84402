"""Synthetic traces: :mod:`~tracereplay.generate.pmbench` writes one pmbench-like trace with
``migratepages`` back and forth, :mod:`~tracereplay.generate.corpus` a seeded, varied corpus of
them for batch runs, :mod:`~tracereplay.generate.move_pages` the batch-copy series'
``move_pages()`` benchmark over folios of one size.
"""

from __future__ import annotations

from tracereplay.generate.corpus import CorpusEntry, corpus_entries, write_corpus
from tracereplay.generate.move_pages import MovePagesParams, move_pages_batches, write_move_pages
from tracereplay.generate.pmbench import (
    ARRIVALS,
    BASE_VADDR,
    DEFAULT_SHAPE,
    PATTERNS,
    Arrivals,
    Pattern,
    PmbenchParams,
    generate_pmbench,
    parse_cpu_list,
    pmbench_batches,
    write_pmbench,
)

__all__ = [
    "ARRIVALS",
    "BASE_VADDR",
    "DEFAULT_SHAPE",
    "PATTERNS",
    "Arrivals",
    "CorpusEntry",
    "MovePagesParams",
    "Pattern",
    "PmbenchParams",
    "corpus_entries",
    "generate_pmbench",
    "move_pages_batches",
    "parse_cpu_list",
    "pmbench_batches",
    "write_corpus",
    "write_move_pages",
    "write_pmbench",
]
