"""The typer application every command module registers on."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    name="tracereplay",
    help=(
        "Replay memory-access and page-migration traces through per-CPU TLBs, page tables and "
        "the Linux page-migration engine; answer with SQL."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Tables and progress go to stderr so that --json output on stdout stays machine-readable.
err = Console(stderr=True)
out = Console()


class _State:
    debug = False


state = _State()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
) -> None:
    state.debug = debug
