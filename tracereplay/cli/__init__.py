"""Command line of tracereplay: ``tracereplay COMMAND``.

Only this package imports typer and rich. Library errors (``tracereplay.errors``) become a
one-line message on stderr and an exit code: 2 for bad input or usage, 1 for other failures.
"""

from __future__ import annotations

import gc
import sys
import warnings
from typing import Any

from rich.markup import escape

from tracereplay.cli._app import app, err, state
from tracereplay.errors import ConfigNote, TraceReplayError

# Each module registers its commands on ``app``.
from tracereplay.cli import validate as _validate  # noqa: F401  isort: skip
from tracereplay.cli import replay as _replay  # noqa: F401  isort: skip
from tracereplay.cli import generate as _generate  # noqa: F401  isort: skip
from tracereplay.cli import query as _query  # noqa: F401  isort: skip
from tracereplay.cli import batch as _batch  # noqa: F401  isort: skip
from tracereplay.cli import import_ as _import  # noqa: F401  isort: skip
from tracereplay.cli import copy as _copy  # noqa: F401  isort: skip
from tracereplay.cli import sweep as _sweep  # noqa: F401  isort: skip
from tracereplay.cli import report as _report  # noqa: F401  isort: skip
from tracereplay.cli import export as _export  # noqa: F401  isort: skip
from tracereplay.cli import calibrate as _calibrate  # noqa: F401  isort: skip
from tracereplay.cli import capture as _capture  # noqa: F401  isort: skip

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``tracereplay`` console script."""
    # What is alive now (the modules: numba's, pyarrow's, duckdb's) lives as long as the command;
    # the collector need not traverse it again at each full collection the command makes (0.03 s
    # of an import of a million lines). Given back at the end, for a caller that goes on.
    gc.freeze()
    try:
        _main()
    finally:
        gc.unfreeze()


def _main() -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConfigNote)
            shown = warnings.showwarning

            def note(message: Any, category: type[Warning], *args: Any, **kw: Any) -> None:
                if issubclass(category, ConfigNote):
                    err.print(f"[yellow]note:[/] {escape(str(message))}", highlight=False,
                              soft_wrap=True)
                else:
                    shown(message, category, *args, **kw)

            warnings.showwarning = note
            app()
    except TraceReplayError as e:
        if state.debug:
            raise
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except OSError as e:  # the system refused (a full disk, a vanished directory): not a bug
        if state.debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        err.print(f"[bold red]error:[/] {escape(where + (e.strerror or str(e)))}", highlight=False,
                  soft_wrap=True)
        sys.exit(1)
    except Exception as e:  # a bug: say so briefly; --debug shows the traceback
        if state.debug:
            raise
        err.print(f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))} "
                  "(run with --debug for the traceback)", highlight=False, soft_wrap=True)
        sys.exit(1)
