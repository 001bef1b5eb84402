"""tracereplay capture: perf record around a command, then import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIX = Path(__file__).parent / "fixtures" / "import"


def _cli(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "tracereplay", "capture", *args],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip


def _fake_perf(tmp_path: Path, script: str) -> str:
    """A PATH whose ``perf`` runs ``script`` (sh), before the system's tools."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    perf = bin_dir / "perf"
    perf.write_text("#!/bin/sh\n" + script + "\n")
    perf.chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def test_without_perf_capture_exits_2_saying_what_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _cli("-o", str(tmp_path / "out"), "--", "true", path=str(empty))
    assert r.returncode == 2, r.stderr
    assert "needs 'perf' on PATH" in r.stderr and "linux-tools" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()


def test_a_refused_perf_record_exits_2_naming_the_sysctl_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    path = _fake_perf(
        tmp_path,
        'echo "Error:\nAccess to performance monitoring and observability operations is '
        'limited.\nConsider adjusting /proc/sys/kernel/perf_event_paranoid setting" >&2\nexit 255',
    )
    r = _cli("-o", str(tmp_path / "out"), "--duration", "1", path=path)
    assert r.returncode == 2, r.stderr
    assert "kernel.perf_event_paranoid=-1" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_perf_record_then_script_then_import(tmp_path: Path) -> None:
    # a perf that "records" by writing a file and "scripts" by printing the fixture
    path = _fake_perf(
        tmp_path,
        'if [ "$1" = record ]; then\n'
        '  while [ "$1" != -o ]; do shift; done; echo data > "$2"; exit 0\n'
        f"fi\ncat {FIX / 'perf-F-faults.txt'}",
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = _cli("-o", str(out), "--", "true", path=path)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["capture.perf-script.zst", "keep.txt", "policy=measured", "trace.parquet"]
    assert "faults 6, of them stalls 6" in " ".join(r.stderr.split())
    # a second capture needs --force
    r = _cli("-o", str(out), "--", "true", path=path)
    assert r.returncode == 2 and "use --force" in r.stderr


def test_neither_command_nor_duration_is_a_usage_error(tmp_path: Path) -> None:
    r = _cli("-o", str(tmp_path / "out"))
    assert r.returncode == 2 and "--duration SECONDS" in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("perf") is None or os.geteuid() != 0, reason="needs perf and root")
def test_a_real_capture_of_compaction(tmp_path: Path) -> None:
    r = _cli("-o", str(tmp_path / "out"), "--", "sh", "-c",
             "echo 1 > /proc/sys/vm/compact_memory")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "policy=measured" / "faults.parquet").exists()
