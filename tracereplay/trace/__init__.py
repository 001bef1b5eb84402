"""Trace format v1: validate, read and write memory-access and migration traces.

``schemas/trace.v1.json`` is the single source of truth: the columns, the types each accepts,
which columns each row ``kind`` requires or ignores, the metadata keys and the named rules.

- ``schema``: the format as the JSON defines it (kinds, canonical Arrow schema, rules), the
  summary of a trace, a row group as numpy columns;
- ``columns``: conversions between Arrow and numpy (canonical casts, null masks, kind codes);
- ``validate``: every row rule over a stream of batches (``_rows``: the compiled pass over
  access rows);
- ``read``: opening a file, :class:`TraceReader` (one read: decoded once, validated, hashed),
  :func:`load`, :class:`Trace`;
- ``write``: canonical files.
"""

from tracereplay.trace.read import (
    Trace,
    TraceReader,
    default_machine,
    file_sha256,
    load,
)
from tracereplay.trace.schema import (
    KIND_CODES,
    KINDS,
    TRACE_SCHEMA,
    RowGroup,
    TraceSummary,
    arrow_schema,
    rule_text,
)
from tracereplay.trace.write import write

__all__ = [
    "KINDS",
    "KIND_CODES",
    "TRACE_SCHEMA",
    "RowGroup",
    "Trace",
    "TraceReader",
    "TraceSummary",
    "arrow_schema",
    "default_machine",
    "file_sha256",
    "load",
    "rule_text",
    "write",
]
