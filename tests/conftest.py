"""Fixtures shared by the test modules: the repository's sample traces and a valid base trace."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import settings

# The property tests draw the same examples on every run (a failure reproduces, and a run that
# passed passes again on the same code); ``pytest --hypothesis-profile explore`` draws new ones
# each run, to look for counterexamples.
settings.register_profile("default", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile("default")

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_traces"


@pytest.fixture
def tiny_trace() -> Path:
    """The 13-row hand-written trace (sample_traces/make_tiny.py)."""
    return SAMPLES / "tiny.parquet"


@pytest.fixture
def seed_trace() -> Path:
    """The bundled pmbench + migratepages trace."""
    return SAMPLES / "seed.parquet"


def valid_columns() -> dict[str, list]:
    """A small valid trace as plain columns (one row of each shape), for tests to break."""
    return {
        "ts_ns": [0, 10, 20, 30, 30, 40],
        "kind": ["access", "access", "map", "migrate", "migrate", "migrate"],
        "cpu": [0, 1, None, 2, 2, 3],
        "pid": [7, 7, 7, 7, 7, 7],
        "vaddr": [0x1000, 0x2008, 0x3000, 0x1000, 0x2000, None],
        "write": [True, False, None, None, None, None],
        "src_node": [None, None, None, None, None, 0],
        "dst_node": [None, None, 1, 1, 1, 1],
        "req_id": [None, None, None, 0, 0, 1],
        "mode": [None, None, None, "sync", "sync", None],
    }


@pytest.fixture
def valid_table() -> pa.Table:
    return pa.table(valid_columns())


# --- golden answers of the query library (tests/test_queries.py) ---


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="Rewrite the expected CSVs of tests/golden/ (and queries/_load.sql) from the answers.",
    )
