"""The command line freezes what is alive when a command starts (the collector then leaves the
imported modules alone) and gives it back when the command ends, however it ends."""

from __future__ import annotations

import gc
import sys

import pytest

import tracereplay.cli as cli


@pytest.mark.parametrize("args", [["--version"], ["validate", "no-such-file.parquet"]])
def test_frozen_during_the_command_and_given_back(args: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert gc.get_freeze_count() == 0
    seen: list[int] = []
    command = cli._main

    def watched() -> None:
        seen.append(gc.get_freeze_count())
        command()

    monkeypatch.setattr(cli, "_main", watched)
    monkeypatch.setattr(sys, "argv", ["tracereplay", *args])
    with pytest.raises(SystemExit):
        cli.main()
    assert seen and seen[0] > 1000  # the modules, at least
    assert gc.get_freeze_count() == 0
