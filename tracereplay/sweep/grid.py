"""The grid of a sweep: the varied config keys, their values, and each point's partition path.

A key's partition column is its name made safe for a hive partition and for SQL without quotes:
lower case, every character other than a letter, a digit or ``_`` becomes ``_``
(``migrate.batch_size`` -> ``migrate_batch_size``, ``copy.engine`` -> ``copy_engine``). A value
names a directory as given, so it may hold only letters, digits and ``. _ + -``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from tracereplay.config import Profile, load_profile
from tracereplay.errors import BadInputError, ConfigError

__all__ = ["Axis", "Point", "column_name", "grid", "parse_vary", "point_profiles"]

_UNSAFE = re.compile(r"[^a-z0-9_]")
_VALUE = re.compile(r"[A-Za-z0-9._+-]+")


def column_name(key: str) -> str:
    """The partition column of config key ``key``: ``migrate.batch_size`` -> ``migrate_batch_size``."""
    return _UNSAFE.sub("_", key.lower())


@dataclass(frozen=True, slots=True)
class Axis:
    """One varied key and its values, in the order given."""

    key: str
    values: tuple[str, ...]

    @property
    def column(self) -> str:
        return column_name(self.key)


@dataclass(frozen=True, slots=True)
class Point:
    """One combination of values: ``values`` by key, and its partition path."""

    values: tuple[tuple[str, str], ...]  # (key, value), in the order of the axes

    @property
    def path(self) -> str:
        return "/".join(f"{column_name(k)}={v}" for k, v in self.values)

    def overrides(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.values]


def parse_vary(text: str) -> Axis:
    """``KEY=V1,V2,...`` as an axis; a malformed one is bad input naming it."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise BadInputError(f"--vary {text!r}: expected KEY=V1,V2,... (e.g. migrate.batch_size=1,8,64)")
    values = tuple(v.strip() for v in rest.split(","))
    if not rest.strip() or any(not v for v in values):
        raise BadInputError(f"--vary {key}: empty value in {rest!r}; give V1,V2,...")
    for v in values:
        if not _VALUE.fullmatch(v):
            raise BadInputError(f"--vary {key}: value {v!r} cannot name a partition directory "
                                "(letters, digits and . _ + - only)")
    dup = sorted({v for v in values if values.count(v) > 1})
    if dup:
        raise BadInputError(f"--vary {key}: value {dup[0]!r} is given twice")
    return Axis(key, values)


def grid(axes: Sequence[Axis]) -> list[Point]:
    """Every combination of the axes' values, the first axis varying slowest."""
    if not axes:
        raise BadInputError("sweep: give at least one --vary KEY=V1,V2,...")
    seen: dict[str, str] = {}
    for a in axes:
        if a.column in seen:
            what = "is varied twice" if seen[a.column] == a.key else \
                f"and {seen[a.column]!r} get the same partition column {a.column!r}"
            raise BadInputError(f"--vary {a.key!r} {what}")
        seen[a.column] = a.key
    keys = [a.key for a in axes]
    return [Point(tuple(zip(keys, combo, strict=True)))
            for combo in itertools.product(*(a.values for a in axes))]


def point_profiles(points: Sequence[Point], profile: str, *, config_file: str | None = None,
                   sets: Sequence[str] = ()) -> dict[str, Profile]:
    """Each point's effective profile, by partition path: the profile, ``config_file``, the
    ``--set`` overrides, then the point's values, checked as ``--set`` checks its own. The
    first bad key or value is a ``ConfigError`` naming it, before any work."""
    out = {}
    for pt in points:
        try:
            out[pt.path] = load_profile(profile, config_file=config_file,
                                        overrides=[*sets, *pt.overrides()])
        except ConfigError as e:
            bad = next((f"{k}={v}" for k, v in pt.values if f"{k}={v}" in str(e) or f"'{k}'" in str(e)),
                       ", ".join(pt.overrides()))
            raise ConfigError(f"--vary {bad}: {e}") from None
    return out
