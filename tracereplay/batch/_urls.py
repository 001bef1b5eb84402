"""Local paths and object-store URLs: which a name is, and the fsspec file system behind a URL."""

from __future__ import annotations

from typing import Any

from tracereplay.errors import BadInputError


def is_url(text: str) -> bool:
    """``s3://…`` and the like; a ``file://`` URL is a local path."""
    return "://" in text and not text.startswith("file://")


def strip_file_url(text: str) -> str:
    return text[len("file://"):] if text.startswith("file://") else text


def filesystem(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path within it."""
    try:
        import fsspec
    except ImportError:
        raise BadInputError(
            f"{url}: object storage needs fsspec (pip install 'tracereplay[dask]')") from None
    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as e:
        raise BadInputError(f"{url}: {e}") from None
