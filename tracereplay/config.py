"""Cost and machine profiles: frozen, typed, documented configuration of the model.

A profile is TOML data (``tracereplay/profiles/<name>.toml``), not code. It is loaded into
frozen dataclasses, one per component; every field has a unit in its name and a description
(field metadata ``doc``); each profile says where each of its numbers comes from (``[sources]``).
Users override a profile with ``--config FILE.toml`` (a partial profile) and ``--set key=value``
(``batch_size=64`` or ``migrate.batch_size=64``).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tracereplay.errors import ConfigError
from tracereplay.machine import Machine

DEFAULT_PROFILE = "intel-2s"


def _f(doc: str, **kw: Any) -> Any:
    return field(metadata={"doc": doc}, **kw)


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineConfig:
    cpus: int = _f("number of CPUs (used when the trace does not describe its machine)")
    nodes: int = _f("number of NUMA nodes")
    page_size: int = _f("base page size, bytes")
    cpu_node: tuple[int, ...] = _f(
        "NUMA node of each CPU; empty = CPUs fill the nodes in order", default=()
    )

    def machine(self) -> Machine:
        if self.cpu_node:
            return Machine(cpus=self.cpus, nodes=self.nodes, cpu_node=self.cpu_node,
                           page_size=self.page_size)
        return Machine.spread(self.cpus, self.nodes, self.page_size)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlbConfig:
    l1_entries: int = _f("L1 dTLB entries (4 KiB pages)")
    l1_ways: int = _f("L1 dTLB associativity")
    l2_entries: int = _f("STLB entries")
    l2_ways: int = _f("STLB associativity")
    l1_hit_ns: int = _f("extra latency of an L1 dTLB hit, ns")
    l2_hit_ns: int = _f("latency of an STLB hit, ns")
    walk_ns: int = _f("page walk on an STLB miss, ns")

    @property
    def l1_sets(self) -> int:
        return self.l1_entries // self.l1_ways

    @property
    def l2_sets(self) -> int:
        return self.l2_entries // self.l2_ways


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryConfig:
    local_ns: int = _f("DRAM latency to the CPU's own node, ns")
    remote_ns: int = _f("DRAM latency to another node, ns")


@dataclass(frozen=True, slots=True, kw_only=True)
class FlushConfig:
    invlpg_ns: int = _f("invalidate one page in the local TLB (invlpg), ns")
    full_flush_ns: int = _f("flush the local TLB of one address space, ns")
    ceiling_pages: int = _f("flushes of more pages than this become full flushes (tlb_single_page_flush_ceiling)")
    ipi_initiator_ns: int = _f("initiator time of one IPI round to one target, waiting included, ns")
    ipi_extra_target_ns: int = _f("initiator time added per additional target of a round, ns")
    ipi_responder_ns: int = _f("time each receiver is interrupted by a flush IPI, flush work excluded, ns")
    mm_cpumask: str = _f("'sticky': a CPU that ever ran the process stays in mm_cpumask; 'window': only CPUs that accessed it within mm_cpumask_window_ns")
    mm_cpumask_window_ns: int = _f("activity window of mm_cpumask = 'window', ns")
    mm_cpumask_sample_pages: int = _f(
        "serial policy: pages migrated between two readings of mm_cpumask (batched reads it "
        "once per batch)", default=512)


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrateConfig:
    batch_size: int = _f("batched policy: pages unmapped before one flush (NR_MAX_BATCHED_MIGRATION)")
    other_ns: int = _f("per page attempt: allocate the destination, lock, checks, ns")
    unmap_ns: int = _f("per page: rmap walk and PTE clear (install the migration entry), ns")
    copy_ns: int = _f("per page: copy 4 KiB to the destination node, ns")
    remap_ns: int = _f("per page: install the new PTE and wake waiters, ns")
    fail_probability: float = _f("probability that an attempt finds the page busy (-EAGAIN)")
    serial_passes: int = _f("serial policy: passes over the page list (NR_MAX_MIGRATE_PAGES_RETRY)")
    async_passes: int = _f("batched policy: async passes before the sync fallback (NR_MAX_MIGRATE_ASYNC_RETRY)")
    sync_passes: int = _f("batched policy: passes of the one-by-one sync fallback")
    seed: int = _f("seed of the failure draws")


_SECTIONS: dict[str, type] = {
    "machine": MachineConfig,
    "tlb": TlbConfig,
    "memory": MemoryConfig,
    "flush": FlushConfig,
    "migrate": MigrateConfig,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """The effective configuration of a replay."""

    name: str
    description: str
    machine: MachineConfig
    tlb: TlbConfig
    memory: MemoryConfig
    flush: FlushConfig
    migrate: MigrateConfig
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    # Keys set by a --config file or --set rather than by the profile itself.
    overridden: frozenset[str] = field(default_factory=frozenset, compare=False)

    def __post_init__(self) -> None:
        _check(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (TOML/JSON-able) of the whole configuration, sources excluded."""
        d: dict[str, Any] = {"name": self.name, "description": self.description}
        for section in _SECTIONS:
            values = dataclasses.asdict(getattr(self, section))
            d[section] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return d

    def rows(self) -> list[tuple[str, Any, str, str]]:
        """(key, value, description, source) for every field, in profile order."""
        out = []
        for section, cls in _SECTIONS.items():
            obj = getattr(self, section)
            for f in dataclasses.fields(cls):
                key = f"{section}.{f.name}"
                out.append((key, getattr(obj, f.name), f.metadata["doc"], self.sources.get(key, "")))
        return out


def _check(p: Profile) -> None:
    def need(cond: bool, key: str, rule: str, value: Any) -> None:
        if not cond:
            raise ConfigError(f"config '{key}' {rule}: {value!r}")

    t, fl, m = p.tlb, p.flush, p.migrate
    for key, ways, entries in (("tlb.l1_ways", t.l1_ways, t.l1_entries),
                               ("tlb.l2_ways", t.l2_ways, t.l2_entries)):
        need(ways >= 1, key, "must be at least 1", ways)
        need(entries >= ways and entries % ways == 0, key.replace("ways", "entries"),
             f"must be a positive multiple of the ways ({ways})", entries)
    for section in ("tlb", "memory", "flush", "migrate"):
        obj = getattr(p, section)
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if f.name.endswith("_ns"):
                need(isinstance(v, int) and v >= 0, f"{section}.{f.name}",
                     "must be a non-negative integer (ns)", v)
    need(fl.ceiling_pages >= 0, "flush.ceiling_pages", "must be >= 0", fl.ceiling_pages)
    need(fl.mm_cpumask in ("sticky", "window"), "flush.mm_cpumask", "must be 'sticky' or 'window'",
         fl.mm_cpumask)
    need(fl.mm_cpumask != "window" or fl.mm_cpumask_window_ns > 0, "flush.mm_cpumask_window_ns",
         "must be positive with mm_cpumask = 'window'", fl.mm_cpumask_window_ns)
    need(m.batch_size >= 1, "migrate.batch_size", "must be at least 1", m.batch_size)
    need(fl.mm_cpumask_sample_pages >= 1, "flush.mm_cpumask_sample_pages", "must be at least 1",
         fl.mm_cpumask_sample_pages)
    need(0.0 <= m.fail_probability < 1.0, "migrate.fail_probability", "must be in [0, 1)",
         m.fail_probability)
    for key in ("serial_passes", "async_passes", "sync_passes"):
        v = getattr(m, key)
        need(v >= 1, f"migrate.{key}", "must be at least 1", v)
    p.machine.machine()  # Machine validates cpus, nodes, cpu_node and page_size


def profile_names() -> list[str]:
    """Names of the profiles shipped with tracereplay."""
    files = resources.files("tracereplay") / "profiles"
    return sorted(f.name.removesuffix(".toml") for f in files.iterdir() if f.name.endswith(".toml"))


def _read_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: not valid TOML: {e}") from e


def _profile_data(name: str) -> dict[str, Any]:
    if name not in profile_names():
        raise ConfigError(f"unknown profile '{name}'; known: {', '.join(profile_names())}")
    text = (resources.files("tracereplay") / "profiles" / f"{name}.toml").read_text("utf-8")
    return _read_toml(text, f"profile '{name}'")


def _merge(base: dict[str, Any], over: dict[str, Any], origin: str) -> None:
    for key, value in over.items():
        if key in ("name", "description"):
            base[key] = value
        elif key == "sources":
            base.setdefault("sources", {}).update(value)
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: '{key}' must be a table")
            known = {f.name for f in dataclasses.fields(_SECTIONS[key])}
            for k, v in value.items():
                if k not in known:
                    raise ConfigError(f"{origin}: unknown key '{key}.{k}'")
                base.setdefault(key, {})[k] = v
                if f"{key}.{k}" not in over.get("sources", {}):
                    base.setdefault("sources", {})[f"{key}.{k}"] = origin
                base.setdefault("overridden", []).append(f"{key}.{k}")
        else:
            raise ConfigError(f"{origin}: unknown key '{key}' (sections: {', '.join(_SECTIONS)})")


def _resolve_key(key: str) -> tuple[str, str]:
    if "." in key:
        section, name = key.split(".", 1)
        if section in _SECTIONS and name in {f.name for f in dataclasses.fields(_SECTIONS[section])}:
            return section, name
        raise ConfigError(f"--set: unknown key '{key}'")
    hits = [(s, key) for s, cls in _SECTIONS.items() if key in {f.name for f in dataclasses.fields(cls)}]
    if not hits:
        raise ConfigError(f"--set: unknown key '{key}'")
    if len(hits) > 1:
        raise ConfigError(f"--set: key '{key}' is ambiguous; write one of "
                          + ", ".join(f"{s}.{k}" for s, k in hits))
    return hits[0]


def _parse_set(item: str) -> tuple[str, str, Any]:
    if "=" not in item:
        raise ConfigError(f"--set: expected key=value: {item!r}")
    key, raw = (s.strip() for s in item.split("=", 1))
    section, name = _resolve_key(key)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string such as window
    return section, name, value


def _build(data: dict[str, Any], origin: str) -> Profile:
    sections: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        values = dict(data.get(section, {}))
        for f in dataclasses.fields(cls):
            if f.name not in values:
                if f.default is dataclasses.MISSING:
                    raise ConfigError(f"{origin}: missing key '{section}.{f.name}'")
                continue
            v = values[f.name]
            want = f.type if isinstance(f.type, str) else f.type.__name__
            key = f"{section}.{f.name}"
            where = f" (from {data['sources'][key]})" if key in data.get("overridden", ()) else ""
            if want == "int" and (not isinstance(v, int) or isinstance(v, bool)):
                raise ConfigError(f"config '{key}' must be an integer{where}: {v!r}")
            if want == "float" and (not isinstance(v, int | float) or isinstance(v, bool)):
                raise ConfigError(f"config '{key}' must be a number{where}: {v!r}")
            if want == "float":
                values[f.name] = float(v)
            if want == "str" and not isinstance(v, str):
                raise ConfigError(f"config '{key}' must be a string{where}: {v!r}")
            if f.name == "cpu_node":
                values[f.name] = tuple(v)
        sections[section] = cls(**values)
    return Profile(
        name=str(data.get("name", "custom")),
        description=str(data.get("description", "")),
        sources=dict(data.get("sources", {})),
        overridden=frozenset(data.get("overridden", ())),
        **sections,
    )


def load_profile(
    name: str = DEFAULT_PROFILE,
    *,
    config_file: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Profile:
    """The effective configuration: profile ``name``, then ``config_file``, then ``overrides``."""
    data = _profile_data(name)
    if config_file is not None:
        path = Path(config_file)
        try:
            text = path.read_text("utf-8")
        except OSError as e:
            raise ConfigError(f"{path}: cannot read config file: {e.strerror}") from e
        _merge(data, _read_toml(text, str(path)), str(path))
    for item in overrides:
        section, key, value = _parse_set(item)
        data.setdefault(section, {})[key] = value
        data.setdefault("sources", {})[f"{section}.{key}"] = f"--set {item}"
        data.setdefault("overridden", []).append(f"{section}.{key}")
    return _build(data, f"profile '{name}'")


def replace(profile: Profile, **changes: Any) -> Profile:
    """A copy of ``profile`` with ``section__field=value`` or bare unique field names changed."""
    data = profile.to_dict()
    data["sources"] = dict(profile.sources)
    data["overridden"] = list(profile.overridden)
    for key, value in changes.items():
        section, name = _resolve_key(key.replace("__", "."))
        data[section][name] = value
    return _build(data, profile.name)
