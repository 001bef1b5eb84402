"""Errors of the command line name what the user typed: options, not field names; a mistyped
--set key gets a "did you mean"."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tracereplay.cli import main


def _run(args: list[str], monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["tracereplay", *args])
    try:
        main()
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "0"], "error: generate pmbench: --rate must be positive: 0.0"),
    (["--set-mib", "512", "--map-mib", "64"],
     "error: generate pmbench: --set-mib (512) must not exceed --map-mib (64)"),
    (["--threads", "40", "--cpus", "32"],
     "error: generate pmbench: 40 threads spread over 2 nodes need 20 CPUs on node 0, which has "
     "16; give fewer --threads, more --cpus, or --cpus-list"),
    (["--nodes", "4", "--src-node", "2", "--dst-node", "2"],
     "error: generate pmbench: --src-node and --dst-node must differ: 2"),
    (["--dst-node", "2"], "error: generate pmbench: --dst-node 2 is not in 0..1"),
])
def test_generate_errors_name_the_options(args: list[str], message: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.parquet"
    code, err = _run(["generate", "pmbench", "-o", str(out), *args], monkeypatch, capsys)
    assert (code, err) == (2, message)
    assert not out.exists()


@pytest.mark.parametrize(("key", "message"), [
    ("migrate.batchsize=4", "error: --set: unknown key 'migrate.batchsize'; did you mean "
                            "migrate.batch_size?"),
    ("batchpages=4", "error: --set: unknown key 'batchpages'; did you mean batch_pages?"),
    ("flush.ipi_initiator=1", "error: --set: unknown key 'flush.ipi_initiator'; did you mean "
                              "flush.ipi_initiator_ns?"),
    ("nonsense=1", "error: --set: unknown key 'nonsense' (tracereplay config show lists the keys)"),
])
def test_a_mistyped_set_key_gets_a_did_you_mean(key: str, message: str,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["config", "show", "--set", key], monkeypatch, capsys) == (2, message)


def test_a_mistyped_key_in_a_config_file_gets_a_did_you_mean(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[migrate]\ncopy = 300\n")
    assert _run(["config", "show", "--config", str(cfg)], monkeypatch, capsys) == (
        2, f"error: {cfg}: unknown key 'migrate.copy'; did you mean migrate.copy_ns?")
