"""``tracereplay import``: real traces into tracereplay's tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tracereplay.cli._app import app, err, out
from tracereplay.errors import ImportFormatError


@app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            help="perf script / ftrace / trace-cmd text (plain, .gz, .xz, .zst), perf.data, or lackey output."
        ),
    ],
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "-o", "--out", help="Run directory; the import goes to RUN_DIR/policy=measured/."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="auto, perf-script, ftrace (also trace-cmd report) or lackey."
        ),
    ] = "auto",
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Fail at the first malformed line instead of counting it."),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace existing outputs.")] = False,
    as_trace: Annotated[
        Path | None,
        typer.Option(
            "--as-trace",
            help="Also write the measured migrations (lackey: the accesses) as a trace v1 Parquet file.",
        ),
    ] = None,
    src_node: Annotated[
        int,
        typer.Option(
            "--src-node",
            help="--as-trace of a kernel trace: node the pages start on (the tracepoints do not record it).",
        ),
    ] = 0,
    dst_node: Annotated[
        int,
        typer.Option(
            "--dst-node",
            help="--as-trace of a kernel trace: node the pages move to (the tracepoints do not record it).",
        ),
    ] = 1,
    cpus: Annotated[
        int | None,
        typer.Option(
            "--cpus",
            help="CPUs of the captured machine (default: the capture's header, if it says).",
        ),
    ] = None,
    nodes: Annotated[
        int | None,
        typer.Option(
            "--nodes",
            help="NUMA nodes of the captured machine (default: the header, else 1).",
        ),
    ] = None,
    pid: Annotated[
        int | None, typer.Option("--pid", help="lackey: process id to give the accesses.")
    ] = None,
    cpu: Annotated[
        int | None, typer.Option("--cpu", help="lackey: CPU to give the accesses.")
    ] = None,
    instructions: Annotated[
        bool,
        typer.Option("--instructions", help="lackey: keep instruction fetches (I lines) as loads."),
    ] = False,
    ns_per_access: Annotated[
        int,
        typer.Option("--ns-per-access", help="lackey: synthetic time step between accesses, ns."),
    ] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the manifest as JSON on stdout.")
    ] = False,
) -> None:
    """Import a real trace: kernel tracepoints as measured event tables, or lackey accesses.

    Kernel tracepoints (perf script, ftrace, trace-cmd) become policy=measured event tables;
    valgrind lackey accesses become a trace."""
    from tracereplay.importer import import_kernel_trace, import_lackey

    if fmt not in ("auto", "perf-script", "ftrace", "lackey"):
        raise ImportFormatError(f"--format must be auto, perf-script, ftrace or lackey: {fmt}")
    manifest: dict[str, Any]
    if fmt == "lackey":
        if pid is None or cpu is None or as_trace is None:
            raise ImportFormatError(
                "--format lackey needs --pid N --cpu N --as-trace OUT.parquet (lackey records "
                "neither; the output is a trace, not a run directory)"
            )
        if out_dir is not None:
            raise ImportFormatError("--format lackey writes a trace (--as-trace), not -o RUN_DIR")
        with err.status(f"importing {file}"):
            res = import_lackey(file, as_trace, pid=pid, cpu=cpu, instructions=instructions,
                                ns_per_access=ns_per_access, strict=strict, force=force)  # fmt: skip
        manifest = {**res.manifest, "trace": str(res.trace_path)}
    else:
        from tracereplay.importer._startup import without_optional_probes

        with err.status(f"importing {file}"), without_optional_probes():
            kres = import_kernel_trace(file, out_dir, fmt=fmt, strict=strict, force=force,
                                       as_trace=as_trace, src_node=src_node, dst_node=dst_node,
                                       cpus=cpus, nodes=nodes)  # fmt: skip
        manifest = {**kres.manifest, "run_dir": str(kres.run_dir) if kres.run_dir else None}
    if as_json:
        out.print_json(json.dumps(manifest))
    _summary(manifest)


def _speed(m: dict[str, Any]) -> str:
    """Lines, time and speed; the first run after installing also compiles the importer, which
    is said and left out of the speed."""
    compile_s = m.get("compile_s") or 0.0
    rate = m.get("lines_per_s")
    speed = f" ({rate:,} lines/s)" if rate else ""
    if compile_s < 0.05:
        return f"{m['lines']:,} lines in {m['wall_s']} s{speed}"
    return (f"{m['lines']:,} lines in {m['wall_s']} s, of which {compile_s:.1f} s compiling the "
            f"importer (first run after installing; later runs load it from the cache): "
            f"{m['wall_s'] - compile_s:.3f} s{speed} without it")


def _summary(m: dict[str, Any]) -> None:
    # the path above the table, not in its title: a title wraps within the table's width
    err.print(f"{m['source']['path']} ({m['format']})", highlight=False, soft_wrap=True)
    t = Table(show_header=True)
    t.add_column("event")
    t.add_column("lines", justify="right")
    for name, n in m["events"].items():
        t.add_row(name, f"{n:,}")
    err.print(t)
    err.print(_speed(m), highlight=False)
    if "migrations" in m:
        mig = m["migrations"]
        err.print(
            f"migrations: {mig['paired']:,} paired, {mig['unpaired']:,} unpaired (unmap without remap)"
        )
    for why, n in m.get("skipped", {}).items():
        err.print(f"skipped {why}: {n:,}")
    if m.get("malformed"):
        lines = ", ".join(str(x) for x in m["malformed_lines"][:10])
        err.print(f"[yellow]{m['malformed']:,} malformed line(s)[/], first at line(s) {lines}; "
                  "see the skipped table, or use --strict to stop at the first")  # fmt: skip
    if m.get("run_dir"):
        err.print(f"wrote {m['run_dir']}")
    if m.get("as_trace") or m.get("trace"):
        err.print(f"wrote {m.get('as_trace') or m.get('trace')}")
