"""Copy engines: each engine's timing of a small batch worked out by hand, their config and its
bad values, the batched-copy policy's timeline, and the model's move_pages() GB/s against the
shape of the published table (Shivank Garg's batch-copy series, linux-mm 2026)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from replay_helpers import access, hand_profile, load_prepass, migrate_pages, write_trace
from typer.testing import CliRunner

from tracereplay.cli import app
from tracereplay.config import Profile, load_profile
from tracereplay.copy import ENGINES, Copier
from tracereplay.copy.throughput import GIB, move_gbps, move_ns
from tracereplay.errors import ConfigError
from tracereplay.machine import Machine
from tracereplay.migrate import Planner

# Round numbers for the hand-worked batches.
HAND_COPY = [
    "copy.cpu.folio_ns=10", "copy.cpu.page_ns=100",
    "copy.mt.dispatch_ns=50", "copy.mt.thread_page_ns=100", "copy.mt.link_page_ns=20",
    "copy.dma.submit_ns=100", "copy.dma.descriptor_ns=10", "copy.dma.descriptor_bytes=4096",
    "copy.dma.channel_descriptor_ns=30", "copy.dma.channel_page_ns=100",
    "copy.dma.device_page_ns=20", "copy.dma.completion_ns=500",
]
SIZES = np.array([4096, 4096, 8192])  # two base pages and a folio of two pages


def copier(*extra: str) -> Copier:
    return Copier(load_profile(overrides=[*HAND_COPY, *extra]), 4096)


def test_cpu_copies_folio_after_folio_each_a_fixed_cost_plus_bytes_over_bandwidth() -> None:
    got = copier("copy.engine=cpu").batch(SIZES)
    # 10 + 100, 10 + 100, 10 + 2 x 100
    assert got.start_ns.tolist() == [0, 110, 220]
    assert got.end_ns.tolist() == [110, 220, 430]
    assert got.total_ns == 430
    assert copier("copy.engine=cpu").alone(8192) == 210


def test_mt_splits_every_folio_among_the_threads_when_there_are_more_folios_than_threads() -> None:
    got = copier("copy.engine=mt", "copy.threads=2").batch(SIZES)
    # 2 threads dispatched (2 x 50); each copies half of every folio: 2048 + 2048 + 4096 bytes
    # = 2 pages' worth at 100 ns = 200, more than the link's 4 pages x 20 = 80.
    assert got.total_ns == 2 * 50 + 200
    assert got.start_ns.tolist() == [0, 0, 0]
    assert got.end_ns.tolist() == [300, 300, 300]  # the CPU learns it when the last job ends


def test_mt_gives_one_folio_a_thread_when_there_are_enough_threads_and_more_is_not_faster() -> None:
    four = copier("copy.engine=mt", "copy.threads=4").batch(SIZES)
    # 3 threads used (3 x 50), the slowest copies the 8 KiB folio: 2 x 100.
    assert four.total_ns == 3 * 50 + 200 == 350
    assert four.total_ns > copier("copy.engine=mt", "copy.threads=2").batch(SIZES).total_ns


def test_mt_is_held_to_the_link_bandwidth_so_a_thread_more_only_adds_its_dispatch() -> None:
    cp = copier("copy.engine=mt", "copy.mt.link_page_ns=100", "copy.threads=2")
    # link: 4 pages x 100 = 400 > each thread's 200
    assert cp.batch(SIZES).total_ns == 2 * 50 + 400
    assert copier("copy.engine=mt", "copy.mt.link_page_ns=100",
                  "copy.threads=3").batch(SIZES).total_ns == 3 * 50 + 400


def test_dma_submits_descriptors_splits_folios_over_channels_and_the_cpu_waits_for_completion() -> None:
    got = copier("copy.engine=dma", "copy.channels=2").batch(SIZES)
    # CPU: submit 100 + 4 descriptors (1 + 1 + 2 of 4096 bytes) x 10 = 140.
    # Channel 0 takes folios 0 and 1: 2 x (30 + 100) = 260; channel 1 folio 2: 2 x 30 + 200 = 260.
    # Device: 4 pages x 20 = 80 < 260. Completion 500: the CPU sleeps until then.
    assert got.total_ns == 140 + 260 + 500 == 900
    assert got.end_ns.tolist() == [900, 900, 900]
    one = copier("copy.engine=dma", "copy.channels=1").batch(SIZES)
    assert one.total_ns == 140 + (130 + 130 + 260) + 500


def test_dma_channels_share_the_device_bandwidth() -> None:
    got = copier("copy.engine=dma", "copy.channels=3", "copy.dma.device_page_ns=200").batch(SIZES)
    # busiest channel 260, but the device moves 4 pages at 200 ns each: 800
    assert got.total_ns == 140 + 800 + 500


def test_every_engine_registers_a_documented_frozen_config_with_sources_in_each_profile() -> None:
    assert list(ENGINES) == ["cpu", "mt", "dma"]
    for name in ("intel-2s", "amd-2s"):
        p = load_profile(name)
        for engine, e in ENGINES.items():
            assert e.description and "\n" not in e.description
            assert isinstance(p.copy_engines[engine], e.config)
            for f in dataclasses.fields(e.config):
                assert f.metadata["doc"], f"{engine}.{f.name}"
                assert p.sources.get(f"copy.{engine}.{f.name}"), f"{name}: copy.{engine}.{f.name}"
        for f in ("engine", "threads", "channels"):
            assert p.sources.get(f"copy.{f}"), f"{name}: copy.{f}"
        keys = {k for k, *_ in p.rows()}
        assert {"copy.engine", "copy.threads", "copy.channels", "copy.cpu.page_ns",
                "copy.mt.dispatch_ns", "copy.dma.completion_ns"} <= keys


def test_the_old_per_page_copy_key_sets_the_cpu_engines_page_time() -> None:
    p = load_profile(overrides=["migrate.copy_ns=700"])
    assert p.copy_engines["cpu"].page_ns == 700
    assert load_profile().copy.engine == "cpu"


@pytest.mark.parametrize(("item", "message"), [
    ("copy.engine=gpu", "config 'copy.engine' must be one of 'cpu', 'mt', 'dma': 'gpu'"),
    ("copy.threads=0", "config 'copy.threads' must be at least 1: 0"),
    ("copy.channels=-2", "config 'copy.channels' must be at least 1: -2"),
    ("copy.dma.descriptor_bytes=0", "config 'copy.dma.descriptor_bytes' must be at least 1: 0"),
    ("copy.mt.dispatch_ns=-1", "config 'copy.mt.dispatch_ns' must be a non-negative integer (ns): -1"),
])
def test_bad_copy_settings_fail_naming_the_key(item: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_profile(overrides=[item])


@pytest.mark.parametrize("item", ["copy.engine=gpu", "copy.threads=0", "copy.channels=0"])
def test_the_command_line_exits_2_naming_the_key(item: str) -> None:
    r = subprocess.run([sys.executable, "-m", "tracereplay", "config", "show", "--set", item],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert f"config '{item.split('=')[0]}'" in r.stderr
    assert "Traceback" not in r.stderr


def test_an_unknown_engine_section_in_a_config_file_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[copy.gpu]\nx = 1\n")
    with pytest.raises(ConfigError, match=r"unknown copy engine section '\[copy.gpu\]'; engines: cpu, mt, dma"):
        load_profile(config_file=cfg)


# -- batched-copy: one call of three pages, timed by hand --------------------------------------
#
# Pages 0-2 of pid 1 live on node 0; CPUs 0 and 1 ran the process, so a flush is one IPI round.
# CPU 0 moves them to node 1 at t=1000. Unmaps at 1100, 1200, 1300; the round costs
# 3 x invlpg 10 + IPI 500 = 530, so the moves start at 1830 (hand costs: copy 1000 a page with
# the cpu engine, remap 100).
#
#   batched       copy0 ─ remap0 ─ copy1 ─ remap1 ─ copy2 ─ remap2     remaps 2930 4030 5130
#   batched-copy  copy0 ─ copy1 ─ copy2 ─ remap0 ─ remap1 ─ remap2     remaps 4930 5030 5130

def _plan(tmp_path: Path, profile: Profile, policy: str) -> tuple[dict, list]:
    rows = [access(0, 0, 0), access(1, 0, 1), access(2, 0, 2), access(3, 1, 0),
            *migrate_pages(1000, 0, [0, 1, 2], 1, 7)]
    path = write_trace(tmp_path / f"{policy}.parquet", rows, Machine.spread(4, 2))
    pre = load_prepass(path, profile)[1]
    (plan,) = list(Planner(pre, profile, policy))
    return plan.pages, plan.batches


def test_batched_copy_with_the_cpu_engine_ends_when_batched_does_but_remaps_after_the_whole_copy(
        tmp_path: Path) -> None:
    profile = hand_profile()
    seq, seq_batches = _plan(tmp_path, profile, "batched")
    bc, bc_batches = _plan(tmp_path, profile, "batched-copy")
    assert seq["remap_ns"].tolist() == [2930, 4030, 5130]
    assert seq["copy_end_ns"].tolist() == [2830, 3930, 5030]
    assert bc["copy_start_ns"].tolist() == [1830, 2830, 3830]
    assert bc["copy_end_ns"].tolist() == [2830, 3830, 4830]
    assert bc["remap_ns"].tolist() == [4930, 5030, 5130]
    assert seq["unmap_ns"].tolist() == bc["unmap_ns"].tolist() == [1100, 1200, 1300]
    # the same work: the same phases and the same end; the first page usable again later
    assert [seq_batches[0]["first_remap_ns"], bc_batches[0]["first_remap_ns"]] == [2930, 4930]
    assert [{k: v for k, v in b.items() if k != "first_remap_ns"} for b in seq_batches] == \
        [{k: v for k, v in b.items() if k != "first_remap_ns"} for b in bc_batches]
    assert bc_batches[0]["copy_ns"] == 3000 and bc_batches[0]["end_ns"] == 5130


def test_batched_copy_with_dma_copies_the_batch_at_once_and_remaps_after_completion(
        tmp_path: Path) -> None:
    profile = hand_profile(*HAND_COPY, "copy.engine=dma", "copy.channels=2")
    pages, batches = _plan(tmp_path, profile, "batched-copy")
    # 3 descriptors: CPU 100 + 30; channels [2, 1] pages: busiest 2 x 130 = 260; completion 500
    assert pages["copy_start_ns"].tolist() == [1830] * 3
    assert pages["copy_end_ns"].tolist() == [1830 + 890] * 3
    assert pages["remap_ns"].tolist() == [2820, 2920, 3020]
    assert batches[0]["copy_ns"] == 890 and batches[0]["end_ns"] == 3020


def test_batched_with_dma_copies_each_page_by_itself(tmp_path: Path) -> None:
    profile = hand_profile(*HAND_COPY, "copy.engine=dma", "copy.channels=2")
    pages, batches = _plan(tmp_path, profile, "batched")
    # each page alone: submit 100 + descriptor 10 + channel 30 + 100 + completion 500 = 740
    assert pages["copy_end_ns"].tolist() == [2570, 3410, 4250]
    assert pages["remap_ns"].tolist() == [2670, 3510, 4350]
    assert batches[0]["copy_ns"] == 3 * 740


def test_batched_copy_with_mt(tmp_path: Path) -> None:
    profile = hand_profile(*HAND_COPY, "copy.engine=mt", "copy.threads=2")
    pages, _ = _plan(tmp_path, profile, "batched-copy")
    # 2 threads x 50 + each thread half of each page: 1.5 pages x 100 = 150
    assert pages["remap_ns"].tolist() == [1830 + 250 + 100, 2280, 2380]


# -- the model's move_pages() throughput -------------------------------------------------------

def test_move_ns_of_base_pages_with_the_cpu_engine_by_hand() -> None:
    p = load_profile()  # intel-2s: other 150, unmap 200, invlpg 100, remap 150, copy 350
    assert move_ns(p, folio_bytes=4096, batch_copy=False) == (GIB // 4096) * 950
    # a 2 MiB folio: its flush counts 512 pages, above the ceiling of 33: a full flush (35)
    assert move_ns(p, folio_bytes=2 << 20, batch_copy=False) == \
        512 * (150 + 200 + 35 + 150 + 512 * 350)
    # a 64 KiB folio: 16 pages flushed one by one
    assert move_ns(p, folio_bytes=64 << 10, batch_copy=False) == \
        (GIB // (64 << 10)) * (150 + 200 + 16 * 100 + 150 + 16 * 350)


def test_with_the_cpu_engine_batch_copy_takes_as_long_as_copying_folio_by_folio() -> None:
    p = load_profile("amd-2s")
    for kib in (4, 64, 2048):
        assert move_ns(p, folio_bytes=kib << 10, batch_copy=True) == \
            move_ns(p, folio_bytes=kib << 10, batch_copy=False)


def _gbps(profile: Profile, kib: int, *sets: str, batch_copy: bool = True) -> float:
    # Batches of 16384 base pages: enough 2 MiB folios for 16 channels (docs/calibration.md).
    p = load_profile(profile.name, overrides=list(sets))
    return move_gbps(p, folio_bytes=kib << 10, batch_pages=16384, batch_copy=batch_copy)


def test_the_model_has_the_published_shape_on_amd_2s() -> None:
    amd = load_profile("amd-2s")
    cpu = {kib: _gbps(amd, kib, batch_copy=False) for kib in (4, 2048)}
    # CPU GB/s rises with the folio size, 2M at least twice 4K
    sizes = [_gbps(amd, kib, batch_copy=False) for kib in (4, 16, 64, 256, 1024, 2048)]
    assert sizes == sorted(sizes) and cpu[2048] >= 2 * cpu[4]
    # one DMA channel is slower than the CPU at 4K
    assert _gbps(amd, 4, "copy.engine=dma", "copy.channels=1") < cpu[4]
    # 16 channels at least 4x the CPU at 2M
    assert _gbps(amd, 2048, "copy.engine=dma", "copy.channels=16") >= 4 * cpu[2048]
    # mt with 4 threads clearly faster than with 1 at 2M
    one = _gbps(amd, 2048, "copy.engine=mt", "copy.threads=1")
    assert _gbps(amd, 2048, "copy.engine=mt", "copy.threads=4") >= 2 * one


def test_with_the_kernels_batch_of_512_pages_a_2m_folio_is_alone_and_channels_do_not_help() -> None:
    amd = load_profile("amd-2s")
    got = [move_gbps(load_profile("amd-2s", overrides=["copy.engine=dma", f"copy.channels={c}"]),
                     folio_bytes=2 << 20) for c in (1, 16)]
    assert got[0] == got[1]
    assert amd.policy["batched"].batch_pages == 512


def test_the_copy_gbps_command_prints_the_table() -> None:
    got = CliRunner().invoke(app, ["config", "copy-gbps", "--profile", "amd-2s", "--json"])
    assert got.exit_code == 0, got.output
    assert '"vanilla, cpu engine"' in got.output and '"mt, 16 threads"' in got.output


def test_amd_2s_documents_every_value_and_says_where_it_comes_from() -> None:
    p = load_profile("amd-2s")
    assert (p.machine.cpus, p.machine.nodes) == (64, 2)
    missing = [key for key, _, doc, source in p.rows() if not doc or not source]
    assert missing == []


# -- the same shape on move_pages() replays ----------------------------------------------------

@pytest.fixture(scope="module")
def move_pages_traces(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    from tracereplay.generate.move_pages import MovePagesParams, write_move_pages

    d = tmp_path_factory.mktemp("move_pages")
    sizes = {4: 4, 2048: 64}  # folio KiB: MiB moved (1024 base pages; 32 PMD folios)
    for kib, mib in sizes.items():
        write_move_pages(d / f"{kib}.parquet", MovePagesParams(folio_kib=kib, total_mib=mib))
    return {kib: d / f"{kib}.parquet" for kib in sizes}


def _replayed_gbps(path: Path, policy: str, *sets: str) -> float:
    """GB/s of the trace's one move_pages() call as the planner lays it out under amd-2s."""
    profile = load_profile("amd-2s", overrides=["policy.batched.batch_pages=16384", *sets])
    trace, pre = load_prepass(path, profile)
    (plan,) = list(Planner(pre, profile, policy))
    moved = int(plan.pages["pages"].sum()) * trace.machine.page_size
    return moved / (plan.end_ns - plan.start_ns)


def test_move_pages_replays_take_what_the_cost_functions_say(move_pages_traces: dict[int, Path]) -> None:
    for kib, path in move_pages_traces.items():
        total = (4 if kib == 4 else 64) << 20
        for policy, sets in (("batched", ()), ("batched-copy", ("copy.engine=dma",)),
                             ("batched-copy", ("copy.engine=mt", "copy.threads=4"))):
            want = move_gbps(load_profile("amd-2s", overrides=list(sets)), folio_bytes=kib << 10,
                             total_bytes=total, batch_pages=16384,
                             batch_copy=policy == "batched-copy")
            assert _replayed_gbps(path, policy, *sets) == pytest.approx(want, rel=1e-9), (kib, sets)


def test_move_pages_replays_have_the_published_shape_on_amd_2s(move_pages_traces: dict[int, Path]) -> None:
    small, pmd = move_pages_traces[4], move_pages_traces[2048]
    cpu = {4: _replayed_gbps(small, "batched"), 2048: _replayed_gbps(pmd, "batched")}
    assert cpu[2048] >= 2 * cpu[4]
    assert _replayed_gbps(small, "batched-copy", "copy.engine=dma", "copy.channels=1") < cpu[4]
    assert _replayed_gbps(pmd, "batched-copy", "copy.engine=dma", "copy.channels=16") >= 4 * cpu[2048]
    one = _replayed_gbps(pmd, "batched-copy", "copy.engine=mt", "copy.threads=1")
    assert _replayed_gbps(pmd, "batched-copy", "copy.engine=mt", "copy.threads=4") >= 2 * one
