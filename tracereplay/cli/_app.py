"""The typer application every command module registers on."""

from __future__ import annotations

from typing import Any

import typer
import typer.core
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


def _no_placeholder_for_flags() -> None:
    """Help shows a value's type (<int>, <path>) after an option; a flag takes no value, so it
    shows none (typer would print <bool>)."""
    shown = typer.core.TyperOption.display_type_rich

    def display_type_rich(self: typer.core.TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    typer.core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_no_placeholder_for_flags()


def _version(value: bool) -> None:
    if value:
        from tracereplay import __version__

        out.print(f"tracereplay {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    _: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                           help="Print the version and exit."),
) -> None:
    state.debug = debug
