"""The README's set-up: the first command installs what replaying needs, the second the tests;
the DuckDB one-liner says where its shell comes from."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _blocks(section: str) -> list[str]:
    text = README[README.index(section):]
    text = text[: text.index("\n## ", 1)]
    return re.findall(r"```\n(.*?)```", text, re.S)


def _name(requirement: str) -> str:
    return re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower()


def test_the_first_command_installs_only_what_replaying_needs() -> None:
    first, second = _blocks("## Quick start")[:2]
    assert first.strip() == "pip install -e . && tracereplay replay sample_traces/seed.parquet"
    assert second.strip() == "pip install -e '.[test]' && python -m pytest -q"
    main = {_name(r) for r in PROJECT["dependencies"]}
    extra = {_name(r) for name in ("test", "dask") for r in PROJECT["optional-dependencies"][name]}
    assert main.isdisjoint(extra - {"tracereplay"})
    assert {"pytest", "moto", "dask", "duckdb-cli"} <= extra


def test_the_duckdb_one_liner_says_where_the_shell_comes_from() -> None:
    section = README[README.index("## Queries with the DuckDB CLI"):]
    text = " ".join(section[: section.index("\n## ")].split())
    assert "`pip install duckdb-cli` (the test extra includes it)" in text
    assert any(_name(r) == "duckdb-cli" for r in PROJECT["optional-dependencies"]["test"])
