"""Small things of the command line: --version, comma lists of policies, help without <bool>
after flags, long paths that are not broken mid-word."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tracereplay import __version__

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "tracereplay", *map(str, args)], env=env,
                          capture_output=True, text=True, check=False)


def test_version() -> None:
    r = _cli("--version")
    assert (r.returncode, r.stdout) == (0, f"tracereplay {__version__}\n")


def test_policies_may_be_given_as_a_comma_list(tiny_trace: Path, tmp_path: Path) -> None:
    r = _cli("replay", tiny_trace, "-o", tmp_path / "r", "-p", "serial,batched", "--json")
    assert r.returncode == 0, r.stderr
    assert list(json.loads(r.stdout)["policies"]) == ["serial", "batched"]


def test_flags_show_no_value_placeholder_in_help() -> None:
    for command in (["--help"], ["replay", "--help"], ["import", "--help"]):
        r = _cli(*command)
        assert r.returncode == 0
        assert "<bool>" not in r.stdout
    force = next(line for line in _cli("replay", "--help").stdout.splitlines() if "--force" in line)
    assert force.split() == ["│", "--force", "Replace", "existing", "results.", "│"]


def test_a_long_path_is_printed_whole_on_one_line(tiny_trace: Path, tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-directory-name-" * 3) / "tiny-trace-with-a-long-name.parquet"
    deep.parent.mkdir(parents=True)
    shutil.copy(tiny_trace, deep)
    r = _cli("validate", deep)
    assert r.returncode == 0, r.stderr
    assert f"{deep}: valid trace/1" in r.stdout.splitlines()
