"""The policy registry: each policy declares itself, its config section and its old key names."""

from __future__ import annotations

import dataclasses

import pytest

import tracereplay as tr
from tracereplay.config import load_profile, setting
from tracereplay.errors import ConfigError
from tracereplay.migrate import DEFAULT_POLICIES, POLICIES, policy
from tracereplay.migrate.registry import register
from tracereplay.replay import DEFAULT_POLICIES as REPLAY_DEFAULTS


def test_the_policies_are_listed_oldest_kernel_first_and_two_replay_by_default() -> None:
    assert list(POLICIES) == ["serial", "batched", "batched-copy", "transactional"]
    assert DEFAULT_POLICIES == REPLAY_DEFAULTS == ("serial", "batched")
    assert tr.POLICIES is POLICIES


def test_each_policy_declares_a_one_line_description_and_a_documented_frozen_config() -> None:
    profile = load_profile()
    for name, p in POLICIES.items():
        assert p.name == name and p.description and "\n" not in p.description
        assert p.config.__dataclass_params__.frozen and hasattr(p.config, "__slots__")
        for f in dataclasses.fields(p.config):
            assert f.kw_only, f"{name}.{f.name}"
            assert f.metadata["doc"], f"{name}.{f.name}"
            key = f"policy.{p.section}.{f.name}"
            assert profile.sources.get(key), f"{key} has no source"
        assert set(p.aliases.values()) <= {f.name for f in dataclasses.fields(p.config)}


def test_an_unknown_policy_fails_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown policy 'lazy'; known: serial, batched, "
                                          r"batched-copy, transactional"):
        policy("lazy")


def test_register_refuses_a_config_that_is_not_frozen_or_aliases_to_no_field() -> None:
    @dataclasses.dataclass
    class Loose:
        knob: int = setting("a knob")

    with pytest.raises(TypeError, match="must be a frozen dataclass"):
        register(name="loose", description="x", config=Loose, order=9)

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class Tight:
        knob: int = setting("a knob")

    with pytest.raises(TypeError, match=r"aliases name fields Tight lacks: \['other'\]"):
        register(name="tight", description="x", config=Tight, order=9,
                 aliases={"migrate.other": "other"})
    assert "loose" not in POLICIES and "tight" not in POLICIES
