"""``tracereplay generate``: synthetic traces."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, TypeGuard

import typer

from tracereplay.cli._app import app, err
from tracereplay.errors import BadInputError
from tracereplay.generate.move_pages import MovePagesParams, write_move_pages
from tracereplay.generate.pmbench import (
    ARRIVALS,
    DEFAULT_SHAPE,
    PATTERNS,
    Arrivals,
    Pattern,
    PmbenchParams,
    parse_cpu_list,
    write_pmbench,
)

generate_app = typer.Typer(
    name="generate",
    help="Generate synthetic traces.",
    no_args_is_help=True,
)
app.add_typer(generate_app)

_SHAPES = ", ".join(f"{k} {v}" for k, v in DEFAULT_SHAPE.items() if v is not None)


# Fields of PmbenchParams whose option is not the field's name with dashes.
_OPTION_OF = {"thread_rate_per_s": "rate"}


def _in_options(e: BadInputError) -> BadInputError:
    """``e`` as the command line says it: each quoted field name of PmbenchParams becomes the
    option the user typed ('thread_rate_per_s' -> --rate, 'set_mib' -> --set-mib)."""
    fields = set(PmbenchParams.__dataclass_fields__)

    def option(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in fields:
            return m.group(0)
        return "--" + _OPTION_OF.get(name, name).replace("_", "-")

    text = re.sub(r"'([a-z_]+)'", option, str(e)).replace("pmbench: ", "", 1)
    return BadInputError(f"generate pmbench: {text}")


def _is_pattern(value: str) -> TypeGuard[Pattern]:
    return value in PATTERNS


def _is_arrivals(value: str) -> TypeGuard[Arrivals]:
    return value in ARRIVALS


@generate_app.command()
def pmbench(
    output: Annotated[Path, typer.Option("--output", "-o", help="Trace file to write.")],
    threads: Annotated[int | None, typer.Option(
        help="pmbench threads (-j), one per CPU. (default: 16, or one per --cpus-list CPU)")
    ] = None,
    cpus_list: Annotated[str | None, typer.Option(
        "--cpus-list", help="CPUs of the threads, e.g. 0-7,16-23. (default: spread evenly "
        "over the nodes)")] = None,
    map_mib: Annotated[int, typer.Option(help="Mapping size in MiB (-m).")] = 256,
    set_mib: Annotated[int, typer.Option(help="Working set in MiB (-s), within the map.")] = 128,
    pattern: Annotated[str, typer.Option(
        help=f"Access pattern (-p): {', '.join(PATTERNS)}.")] = "uniform",
    shape: Annotated[float | None, typer.Option(
        help=f"Pattern parameter (-e). (default: {_SHAPES}; uniform takes none)")] = None,
    read_pct: Annotated[float, typer.Option(help="Percentage of loads (-r).")] = 50.0,
    rate: Annotated[float, typer.Option(help="Accesses per second of each thread.")] = 1e6,
    arrivals: Annotated[str, typer.Option(
        help=f"Arrival process of each thread: {', '.join(ARRIVALS)}.")] = "poisson",
    migrate_every_ms: Annotated[float, typer.Option(
        help="Interval of the migratepages calls (--src-node -> --dst-node, back, ...); "
             "0: none.")] = 5.0,
    src_node: Annotated[int, typer.Option(
        help="Node the first migratepages call moves the pages from.")] = 0,
    dst_node: Annotated[int, typer.Option(
        help="Node the first call moves them to; later calls alternate. Pages on other "
             "nodes never move.")] = 1,
    migrate_cpu: Annotated[int | None, typer.Option(
        help="CPU the migratepages calls run on. (default: the last CPU with no thread)")
    ] = None,
    cpus: Annotated[int, typer.Option(help="CPUs of the machine.")] = 32,
    nodes: Annotated[int, typer.Option(help="NUMA nodes of the machine.")] = 2,
    duration_ms: Annotated[float | None, typer.Option(
        help="How long the workload runs after the prefault, ms. (default: 100 unless "
        "--accesses)")] = None,
    accesses: Annotated[int | None, typer.Option(
        help="Number of workload accesses (prefault touches come on top).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random generator.")] = 0,
    pid: Annotated[int, typer.Option(help="pid of the pmbench process.")] = 1000,
    prefault: Annotated[bool, typer.Option(
        "--prefault/--no-prefault",
        help="Start with one first-touch write per working-set page, shared by the threads.")
    ] = True,
) -> None:
    """pmbench threads on the nodes while migratepages moves the pages 0->1->0 ... .

    Same options, byte-identical file.
    """
    cpu_tuple = parse_cpu_list(cpus_list) if cpus_list is not None else None
    if threads is None:
        threads = len(cpu_tuple) if cpu_tuple is not None else 16
    if not _is_pattern(pattern):
        raise BadInputError(f"--pattern must be one of {', '.join(PATTERNS)}: {pattern!r}")
    if not _is_arrivals(arrivals):
        raise BadInputError(f"--arrivals must be one of {', '.join(ARRIVALS)}: {arrivals!r}")
    try:
        params = PmbenchParams(
            threads=threads, cpus_list=cpu_tuple, map_mib=map_mib, set_mib=set_mib,
            pattern=pattern, shape=shape, read_pct=read_pct, thread_rate_per_s=rate,
            arrivals=arrivals,
            migrate_every_ms=migrate_every_ms, migrate_cpu=migrate_cpu, cpus=cpus, nodes=nodes,
            duration_ms=duration_ms, accesses=accesses, seed=seed, pid=pid, prefault=prefault,
            src_node=src_node, dst_node=dst_node,
        )
    except BadInputError as e:
        raise _in_options(e) from None
    started = time.perf_counter()
    rows = write_pmbench(output, params)
    took_s = time.perf_counter() - started
    size_mib = output.stat().st_size / (1 << 20)
    err.print(f"wrote {output}: {rows:,} rows, {size_mib:,.1f} MiB in {took_s:.1f} s",
              highlight=False)


@generate_app.command("move-pages")
def move_pages(
    output: Annotated[Path, typer.Option("--output", "-o", help="Trace file to write.")],
    folio_kib: Annotated[int, typer.Option(
        help="Folio size in KiB: a power of two from one base page to a PMD (4 ... 2048).")] = 4,
    total_mib: Annotated[int, typer.Option(help="Size of the mapping moved, MiB.")] = 1024,
    threads: Annotated[int, typer.Option(
        help="Threads touching the mapping meanwhile (0: none).")] = 0,
    rate: Annotated[float, typer.Option(help="Accesses per second of each thread.")] = 1e6,
    read_pct: Annotated[float, typer.Option(help="Percentage of loads of the threads.")] = 50.0,
    duration_ms: Annotated[float, typer.Option(
        help="How long the threads touch the mapping after the prefault, ms.")] = 100.0,
    call_ms: Annotated[float, typer.Option(
        help="When the move_pages() call runs after the prefault, ms.")] = 1.0,
    migrate_cpu: Annotated[int, typer.Option(
        help="CPU of the process that faults the mapping in and calls move_pages().")] = 0,
    cpus: Annotated[int, typer.Option(help="CPUs of the machine.")] = 64,
    nodes: Annotated[int, typer.Option(help="NUMA nodes of the machine.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the random generator.")] = 0,
    pid: Annotated[int, typer.Option(help="pid of the process.")] = 1000,
) -> None:
    """A mapping of folios of one size on node 0 and one move_pages() call moving them all to
    node 1, as the batch-copy series measures it.

    Same options, byte-identical file.
    """
    params = MovePagesParams(
        folio_kib=folio_kib, total_mib=total_mib, threads=threads, thread_rate_per_s=rate,
        read_pct=read_pct, duration_ms=duration_ms, call_ms=call_ms, migrate_cpu=migrate_cpu,
        cpus=cpus, nodes=nodes, seed=seed, pid=pid)
    started = time.perf_counter()
    rows = write_move_pages(output, params)
    took_s = time.perf_counter() - started
    size_mib = output.stat().st_size / (1 << 20)
    err.print(f"wrote {output}: {rows:,} rows, {size_mib:,.1f} MiB in {took_s:.1f} s",
              highlight=False)
