"""Importing perf script, ftrace, trace-cmd and lackey text."""

from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from tracereplay.errors import ImportFormatError, OutputExistsError
from tracereplay.importer import import_kernel_trace, import_lackey

FIX = Path(__file__).parent / "fixtures" / "import"
REAL = Path("/work/shared/real-traces")
EVENTS = (
    "tlb:tlb_flush",
    "migrate:mm_migrate_pages_start",
    "migrate:mm_migrate_pages",
    "migrate:set_migration_pte",
    "migrate:remove_migration_pte",
)


def count_lines(text: str, event: str) -> int:
    """Independent count: lines naming the event (with or without its system)."""
    bare = event.split(":")[1]
    return sum(1 for line in text.splitlines() if f" {event}: " in line or f" {bare}: " in line)


def tables(run: Path) -> dict[str, pl.DataFrame]:
    d = run / "policy=measured"
    return {
        n: pl.read_parquet(d / f"{n}.parquet")
        for n in ("flushes", "migrations", "batches", "skipped")
    }


def to_ftrace(line: str, flags: str | None) -> str:
    """A perf script line rewritten the way ftrace / trace-cmd print it."""
    m = re.match(r"\s*(.+?)\s+(?:\d+/)?(\d+)\s+\[(\d+)\]\s+(\S+):\s+\S+?:(\S+): (.*)", line)
    assert m, line
    comm, tid, cpu, ts, event, payload = m.groups()
    flag = f" {flags}" if flags else ""
    return f"{comm:>16}-{tid:<7} [{cpu}]{flag} {ts}: {event}: {payload}"


def assert_counts_match(run: Path, text: str) -> None:
    t = tables(run)
    import json

    manifest = json.loads((run / "policy=measured" / "run.json").read_text())
    for ev in EVENTS:
        assert manifest["events"].get(ev, 0) == count_lines(text, ev), ev
    sets = count_lines(text, "migrate:set_migration_pte")
    removes = count_lines(text, "migrate:remove_migration_pte")
    mig = t["migrations"]
    paired = mig.filter(pl.col("status") == "migrated").height
    assert mig.height == sets  # every set is paired or reported unpaired
    unpaired_removes = t["skipped"].filter(pl.col("why") == "unpaired").height
    assert paired + unpaired_removes == removes
    receivers = len(re.findall(r"\(1\)\s*$", text, re.M))
    joined = int(t["flushes"]["targets"].sum() or 0)
    lost = t["skipped"].filter(pl.col("why") == "receiver_without_round").height
    assert t["flushes"].height + joined + lost == count_lines(text, "tlb:tlb_flush")
    assert joined + lost == receivers


def test_perf_default_layout_counts_equal_line_counts(tmp_path: Path) -> None:
    src = FIX / "perf-default.txt"
    res = import_kernel_trace(src, tmp_path)
    assert res.manifest["format"] == "perf-script"
    assert_counts_match(tmp_path, src.read_text())
    t = tables(tmp_path)
    assert t["flushes"]["ts_ns"].min() == 0
    assert set(t["flushes"]["reason"].to_list()) == {0, 2, 3, 4, 5}
    calls = t["batches"]
    assert calls["kind"].unique().to_list() == ["call"]
    assert calls.filter(pl.col("nr_succeeded") == 32)["pages"].to_list() == [32]
    mig = t["migrations"]
    assert mig["pid"].null_count() == mig.height  # the tracepoint's task is not the owner
    assert (mig["remap_ns"] >= mig["unmap_ns"]).all()
    assert mig["vpn"][0] == 0x7F5A24603000 >> 12


def test_perf_F_layout_joins_receivers_to_their_round(tmp_path: Path) -> None:
    src = FIX / "perf-F.txt"
    import_kernel_trace(src, tmp_path)
    assert_counts_match(tmp_path, src.read_text())
    t = tables(tmp_path)
    rounds = t["flushes"].filter(pl.col("reason") == 4)
    assert rounds["targets"].sum() >= 1
    # pid/tid layout: pid is the process, not the thread
    assert 2392 in t["flushes"]["pid"].to_list()
    # the cut ends inside a call: reported, and its pages unpaired
    assert t["skipped"].filter(pl.col("why") == "call_without_end").height == 1
    assert t["migrations"].filter(pl.col("status") == "unpaired").height > 0


@pytest.mark.parametrize("flags", [None, "....", "d..1.", "dNh2."])
def test_ftrace_text_with_flag_columns_of_any_width_gives_the_perf_tables(
    tmp_path: Path, flags: str | None
) -> None:
    lines = (FIX / "perf-default.txt").read_text().splitlines()
    text = "# tracer: nop\n#\n" + "\n".join(to_ftrace(x, flags) for x in lines) + "\n"
    src = tmp_path / "trace.txt"
    src.write_text(text)
    res = import_kernel_trace(src, tmp_path / "ft")
    assert res.manifest["format"] == "ftrace"
    import_kernel_trace(FIX / "perf-default.txt", tmp_path / "perf")
    a, b = tables(tmp_path / "ft"), tables(tmp_path / "perf")
    for name in ("flushes", "migrations", "batches"):
        cols = [c for c in a[name].columns if c != "pid"]
        assert a[name].select(cols).equals(b[name].select(cols)), name


def test_trace_cmd_report_header_is_not_malformed(tmp_path: Path) -> None:
    lines = (FIX / "perf-default.txt").read_text().splitlines()
    text = "cpus=2\n" + "\n".join(to_ftrace(x, None) for x in lines) + "\n"
    src = tmp_path / "report.txt"
    src.write_text(text)
    res = import_kernel_trace(src, tmp_path / "out")
    assert res.manifest["format"] == "trace-cmd"
    assert res.manifest["malformed"] == 0


def test_old_kernel_reason_strings_and_keys_are_keyed_on_the_code(tmp_path: Path) -> None:
    text = (FIX / "perf-default.txt").read_text()
    old = (
        text.replace("local MM shootdown (3)", "local mm shootdown (3)")
        .replace("remote IPI send (4)", "REMOTE ipi SEND (4)")
        .replace(" nr_split=0", "")  # older kernels lack nr_split
        .replace("nr_thp_split=0", "nr_thp_split=0 nr_future_key=7")  # newer add keys
    )
    # a kernel whose reason has no "(code)" at all
    old += "              sh  5402 [000]   215.300000:  tlb:tlb_flush: pages:1 reason:local shootdown\n"
    old += "              sh  5402 [000]   215.300001:  migrate:mm_migrate_pages_start: mode=MIGRATE_ASYNC\n"
    old += "              sh  5402 [000]   215.300002:  migrate:mm_migrate_pages: nr_succeeded=3 reason=numa_misplaced\n"
    src = tmp_path / "old.txt"
    src.write_text(old)
    import_kernel_trace(src, tmp_path / "old")
    import_kernel_trace(FIX / "perf-default.txt", tmp_path / "new")
    a, b = tables(tmp_path / "old"), tables(tmp_path / "new")
    assert a["flushes"]["reason"].to_list() == [*b["flushes"]["reason"].to_list(), 2]
    last = a["batches"].row(-1, named=True)
    assert (last["mode"], last["reason"], last["nr_succeeded"], last["nr_failed"]) == (
        "MIGRATE_ASYNC", "numa_misplaced", 3, None,
    )  # fmt: skip
    assert a["batches"].head(b["batches"].height).equals(b["batches"])


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".zst"])
def test_compressed_input_streams_and_truncation_is_a_clear_error(
    tmp_path: Path, suffix: str
) -> None:
    data = (FIX / "perf-default.txt").read_bytes()
    if suffix == ".gz":
        packed = gzip.compress(data)
    elif suffix == ".xz":
        packed = lzma.compress(data)
    else:
        import zstandard

        packed = zstandard.ZstdCompressor().compress(data)
    src = tmp_path / f"t.txt{suffix}"
    src.write_bytes(packed)
    res = import_kernel_trace(src, tmp_path / "ok")
    assert res.manifest["events"]["migrate:set_migration_pte"] == data.count(b"set_migration_pte:")
    cut = tmp_path / f"cut.txt{suffix}"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    with pytest.raises(ImportFormatError, match="truncated"):
        import_kernel_trace(cut, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_malformed_lines_are_counted_with_line_numbers_and_strict_fails_at_the_first(
    tmp_path: Path,
) -> None:
    lines = (FIX / "perf-default.txt").read_text().splitlines()
    lines[4] = "this is not an event"
    lines[9] = lines[9].replace("pages:", "pgs:")
    src = tmp_path / "bad.txt"
    src.write_text("\n".join(lines) + "\n")
    res = import_kernel_trace(src, tmp_path / "out")
    assert res.manifest["malformed"] == 2
    assert res.manifest["malformed_lines"] == [5, 10]
    skipped = tables(tmp_path / "out")["skipped"].filter(pl.col("why").str.starts_with("malformed"))
    assert skipped["line"].to_list() == [5, 10]
    assert "no pages" in skipped["why"][1]
    with pytest.raises(ImportFormatError, match=r"bad\.txt:5: .*\[cpu\]"):
        import_kernel_trace(src, tmp_path / "strict", strict=True)
    assert not (tmp_path / "strict" / "policy=measured").exists()


def test_a_task_without_a_number_or_numbers_beyond_32_bits_are_malformed(tmp_path: Path) -> None:
    # tids, pids and CPUs are 32-bit columns: a lone "-" is no tid, and a value that does not
    # fit is out of range rather than wrapped.
    lines = (FIX / "perf-default.txt").read_text().splitlines()
    task, rest = lines[4].split(" [", 1)
    comm = task.rsplit(None, 1)[0]
    lines[4] = f"{comm} - [{rest}"
    lines[5] = f"{comm} 9/ [{lines[5].split(' [', 1)[1]}"
    lines[6] = f"{comm} 99999999999 [{lines[6].split(' [', 1)[1]}"
    lines[7] = f"{comm} 7 [99999999999] {lines[7].split('] ', 1)[1]}"
    src = tmp_path / "bad.txt"
    src.write_text("\n".join(lines) + "\n")
    res = import_kernel_trace(src, tmp_path / "out")
    assert res.manifest["malformed_lines"] == [5, 6, 7, 8]
    why = tables(tmp_path / "out")["skipped"].filter(
        pl.col("why").str.starts_with("malformed"))["why"].to_list()
    assert ["no task" in w for w in why] == [True, True, False, False]
    assert ["out of range" in w for w in why] == [False, False, True, True]


def test_cli_bad_input_exits_2_without_traceback_and_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "junk.txt"
    src.write_text("hello\nworld\n")
    r = subprocess.run(
        [sys.executable, "-c", "from tracereplay.cli import main; main()", "import", str(src),
         "-o", str(tmp_path / "out")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "junk.txt" in r.stderr
    assert not (tmp_path / "out" / "policy=measured").exists()


def test_existing_output_needs_force(tmp_path: Path) -> None:
    import_kernel_trace(FIX / "perf-default.txt", tmp_path)
    with pytest.raises(OutputExistsError):
        import_kernel_trace(FIX / "perf-default.txt", tmp_path)
    import_kernel_trace(FIX / "perf-default.txt", tmp_path, force=True)


def test_perf_data_without_perf_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "perf.data"
    src.write_bytes(b"PERFILE2" + b"\0" * 100)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ImportFormatError, match="needs 'perf'"):
        import_kernel_trace(src, tmp_path / "out")


def test_as_trace_writes_one_request_per_call(tmp_path: Path) -> None:
    out = tmp_path / "m.parquet"
    import_kernel_trace(FIX / "perf-default.txt", tmp_path / "run", as_trace=out)
    t = pq.read_table(out)
    assert t.schema.metadata[b"tracereplay.schema"] == b"trace/1"
    df = pl.from_arrow(t)
    mig = df.filter(pl.col("kind") == "migrate")
    calls = tables(tmp_path / "run")["batches"]
    assert set(mig["req_id"].unique()) <= set(calls["req_id"])
    per_call = mig.group_by("req_id").agg(pl.col("ts_ns").n_unique(), pl.col("cpu").n_unique())
    assert (per_call["ts_ns"] == 1).all() and (per_call["cpu"] == 1).all()
    assert df.filter(pl.col("kind") == "map").height == mig.select("pid", "vaddr").n_unique()
    assert (df["ts_ns"].diff().drop_nulls() >= 0).all()


def test_lackey_accesses_become_a_trace(tmp_path: Path) -> None:
    src = FIX / "lackey-ls.txt"
    text = src.read_text()
    out = tmp_path / "ls.parquet"
    res = import_lackey(src, out, pid=7, cpu=1)
    df = pl.read_parquet(out)
    loads = len(re.findall(r"^ L ", text, re.M))
    stores = len(re.findall(r"^ S ", text, re.M))
    modifies = len(re.findall(r"^ M ", text, re.M))
    assert df.height == loads + stores + 2 * modifies
    assert int(df["write"].sum()) == stores + modifies
    assert df["ts_ns"].to_list() == list(range(df.height))
    assert set(df["pid"]) == {7} and set(df["cpu"]) == {1} and set(df["kind"]) == {"access"}
    assert res.manifest["malformed"] == 0
    with_i = import_lackey(src, tmp_path / "i.parquet", pid=7, cpu=1, instructions=True)
    assert with_i.manifest["accesses"] == df.height + len(re.findall(r"^I  ", text, re.M))


@pytest.mark.skipif(not REAL.is_dir(), reason="real captures not available")
@pytest.mark.parametrize("name", sorted(p.name for p in REAL.glob("*")) if REAL.is_dir() else [])
def test_real_capture_counts_equal_line_counts(tmp_path: Path, name: str) -> None:
    src = REAL / name
    import_kernel_trace(src, tmp_path)
    assert_counts_match(tmp_path, src.read_text())


def _import_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from tracereplay.cli import main; main()", "import", *args],
        capture_output=True, text=True, cwd=cwd,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "J", "--as-trace", "D", "--force"], "--as-trace D is a directory"),
        (["-o", "J", "--as-trace", "absent/m.parquet"], "absent does not exist"),
        (["-o", "f.txt"], "f.txt is not a directory"),
        (["-o", "f.txt/J"], "f.txt is not a directory"),
    ],
)
def test_a_bad_output_path_exits_2_and_leaves_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "D").mkdir()
    (tmp_path / "f.txt").write_text("keep")
    r = _import_cli(str(FIX / "perf-default.txt"), *args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert message in " ".join(r.stderr.split())
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D", "f.txt"]
    assert not any((tmp_path / "D").iterdir())


def test_lackey_into_a_directory_exits_2_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "D").mkdir()
    r = _import_cli(str(FIX / "lackey-ls.txt"), "--format", "lackey", "--pid", "1", "--cpu", "0",
                    "--as-trace", "D", "--force", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2 and "--as-trace D is a directory" in r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["D"]


def test_a_refused_write_is_an_output_path_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tracereplay.errors import OutputPathError
    from tracereplay.events import PolicyRunWriter

    def full(self, manifest):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PolicyRunWriter, "commit", full)
    with pytest.raises(OutputPathError, match="No space left on device"):
        import_kernel_trace(FIX / "perf-default.txt", tmp_path / "run")
    assert not (tmp_path / "run" / "policy=measured").exists()


@pytest.mark.parametrize("existing", [False, True])
def test_a_failed_import_removes_the_run_directory_it_created(
    tmp_path: Path, existing: bool
) -> None:
    import zstandard

    data = (FIX / "perf-default.txt").read_bytes()
    packed = zstandard.ZstdCompressor().compress(data)
    half = tmp_path / "half.zst"
    half.write_bytes(packed[: len(packed) // 2])
    if existing:
        (tmp_path / "i2").mkdir()
        (tmp_path / "i6").mkdir()
    with pytest.raises(ImportFormatError, match="truncated"):
        import_kernel_trace(half, tmp_path / "i2")
    with pytest.raises(ImportFormatError, match="no event lines"):  # every line malformed
        import_kernel_trace(FIX / "perf-default.txt", tmp_path / "i6", fmt="ftrace")
    with pytest.raises(ImportFormatError, match="truncated"):
        import_kernel_trace(half, tmp_path / "a" / "b" / "c")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == (["half.zst", "i2", "i6"] if existing else ["half.zst"])
    if existing:  # a directory that was there stays, empty as it was
        assert not any((tmp_path / "i2").iterdir()) and not any((tmp_path / "i6").iterdir())


@pytest.mark.parametrize("suffix", [".gz", ".xz", ".zst"])
def test_truncation_reports_how_many_bytes_decompressed(tmp_path: Path, suffix: str) -> None:
    import zlib

    import zstandard

    lines = (FIX / "perf-default.txt").read_bytes().splitlines() * 40
    data = b"".join(b"%s %x\n" % (line, k * 7919) for k, line in enumerate(lines))  # 500 kB
    if suffix == ".gz":
        packed = gzip.compress(data)
        good = zlib.decompressobj(wbits=31)
    elif suffix == ".xz":
        packed = lzma.compress(data)
        good = lzma.LZMADecompressor()
    else:
        packed = zstandard.ZstdCompressor().compress(data)
        good = zstandard.ZstdDecompressor().decompressobj()
    cut = packed[: len(packed) * 2 // 3]
    expected = len(good.decompress(cut))  # what a streaming decompressor gets out of the cut
    assert 0 < expected < len(data)
    src = tmp_path / f"cut.txt{suffix}"
    src.write_bytes(cut)
    with pytest.raises(ImportFormatError, match=f"truncated or corrupt after {expected} decompressed"):
        import_kernel_trace(src, tmp_path / "out")


def _fake_perf(tmp_path: Path, monkeypatch, script: str) -> Path:  # type: ignore[no-untyped-def]
    """A ``perf`` on PATH that runs ``script`` (sh) and a perf.data for it to read."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    perf = bin_dir / "perf"
    perf.write_text("#!/bin/sh\n" + script + "\n")
    perf.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    src = tmp_path / "perf.data"
    src.write_bytes(b"PERFILE2" + b"\0" * 100)
    return src


@pytest.mark.parametrize(
    ("script", "message"),
    [
        # perf cannot read the file at all: nothing on stdout
        ("echo \"'trace' not valid for hardware events. Ignoring.\" >&2\n"
         "echo 'incompatible file format (rerun with -v to learn more)' >&2\nexit 255",
         "'perf script' could not read it: incompatible file format"),
        # perf gives up after a few lines that are not events
        ("echo 'some header'\necho 'failed to process sample' >&2\nexit 1",
         "'perf script' could not read it: failed to process sample"),
    ],
)  # fmt: skip
def test_perf_data_that_perf_cannot_read_reports_perfs_error(
    tmp_path: Path, monkeypatch, script: str, message: str  # type: ignore[no-untyped-def]
) -> None:
    src = _fake_perf(tmp_path, monkeypatch, script)
    with pytest.raises(ImportFormatError, match=re.escape(message)):
        import_kernel_trace(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_perf_data_is_read_through_perf_script(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    text = FIX / "perf-F.txt"
    src = _fake_perf(tmp_path, monkeypatch, f"cat '{text}'")
    res = import_kernel_trace(src, tmp_path / "out")
    assert res.manifest["source"]["compression"] == "perf.data"
    assert_counts_match(tmp_path / "out", text.read_text())
    # a reader that stops early keeps its own error; closing the pipe is what ends perf then
    src = _fake_perf(tmp_path / "strict", monkeypatch, f"cat '{text}'\nexec yes 'not an event'")
    with pytest.raises(ImportFormatError, match=r"malformed line"):
        import_kernel_trace(src, tmp_path / "strict" / "out", strict=True)


@pytest.mark.parametrize("name", ["perf-default.txt", "perf-F.txt"])
def test_flush_counts_counts_every_measured_ipi_round(tmp_path: Path, name: str) -> None:
    from tracereplay.query import run_query

    text = (FIX / name).read_text()
    import_kernel_trace(FIX / name, tmp_path)
    row = run_query("flush_counts", tmp_path).to_pylist()[0]
    sends = len(re.findall(r"remote IPI send \(4\)\s*$", text, re.M | re.I))
    receivers = len(re.findall(r"\(1\)\s*$", text, re.M))
    assert sends > receivers  # some rounds have no receiver in the trace
    assert row["ipi_rounds"] == sends
    assert row["ipis_sent"] == receivers  # a lower bound: silent receivers are not counted


def test_the_as_trace_recipe_of_the_docs_brings_the_ipis(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tracereplay.query import run_query
    from tracereplay.replay import run as replay

    doc = (Path(__file__).parent.parent / "docs" / "importing.md").read_text()
    section = doc[doc.index("### `--as-trace OUT.parquet`") :]
    recipe = re.search(r"```python\n(.*?)```", section, re.S)
    assert recipe is not None
    monkeypatch.chdir(tmp_path)
    import_kernel_trace(FIX / "perf-default.txt", None, as_trace="mig.parquet")
    exec(compile(recipe.group(1), "docs/importing.md", "exec"), {})
    pages = pl.read_parquet("mig.parquet").filter(pl.col("kind") == "migrate").height
    replay("mig.parquet", "alone")
    replay("mig-shared.parquet", "shared")
    alone = {r["policy"]: r for r in run_query("flush_counts", "alone").to_pylist()}
    shared = {r["policy"]: r for r in run_query("flush_counts", "shared").to_pylist()}
    assert alone["serial"]["ipis_sent"] == alone["batched"]["ipis_sent"] == 0  # empty mm_cpumask
    assert shared["serial"]["ipis_sent"] == 2 * pages  # CPUs 1 and 2, one round per page
    assert 0 < shared["batched"]["ipis_sent"] < shared["serial"]["ipis_sent"]
