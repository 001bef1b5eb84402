"""Profiles, config files and --set overrides: values, sources and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracereplay.config import load_profile, profile_names
from tracereplay.errors import ConfigError


def test_the_shipped_profile_documents_every_value_with_a_source() -> None:
    assert "intel-2s" in profile_names()
    rows = load_profile().rows()
    missing = [key for key, _, doc, source in rows if not doc or not source]
    assert missing == []


def test_a_config_file_overrides_only_what_it_names_and_becomes_their_source(tmp_path: Path) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text("[migrate]\nunmap_ns = 60\n")
    p = load_profile(config_file=cfg)
    assert p.migrate.unmap_ns == 60
    assert p.migrate.copy_ns == load_profile().migrate.copy_ns
    assert p.sources["migrate.unmap_ns"] == str(cfg)
    assert p.overridden == frozenset({"migrate.unmap_ns"})


def test_set_accepts_a_bare_unique_key_or_a_dotted_one() -> None:
    p = load_profile(overrides=["batch_size=64", "flush.mm_cpumask=window"])
    assert (p.migrate.batch_size, p.flush.mm_cpumask) == (64, "window")
    assert p.sources["migrate.batch_size"] == "--set batch_size=64"


@pytest.mark.parametrize(("overrides", "message"), [
    (["batch_size=0"], "'migrate.batch_size' must be at least 1: 0"),
    (["nosuch=1"], "unknown key 'nosuch'"),
    (["batch_size"], "expected key=value"),
    (["flush.mm_cpumask=lazy"], "'flush.mm_cpumask' must be 'sticky' or 'window': 'lazy'"),
    (["tlb.l1_ways=5"], "'tlb.l1_entries' must be a positive multiple of the ways (5): 64"),
    (["migrate.fail_probability=1.5"], "'migrate.fail_probability' must be in [0, 1): 1.5"),
    (["migrate.batch_size='64'"], "'migrate.batch_size' must be an integer (from --set migrate.batch_size='64')"),
])
def test_bad_overrides_name_the_key_the_rule_and_the_value(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_profile(overrides=overrides)
    assert message in str(e.value)


def test_a_bad_config_file_is_named(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[migrate\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
        load_profile(config_file=cfg)
    cfg.write_text("[migrate]\nsize = 3\n")
    with pytest.raises(ConfigError, match=r"bad.toml: unknown key 'migrate.size'"):
        load_profile(config_file=cfg)
    with pytest.raises(ConfigError, match="unknown profile 'amd'"):
        load_profile("amd")
