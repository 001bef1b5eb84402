"""Locate the data files shipped with tracereplay (schemas, queries, profiles).

In a source checkout they live at the top of the repository (``schemas/``, ``queries/``); an
installed wheel carries them inside the package as ``_schemas/`` and ``_queries/``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the directory of shipped ``name`` files ("schemas" or "queries")."""
    for candidate in (_PACKAGE / f"_{name}", _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"tracereplay is installed without its '{name}' directory")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``schemas/<name>.json`` (e.g. ``trace.v1``, ``events.v1``)."""
    path = resource_dir("schemas") / f"{name}.json"
    with path.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data
