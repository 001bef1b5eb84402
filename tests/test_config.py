"""Profiles, config files and --set overrides: values, sources and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracereplay.config import aliases, current_config, load_profile, profile_names, replace
from tracereplay.errors import ConfigError
from tracereplay.migrate import DEFAULT_POLICIES, POLICIES


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
    assert p.migrate.remap_ns == load_profile().migrate.remap_ns
    assert p.sources["migrate.unmap_ns"] == str(cfg)
    assert p.overridden == frozenset({"migrate.unmap_ns"})


def test_set_accepts_a_bare_unique_key_or_a_dotted_one() -> None:
    p = load_profile(overrides=["batch_pages=64", "flush.mm_cpumask=window",
                                "policy.serial.passes=4"])
    assert (p.policy["batched"].batch_pages, p.flush.mm_cpumask) == (64, "window")
    assert p.policy["serial"].passes == 4
    assert p.sources["policy.batched.batch_pages"] == "--set batch_pages=64"


def test_each_policy_has_a_section_of_its_own_knobs() -> None:
    p = load_profile()
    # batched-copy changes only the move phase of migrate_pages_batch(): it reads batched's.
    assert list(p.policy) == ["serial", "batched", "transactional"]
    assert [POLICIES[n].section for n in POLICIES] == ["serial", "batched", "batched",
                                                       "transactional"]
    for name, cfg in p.policy.items():
        assert isinstance(cfg, POLICIES[name].config)
    assert p.to_dict()["policy"]["batched"]["batch_pages"] == 512
    assert {k for k, *_ in p.rows()} >= {"policy.serial.passes", "policy.batched.sync_passes"}
    assert "batch_size" not in p.to_dict()["migrate"]


def test_the_policies_declare_which_run_when_none_is_named() -> None:
    assert DEFAULT_POLICIES == ("serial", "batched")
    assert all(POLICIES[name].default for name in DEFAULT_POLICIES)


@pytest.mark.parametrize(("old", "new"), [
    ("migrate.batch_size=64", {"policy.batched.batch_pages": 64}),
    ("batch_size=64", {"policy.batched.batch_pages": 64}),
    ("migrate.serial_passes=4", {"policy.serial.passes": 4, "policy.batched.passes": 4}),
    ("serial_passes=4", {"policy.serial.passes": 4, "policy.batched.passes": 4}),
    ("migrate.async_passes=2", {"policy.batched.async_passes": 2}),
    ("migrate.sync_passes=5", {"policy.batched.sync_passes": 5}),
    ("flush.mm_cpumask_sample_pages=3", {"policy.serial.mm_cpumask_sample_pages": 3}),
    ("mm_cpumask_sample_pages=3", {"policy.serial.mm_cpumask_sample_pages": 3}),
])
def test_old_key_names_set_what_they_became(old: str, new: dict[str, int]) -> None:
    p = load_profile(overrides=[old])
    values = {key: value for key, value, *_ in p.rows()}
    assert {k: values[k] for k in new} == new
    assert p.overridden == frozenset(new)
    assert all(p.sources[k] == f"--set {old}" for k in new)


def test_old_key_names_work_in_a_config_file_and_config_show_names_them(tmp_path: Path) -> None:
    cfg = tmp_path / "old.toml"
    cfg.write_text('[migrate]\nbatch_size = 8\n[flush]\nmm_cpumask_sample_pages = 2\n'
                   '[sources]\n"migrate.batch_size" = "my measurements"\n')
    p = load_profile(config_file=cfg)
    assert (p.policy["batched"].batch_pages, p.policy["serial"].mm_cpumask_sample_pages) == (8, 2)
    assert p.sources["policy.batched.batch_pages"] == "my measurements"
    assert p.sources["policy.serial.mm_cpumask_sample_pages"] == str(cfg)
    docs = {key: doc for key, _, doc, _ in p.rows()}
    assert "alias: migrate.batch_size" in docs["policy.batched.batch_pages"]
    assert "alias: migrate.serial_passes" in docs["policy.batched.passes"]
    assert set(aliases()) == {"migrate.batch_size", "migrate.serial_passes", "migrate.async_passes",
                              "migrate.sync_passes", "flush.mm_cpumask_sample_pages",
                              "migrate.copy_ns"}


def test_a_policy_section_in_a_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "mine.toml"
    cfg.write_text("[policy.batched]\nbatch_pages = 16\n")
    assert load_profile(config_file=cfg).policy["batched"].batch_pages == 16
    cfg.write_text("[policy.lazy]\nbatch_pages = 16\n")
    with pytest.raises(ConfigError, match=r"unknown policy section '\[policy.lazy\]'; policies: serial, batched"):
        load_profile(config_file=cfg)
    cfg.write_text("[policy.serial]\nbatch_pages = 16\n")
    with pytest.raises(ConfigError, match=r"unknown key 'policy.serial.batch_pages'"):
        load_profile(config_file=cfg)


def test_replace_and_run_json_configs_of_old_key_names() -> None:
    p = load_profile()
    assert replace(p, batch_size=32).policy["batched"].batch_pages == 32
    assert replace(p, policy__serial__passes=2).policy["serial"].passes == 2
    old = p.to_dict()
    policies = old.pop("policy")
    del policies["transactional"]  # no key of transactional ever had another name
    old["migrate"] = {**old["migrate"], "batch_size": 512, "serial_passes": 10,
                      "async_passes": 3, "sync_passes": 7}
    old["flush"] = {**old["flush"], "mm_cpumask_sample_pages": 512}
    assert current_config(old) == {**p.to_dict(), "policy": policies}


@pytest.mark.parametrize(("overrides", "message"), [
    (["batch_size=0"], "'policy.batched.batch_pages' must be at least 1 (from --set batch_size=0): 0"),
    (["policy.serial.passes=0"], "'policy.serial.passes' must be at least 1: 0"),
    (["passes=3"], "key 'passes' is ambiguous; write one of policy.batched.passes, policy.serial.passes"),
    (["nosuch=1"], "unknown key 'nosuch'"),
    (["batch_size"], "expected key=value"),
    (["flush.mm_cpumask=lazy"], "'flush.mm_cpumask' must be 'sticky' or 'window': 'lazy'"),
    (["tlb.l1_ways=5"], "'tlb.l1_entries' must be a positive multiple of the ways (5): 64"),
    (["migrate.fail_probability=1.5"], "'migrate.fail_probability' must be in [0, 1): 1.5"),
    (["migrate.batch_size='64'"], "'policy.batched.batch_pages' must be an integer (from --set migrate.batch_size='64')"),
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
