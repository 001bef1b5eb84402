"""Cost and machine profiles: frozen, typed, documented configuration of the model.

A profile is TOML data (``tracereplay/profiles/<name>.toml``), not code. It is loaded into
frozen dataclasses, one per component; every field has a unit in its name and a description
(field metadata ``doc``); each profile says where each of its numbers comes from (``[sources]``).
Users override a profile with ``--config FILE.toml`` (a partial profile) and ``--set key=value``
(``policy.batched.batch_pages=64``, or a bare key that names one field: ``batch_pages=64``).

The sections ``machine``, ``tlb``, ``memory``, ``flush`` and ``migrate`` are defined here;
``[policy.<name>]`` holds one migration policy's own knobs, with the config class the policy
declares in its registration (``tracereplay.migrate.registry``). Keys that moved into a policy's
section keep working under their old names (``migrate.batch_size``, ``batch_size`` …): each
policy declares the old names of its fields, and ``config show`` lists them.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tracereplay.distances import distance_problem, remote_distances
from tracereplay.errors import ConfigError
from tracereplay.machine import Machine

DEFAULT_PROFILE = "intel-2s"


def setting(doc: str, *, at_least: int | None = None, **kw: Any) -> Any:
    """A config field: its description (shown by ``config show``) and, for a count, its least
    allowed value. The unit belongs in the field's name."""
    return field(metadata={"doc": doc, "at_least": at_least}, **kw)


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineConfig:
    cpus: int = setting("number of CPUs (used when the trace does not describe its machine)")
    nodes: int = setting("number of NUMA nodes")
    page_size: int = setting("base page size, bytes")
    cpu_node: tuple[int, ...] = setting(
        "NUMA node of each CPU; empty = CPUs fill the nodes in order", default=()
    )
    arch: str = setting("instruction set: 'x86_64' or 'arm64' (which flush mechanisms exist)",
                        default="x86_64")

    def machine(self) -> Machine:
        if self.cpu_node:
            return Machine(cpus=self.cpus, nodes=self.nodes, cpu_node=self.cpu_node,
                           page_size=self.page_size)
        return Machine.spread(self.cpus, self.nodes, self.page_size)


@dataclass(frozen=True, slots=True, kw_only=True)
class TlbConfig:
    l1_entries: int = setting("L1 dTLB entries (4 KiB pages)")
    l1_ways: int = setting("L1 dTLB associativity")
    l2_entries: int = setting("STLB entries")
    l2_ways: int = setting("STLB associativity")
    l1_hit_ns: int = setting("extra latency of an L1 dTLB hit, ns")
    l2_hit_ns: int = setting("latency of an STLB hit, ns")
    walk_ns: int = setting("page walk on an STLB miss, ns")
    l1_2m_entries: int = setting(
        "L1 dTLB entries for 2 MiB pages (PMD-mapped folios) in an array of their own; 0: they "
        "share the 4 KiB array", default=0)
    l1_2m_ways: int = setting("associativity of the L1 dTLB's 2 MiB array (0 when shared)",
                              default=0)
    l2_2m_entries: int = setting(
        "STLB entries for 2 MiB pages in an array of their own; 0: they share the STLB",
        default=0)
    l2_2m_ways: int = setting("associativity of the STLB's 2 MiB array (0 when shared)",
                              default=0)

    @property
    def l1_sets(self) -> int:
        return self.l1_entries // self.l1_ways

    @property
    def l2_sets(self) -> int:
        return self.l2_entries // self.l2_ways


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryConfig:
    local_ns: int = setting("DRAM latency to the CPU's own node, ns")
    remote_ns: int = setting("DRAM latency to another node, ns")
    distances: tuple[tuple[int, ...], ...] = setting(
        "node distances as numactl -H prints them (ACPI SLIT: 10 on the diagonal, row = CPU's "
        "node); empty: every other node costs remote_ns (tracereplay.distances)", default=())
    remote_distance: int = setting(
        "the distance (in memory.distances) of the node pair remote_ns was measured at; other "
        "distances scale linearly from it (used only with memory.distances)", default=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlushConfig:
    invlpg_ns: int = setting("invalidate one page in the local TLB (invlpg), ns")
    full_flush_ns: int = setting("flush the local TLB of one address space, ns")
    ceiling_pages: int = setting("flushes of more pages than this become full flushes (tlb_single_page_flush_ceiling)")
    ipi_initiator_ns: int = setting("initiator time of one IPI round to one target, waiting included, ns")
    ipi_extra_target_ns: int = setting("initiator time added per additional target of a round, ns")
    ipi_responder_ns: int = setting("time each receiver is interrupted by a flush IPI, flush work excluded, ns")
    mm_cpumask: str = setting("'sticky': a CPU that ever ran the process stays in mm_cpumask; 'window': only CPUs that accessed it within mm_cpumask_window_ns")
    mm_cpumask_window_ns: int = setting("activity window of mm_cpumask = 'window', ns")
    mechanism: str = setting(
        "how a flush round reaches the CPUs: 'ipi', 'invlpgb' (x86_64), 'tlbi' (arm64); its "
        "own costs are [flush.<mechanism>]", default="ipi")


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrateConfig:
    """Per-page costs and failures, shared by every policy (a policy's own knobs are in its
    ``[policy.<name>]`` section)."""

    other_ns: int = setting("per page attempt: allocate the destination, lock, checks, ns")
    unmap_ns: int = setting("per mapping of a page (one PTE; a trace's mappings column, 1 by "
                            "default): rmap step and PTE clear (install the migration entry), ns")
    remap_ns: int = setting("per mapping of a page: install the new PTE and wake waiters, ns")
    fail_probability: float = setting("probability that an attempt finds the page busy (-EAGAIN)")
    seed: int = setting("seed of the failure draws")
    call_start: str = setting(
        "when a call starts: 'queued' (at its trace time or when the previous call on its CPU "
        "ends, whichever is later) or 'trace' (at its trace time, even while the previous call "
        "on its CPU is still running in the model: a capture's calls, whose times are "
        "measured)", default="queued")


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyConfig:
    """The copy engine and its counts; each engine's costs are in its ``[copy.<name>]``
    section (``tracereplay.copy``)."""

    engine: str = setting("copy engine of the folios' contents: 'cpu', 'mt' or 'dma' (tracereplay.copy)")
    threads: int = setting("kernel threads of the 'mt' engine", at_least=1)
    channels: int = setting("DMA channels of the 'dma' engine", at_least=1)


_SECTIONS: dict[str, type] = {
    "machine": MachineConfig,
    "tlb": TlbConfig,
    "memory": MemoryConfig,
    "flush": FlushConfig,
    "migrate": MigrateConfig,
    "copy": CopyConfig,
}
POLICY = "policy"  # [policy.<name>]: one section per registered policy
COPY = "copy"  # [copy.<name>]: one section per registered copy engine
MECHANISM = "flush"  # [flush.<name>]: one section per registered flush mechanism
ARCHES = ("x86_64", "arm64")
CALL_STARTS = ("queued", "trace")  # migrate.call_start


def _policies() -> dict[str, Any]:
    """The registered policies, in their order. The registry lives with the policies, which
    import this module, so it is imported when first needed."""
    from tracereplay.migrate import POLICIES

    return POLICIES


def _mechanisms() -> dict[str, Any]:
    """The registered flush mechanisms, in their order (imported when first needed, as the
    policies are)."""
    from tracereplay.flush import MECHANISMS

    return MECHANISMS


def _engines() -> dict[str, Any]:
    """The registered copy engines, in their order (imported when first needed, as the
    policies are)."""
    from tracereplay.copy import ENGINES

    return ENGINES


def _sections() -> dict[str, type]:
    """Every section and its config class: the fixed ones, ``flush.<name>`` for each registered
    flush mechanism, ``copy.<name>`` for each registered copy engine, then ``policy.<name>`` for
    each registered policy."""
    return {**_SECTIONS, **{f"{MECHANISM}.{n}": e.config for n, e in _mechanisms().items()},
            **{f"{COPY}.{n}": e.config for n, e in _engines().items()},
            **{f"{POLICY}.{n}": p.config for n, p in _policies().items() if p.section == n}}


# Old keys of the fixed sections that moved, with the key each sets now.
_MOVED: dict[str, str] = {
    "migrate.copy_ns": f"{COPY}.cpu.page_ns",  # the per-page copy became the cpu engine's
}


def aliases() -> dict[str, tuple[str, ...]]:
    """Old keys that still work, each with the keys it sets now (as the policies declare
    them): ``migrate.serial_passes`` sets the pass budget of every policy that had it."""
    out: dict[str, list[str]] = {old: [new] for old, new in _MOVED.items()}
    for name, p in _policies().items():
        for old, fld in p.aliases.items():
            out.setdefault(old, []).append(f"{POLICY}.{name}.{fld}")
    return {k: tuple(v) for k, v in out.items()}


def _split(key: str) -> tuple[str, str]:
    """(section, field) of a full key: ``policy.batched.batch_pages`` -> (``policy.batched``,
    ``batch_pages``)."""
    section, _, name = key.rpartition(".")
    return section, name


def _plain(obj: Any) -> dict[str, Any]:
    values = dataclasses.asdict(obj)
    return {k: _listed(v) for k, v in values.items()}


def _listed(v: Any) -> Any:
    """Tuples (a matrix's rows too) as lists, as TOML and JSON give them back."""
    return [_listed(x) for x in v] if isinstance(v, tuple) else v


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
    # Each registered policy's own config ([policy.<name>]), by name, in the registry's order
    # (a policy that reads another's section has none).
    policy: dict[str, Any]
    copy: CopyConfig
    # Each registered copy engine's costs ([copy.<name>]), by name, in the registry's order.
    copy_engines: dict[str, Any]
    # Each registered flush mechanism's own config ([flush.<name>]), by name.
    mechanisms: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    # Keys set by a file of one's own (--profile PATH, --config) or --set rather than by a
    # shipped profile.
    overridden: frozenset[str] = field(default_factory=frozenset, compare=False)
    # Where each overridden key was set: the file's path, or the --set item.
    origins: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _check(self)

    def section(self, section: str) -> Any:
        """The config object of ``section`` (``flush``, ``policy.batched`` …)."""
        if section.startswith(f"{POLICY}."):
            return self.policy[section.removeprefix(f"{POLICY}.")]
        if section.startswith(f"{MECHANISM}."):
            return self.mechanisms[section.removeprefix(f"{MECHANISM}.")]
        if section.startswith(f"{COPY}."):
            return self.copy_engines[section.removeprefix(f"{COPY}.")]
        return getattr(self, section)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (TOML/JSON-able) of the whole configuration, sources excluded; the
        policies' sections under ``policy``, by name."""
        d: dict[str, Any] = {"name": self.name, "description": self.description}
        for section in _SECTIONS:
            d[section] = _plain(getattr(self, section))
        d[MECHANISM].update({name: _plain(cfg) for name, cfg in self.mechanisms.items() if _plain(cfg)})
        d[COPY].update({name: _plain(cfg) for name, cfg in self.copy_engines.items()})
        d[POLICY] = {name: _plain(cfg) for name, cfg in self.policy.items()}
        return d

    def rows(self) -> list[tuple[str, Any, str, str]]:
        """(key, value, description, source) for every field, in profile order; a key that
        also has an old name says so in its description."""
        old_names: dict[str, list[str]] = {}
        for old, targets in aliases().items():
            for t in targets:
                old_names.setdefault(t, []).append(old)
        out = []
        for section, cls in _sections().items():
            obj = self.section(section)
            for f in dataclasses.fields(cls):
                key = f"{section}.{f.name}"
                doc = f.metadata["doc"]
                if key in old_names:
                    doc += f" (alias: {', '.join(old_names[key])})"
                out.append((key, getattr(obj, f.name), doc, self.sources.get(key, "")))
        return out


def _check(p: Profile) -> None:
    def need(cond: bool, key: str, rule: str, value: Any) -> None:
        if not cond:
            # Name where the value came from when the user wrote it under another name.
            source = p.sources.get(key, "") if key in p.overridden else ""
            where = f" (from {source})" if source and key not in source else ""
            raise ConfigError(f"config '{key}' {rule}{where}: {value!r}")

    t, fl, m = p.tlb, p.flush, p.migrate
    for key, ways, entries in (("tlb.l1_ways", t.l1_ways, t.l1_entries),
                               ("tlb.l2_ways", t.l2_ways, t.l2_entries)):
        need(ways >= 1, key, "must be at least 1", ways)
        need(entries >= ways and entries % ways == 0, key.replace("ways", "entries"),
             f"must be a positive multiple of the ways ({ways})", entries)
    for key, ways, entries in (("tlb.l1_2m_ways", t.l1_2m_ways, t.l1_2m_entries),
                               ("tlb.l2_2m_ways", t.l2_2m_ways, t.l2_2m_entries)):
        # 0 entries: 2 MiB translations share the 4 KiB array (and the ways must be 0 too).
        need(ways >= (1 if entries else 0) and (entries > 0 or ways == 0), key,
             "must be at least 1 with a 2 MiB array of its own, 0 without one", ways)
        need(entries >= 0 and (not entries or entries % ways == 0),
             key.replace("ways", "entries"),
             f"must be 0 or a positive multiple of the ways ({ways})", entries)
    for section in _sections():
        if section == "machine":
            continue
        obj = p.section(section)
        for f in dataclasses.fields(obj):
            v, key, least = getattr(obj, f.name), f"{section}.{f.name}", f.metadata.get("at_least")
            if f.name.endswith("_ns"):
                need(isinstance(v, int) and v >= 0, key, "must be a non-negative integer (ns)", v)
            if least is not None:
                need(v >= least, key, f"must be at least {least}", v)
    need(fl.ceiling_pages >= 0, "flush.ceiling_pages", "must be >= 0", fl.ceiling_pages)
    need(fl.mm_cpumask in ("sticky", "window"), "flush.mm_cpumask", "must be 'sticky' or 'window'",
         fl.mm_cpumask)
    need(fl.mm_cpumask != "window" or fl.mm_cpumask_window_ns > 0, "flush.mm_cpumask_window_ns",
         "must be positive with mm_cpumask = 'window'", fl.mm_cpumask_window_ns)
    need(p.migrate.call_start in CALL_STARTS, "migrate.call_start",
         f"must be one of {', '.join(CALL_STARTS)}", p.migrate.call_start)
    need(p.machine.arch in ARCHES, "machine.arch", f"must be one of {', '.join(ARCHES)}",
         p.machine.arch)
    mechanisms = _mechanisms()
    need(fl.mechanism in mechanisms, "flush.mechanism",
         f"must be one of {', '.join(mechanisms)}", fl.mechanism)
    arches = mechanisms[fl.mechanism].arches
    need(p.machine.arch in arches, "flush.mechanism",
         f"does not exist on machine.arch '{p.machine.arch}' (only on {', '.join(arches)})",
         fl.mechanism)
    need(p.copy.engine in _engines(), "copy.engine",
         f"must be one of {', '.join(map(repr, _engines()))}", p.copy.engine)
    need(0.0 <= m.fail_probability < 1.0, "migrate.fail_probability", "must be in [0, 1)",
         m.fail_probability)
    p.machine.machine()  # Machine validates cpus, nodes, cpu_node and page_size
    _check_distances(p.memory, p.machine.nodes, need)


def _check_distances(mem: MemoryConfig, nodes: int, need: Any) -> None:
    """``memory.distances`` is a valid SLIT of the machine's nodes, and ``remote_distance``
    names the distance ``remote_ns`` was measured at (tracereplay.distances)."""
    problem = distance_problem(mem.distances, nodes)
    need(problem is None, "memory.distances", problem or "", _listed(mem.distances))
    remote = remote_distances(mem.distances)
    if remote:
        need(mem.remote_distance in remote, "memory.remote_distance",
             "must be the distance at which memory.remote_ns was measured, one of the "
             f"off-diagonal distances of memory.distances ({', '.join(map(str, remote))})",
             mem.remote_distance)
        need(mem.remote_ns >= mem.local_ns, "memory.remote_ns",
             f"must not be below memory.local_ns ({mem.local_ns}) with memory.distances",
             mem.remote_ns)


def profile_names() -> list[str]:
    """Names of the profiles shipped with tracereplay."""
    files = resources.files("tracereplay") / "profiles"
    return sorted(f.name.removesuffix(".toml") for f in files.iterdir() if f.name.endswith(".toml"))


def _read_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: not valid TOML: {e}") from e


def is_profile_path(name: str) -> bool:
    """Whether ``--profile`` names a file of one's own rather than a shipped profile."""
    return "/" in name or name.endswith(".toml")


def _read_file(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what}: {e.strerror}") from e
    return _read_toml(text, str(path))


def _profile_data(name: str) -> dict[str, Any]:
    """The profile's values by section (``policy.<name>`` for the policies' sections)."""
    if name not in profile_names():
        raise ConfigError(f"unknown profile '{name}'; known: {', '.join(profile_names())}, or "
                          "the path of a profile file (a copy of one, e.g. my-machine.toml)")
    text = (resources.files("tracereplay") / "profiles" / f"{name}.toml").read_text("utf-8")
    data: dict[str, Any] = {}
    _merge(data, _read_toml(text, f"profile '{name}'"), f"profile '{name}'", overriding=False)
    return data


def _targets(key: str) -> tuple[str, ...]:
    """The keys a full key sets: itself, or what its old name became; () if unknown."""
    section, name = _split(key)
    cls = _sections().get(section)
    if cls is not None and name in {f.name for f in dataclasses.fields(cls)}:
        return (key,)
    return aliases().get(key, ())


def _merge(base: dict[str, Any], over: dict[str, Any], origin: str, *,
           overriding: bool = True) -> None:
    """Merge TOML data ``over`` (from ``origin``) into ``base`` (values by section). Old key
    names set what they became; a value's source is ``over``'s ``[sources]`` entry for it, or
    ``origin`` when ``overriding``."""
    sources = base.setdefault("sources", {})
    shipped_sources = dict(sources)
    shipped_values = {f"{sec}.{k}": v for sec, table in base.items()
                      if sec in _sections() and isinstance(table, dict) for k, v in table.items()}
    given = over.get("sources", {})
    if not isinstance(given, dict):
        raise ConfigError(f"{origin}: 'sources' must be a table")
    for key, text in given.items():
        for target in _targets(key) or (key,):
            sources[target] = text
    tables: list[tuple[str, Any]] = []
    for key, value in over.items():
        if key in ("name", "description"):
            base[key] = value
        elif key == POLICY:
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: '{key}' must be a table")
            tables += [(f"{POLICY}.{name}", table) for name, table in value.items()]
        elif key == MECHANISM and isinstance(value, dict):
            # [flush] holds its own keys and the mechanisms' sections ([flush.<name>]).
            own = {k: v for k, v in value.items() if not isinstance(v, dict)}
            tables.append((key, own))
            tables += [(f"{key}.{k}", v) for k, v in value.items() if isinstance(v, dict)]
        elif key == COPY and isinstance(value, dict):
            # [copy] holds the engine and its counts; [copy.<name>] an engine's costs.
            tables.append((key, {k: v for k, v in value.items() if not isinstance(v, dict)}))
            tables += [(f"{COPY}.{k}", v) for k, v in value.items() if isinstance(v, dict)]
        elif key in _SECTIONS:
            tables.append((key, value))
        elif key != "sources":
            raise ConfigError(f"{origin}: unknown key '{key}' (sections: "
                              f"{', '.join([*_SECTIONS, f'{POLICY}.<name>'])})")
    for section, table in tables:
        if section.startswith(f"{POLICY}.") and section not in _sections():
            raise ConfigError(f"{origin}: unknown policy section '[{section}]'; policies: "
                              f"{', '.join(_policies())}")
        if section.startswith(f"{MECHANISM}.") and section not in _sections():
            raise ConfigError(f"{origin}: unknown flush mechanism section '[{section}]'; "
                              f"mechanisms: {', '.join(_mechanisms())}")
        if section.startswith(f"{COPY}.") and section not in _sections():
            raise ConfigError(f"{origin}: unknown copy engine section '[{section}]'; engines: "
                              f"{', '.join(_engines())}")
        if not isinstance(table, dict):
            raise ConfigError(f"{origin}: '{section}' must be a table")
        for k, v in table.items():
            key = f"{section}.{k}"
            targets = _targets(key)
            if not targets:
                raise _unknown_key(key, origin)
            for target in targets:
                target_section, name = _split(target)
                base.setdefault(target_section, {})[name] = v
                if overriding:
                    shipped = shipped_sources.get(target)
                    stale = shipped is not None and shipped_values.get(target, v) != v
                    if (key not in given and target not in given) or (
                            stale and sources.get(target) == shipped):
                        # a value without a source of its own, or an edited value that kept
                        # the source of the shipped number it replaced
                        sources[target] = origin
                    base.setdefault("overridden", []).append(target)
                    base.setdefault("origins", {})[target] = origin


def _unknown_key(key: str, where: str = "--set") -> ConfigError:
    """The error for an unknown ``key`` given in ``where``: the closest known keys as a "did
    you mean"."""
    known = [f"{section}.{f.name}" for section, cls in _sections().items()
             for f in dataclasses.fields(cls)]
    known += list(aliases())
    if "." not in key:
        known = sorted({_split(k)[1] for k in known})
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.75)
    hint = f"; did you mean {' or '.join(close)}?" if close else \
        " (tracereplay config show lists the keys)"
    return ConfigError(f"{where}: unknown key '{key}'{hint}")


def _resolve_key(key: str) -> tuple[str, ...]:
    """The keys ``--set key=…`` sets: a full key, an old name, or a bare field name (or old
    name's last part) that names one of them."""
    if "." in key:
        targets = _targets(key)
        if not targets:
            raise _unknown_key(key)
        return targets
    named = {f"{section}.{f.name}" for section, cls in _sections().items()
             for f in dataclasses.fields(cls) if f.name == key}
    named |= {old for old in aliases() if _split(old)[1] == key}
    hits: dict[tuple[str, ...], str] = {}
    for full in sorted(named):
        hits.setdefault(_targets(full), full)
    if not hits:
        raise _unknown_key(key)
    if len(hits) > 1:
        raise ConfigError(f"--set: key '{key}' is ambiguous; write one of "
                          + ", ".join(sorted(hits.values())))
    return next(iter(hits))


def _parse_set(item: str) -> tuple[tuple[str, ...], Any]:
    if "=" not in item:
        raise ConfigError(f"--set: expected key=value: {item!r}")
    key, raw = (s.strip() for s in item.split("=", 1))
    targets = _resolve_key(key)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string such as window
    return targets, value


def _build(data: dict[str, Any], origin: str) -> Profile:
    sections: dict[str, Any] = {}
    for section, cls in _sections().items():
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
            if f.name == "distances" and isinstance(v, list):
                values[f.name] = tuple(tuple(r) if isinstance(r, list) else r for r in v)
        sections[section] = cls(**values)
    return Profile(
        name=str(data.get("name", "custom")),
        description=str(data.get("description", "")),
        sources=dict(data.get("sources", {})),
        overridden=frozenset(data.get("overridden", ())),
        origins=dict(data.get("origins", {})),
        policy={name: sections.pop(f"{POLICY}.{name}") for name, p in _policies().items()
                if p.section == name},
        mechanisms={name: sections.pop(f"{MECHANISM}.{name}") for name in _mechanisms()},
        copy_engines={name: sections.pop(f"{COPY}.{name}") for name in _engines()},
        **sections,
    )


def load_profile(
    name: str = DEFAULT_PROFILE,
    *,
    config_file: str | os.PathLike[str] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> Profile:
    """The effective configuration: profile ``name``, then ``config_file``, then ``overrides``.

    ``name`` is a shipped profile or the path of a profile file of one's own (a name with a
    ``/`` or ending in ``.toml``): the keys such a file does not set come from the shipped
    default profile, as with ``config_file``."""
    if is_profile_path(name):
        path = Path(name)
        data = _profile_data(DEFAULT_PROFILE)
        given = _read_file(path, "profile file")
        _merge(data, given, str(path))
        described = given.get("description")
        data.update(name=path.stem, description=f"{path}: {described}" if described
                    else f"{path} over '{DEFAULT_PROFILE}'")
    else:
        data = _profile_data(name)
    if config_file is not None:
        path = Path(config_file)
        _merge(data, _read_file(path, "config file"), str(path))
    for item in overrides:
        targets, value = _parse_set(item)
        for target in targets:
            section, key = _split(target)
            data.setdefault(section, {})[key] = value
            data.setdefault("sources", {})[target] = f"--set {item}"
            data.setdefault("overridden", []).append(target)
            data.setdefault("origins", {})[target] = f"--set {item}"
    return _build(data, f"profile '{name}'")


def replace(profile: Profile, **changes: Any) -> Profile:
    """A copy of ``profile`` with ``section__field=value`` (``policy__batched__batch_pages``),
    old names (``migrate__batch_size``) or bare unique field names changed."""
    data: dict[str, Any] = {"name": profile.name, "description": profile.description,
                            "sources": dict(profile.sources),
                            "overridden": list(profile.overridden),
                            "origins": dict(profile.origins)}
    for section in _sections():
        data[section] = _plain(profile.section(section))
    for key, value in changes.items():
        for target in _resolve_key(key.replace("__", ".")):
            section, name = _split(target)
            data[section][name] = value
    return _build(data, profile.name)


def current_config(config: dict[str, Any]) -> dict[str, Any]:
    """A ``run.json`` ``config`` as :meth:`Profile.to_dict` writes it now: values written under
    an old key name (before the policies had sections of their own) moved to the keys it sets."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
    policies = {k: dict(v) for k, v in out.get(POLICY, {}).items()}
    for old, targets in aliases().items():
        section, name = _split(old)
        values = out.get(section)
        if not isinstance(values, dict) or name not in values:
            continue
        value = values.pop(name)
        for target in targets:
            target_section, key = _split(target)
            if target_section.startswith(f"{POLICY}."):
                policies.setdefault(target_section.removeprefix(f"{POLICY}."), {}).setdefault(key, value)
            else:  # a fixed section's key that moved: copy.cpu.page_ns
                table = out.setdefault(COPY, {})
                table.setdefault(target_section.removeprefix(f"{COPY}."), {}).setdefault(key, value)
    if policies:
        out[POLICY] = policies
    return out


def first_difference(old: Any, new: Any, key: str = "") -> tuple[str, Any, Any] | None:
    """The first (dotted key, old value, new value), in key order, where two configurations
    (nested dicts) differ; None when they are equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            d = first_difference(old.get(k), new.get(k), f"{key}.{k}" if key else str(k))
            if d is not None:
                return d
        return None
    return None if old == new else (key, old, new)
