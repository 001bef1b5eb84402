"""A profile of one's own: docs/calibration.md's steps run as written; a machine file as
``--profile PATH`` and as a partial ``--config``; the trace's machine against the file's."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tracereplay.config import load_profile
from tracereplay.errors import ConfigError, ConfigNote
from tracereplay.replay import run

REPO = Path(__file__).resolve().parents[1]


def _doc_commands() -> list[str]:
    doc = (REPO / "docs" / "calibration.md").read_text("utf-8")
    section = doc.split("## Calibrating a profile to your machine", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def _shell(commands: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``commands`` in bash in ``cwd`` (beside copies of the repository's profiles and
    samples), ``tracereplay`` being this checkout's command line."""
    script = "tracereplay() { python -m tracereplay \"$@\"; }\nset -e\n" + "\n".join(commands)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "tracereplay").symlink_to(REPO / "tracereplay")
    (tmp_path / "sample_traces").symlink_to(REPO / "sample_traces")
    return tmp_path


def test_the_calibration_docs_steps_run_as_written_with_an_edited_copy(workdir: Path) -> None:
    cp, *rest = _doc_commands()
    assert cp.startswith("cp tracereplay/profiles/intel-2s.toml my-machine.toml")
    # The edit of steps 1-4: a 64-CPU machine with its own copy cost.
    edit = ("sed -i -e 's/^cpus = 32/cpus = 64/' -e 's/^page_ns = 350/page_ns = 300/' "
            "my-machine.toml")
    r = _shell([cp, edit, *rest], workdir)
    assert r.returncode == 0, r.stderr
    assert "my-machine.toml" in r.stdout  # config show names the file as the source
    assert ("note: sample_traces/seed.parquet: the trace records machine.cpus = 32; the "
            "trace's value is used, not 64 from my-machine.toml") in " ".join(r.stderr.split())
    manifest = json.loads((workdir / "runs/seed-mine/policy=batched/run.json").read_text())
    assert manifest["config"]["copy"]["cpu"]["page_ns"] == 300
    assert manifest["trace"]["machine"]["cpus"] == 32
    assert len(manifest["notes"]) == 1


def test_an_unmodified_copy_is_the_shipped_profile_without_a_note(
    tiny_trace: Path, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    mine = tmp_path / "my-machine.toml"
    mine.write_text((REPO / "tracereplay/profiles/intel-2s.toml").read_text())
    p = load_profile(str(mine))
    same = {"name": "", "description": ""}
    assert p.to_dict() | same == load_profile().to_dict() | same
    assert p.name == "my-machine"
    assert p.sources["machine.cpus"] == load_profile().sources["machine.cpus"]
    run(REPO / "sample_traces/seed.parquet", tmp_path / "r", policies=["serial"], profile=p)
    assert not [w for w in recwarn if issubclass(w.category, ConfigNote)]


def test_a_partial_file_of_costs_is_a_profile_and_a_config(tmp_path: Path) -> None:
    costs = tmp_path / "costs.toml"
    costs.write_text("[migrate]\nunmap_ns = 60\n[flush]\nipi_initiator_ns = 700\n"
                     '[sources]\n"migrate.unmap_ns" = "perf record of migratepages"\n')
    as_profile, as_config = load_profile(str(costs)), load_profile(config_file=costs)
    same = {"name": "", "description": ""}
    assert as_profile.to_dict() | same == as_config.to_dict() | same
    assert (as_profile.migrate.unmap_ns, as_profile.flush.ipi_initiator_ns) == (60, 700)
    assert as_profile.copy_engines["cpu"].page_ns == load_profile().copy_engines["cpu"].page_ns
    assert as_profile.name == "costs"
    assert as_profile.sources["migrate.unmap_ns"] == "perf record of migratepages"
    assert as_profile.sources["flush.ipi_initiator_ns"] == str(costs)


def test_an_unknown_profile_name_says_a_path_works_too() -> None:
    with pytest.raises(ConfigError, match=r"unknown profile 'mine'; known: [a-z0-9-]+(, [a-z0-9-]+)*, or the path of a "
                       r"profile file"):
        load_profile("mine")


def test_a_missing_profile_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope.toml: cannot read profile file"):
        load_profile(str(tmp_path / "nope.toml"))


def test_set_of_the_traces_own_machine_values_is_no_conflict(tiny_trace: Path, tmp_path: Path) -> None:
    p = load_profile(overrides=["machine.nodes=2", "machine.cpus=4", "machine.cpu_node=[0,0,1,1]"])
    assert [r.policy for r in run(tiny_trace, tmp_path / "r", policies=["serial"], profile=p)] == \
        ["serial"]


def test_set_that_contradicts_the_trace_says_how_to_resolve_it(tiny_trace: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tiny.parquet: the trace records its machine, with "
                       r"machine.nodes = 2; '--set machine.nodes=4' asks for 4. Drop the --set"):
        run(tiny_trace, tmp_path / "r", profile=load_profile(overrides=["machine.nodes=4"]))
    assert not (tmp_path / "r").exists()


def test_the_command_line_accepts_a_profile_path(workdir: Path) -> None:
    (workdir / "m.toml").write_text("[machine]\nnodes = 4\n")
    r = subprocess.run([sys.executable, "-m", "tracereplay", "replay", "sample_traces/tiny.parquet",
                        "--profile", "m.toml", "-o", "out", "-p", "serial"],
                       cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)},
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "the trace records machine.nodes = 2; the trace's value is used, not 4 from m.toml" \
        in " ".join(r.stderr.split())
