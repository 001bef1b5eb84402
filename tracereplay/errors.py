"""One error tree for tracereplay.

Library code raises these; only the command line turns them into messages and exit codes.
Every message names the thing (file, column, row, key), the rule and the offending value.
"""

from __future__ import annotations


class TraceReplayError(Exception):
    """Base of every error tracereplay raises on purpose."""

    exit_code: int = 1


class BadInputError(TraceReplayError):
    """Input the user supplied is wrong (exit code 2)."""

    exit_code = 2


class TraceFormatError(BadInputError):
    """A trace file breaks a rule of the trace format.

    ``path``, ``column``, ``row`` and ``rule`` locate the first offending value; any may be None
    when it does not apply (an unreadable file has no column).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        column: str | None = None,
        row: int | None = None,
        rule: str | None = None,
    ) -> None:
        self.path = path
        self.column = column
        self.row = row
        self.rule = rule
        where = []
        if path is not None:
            where.append(str(path))
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}")
        prefix = ", ".join(where)
        text = f"{prefix}: {message}" if prefix else message
        if rule is not None:
            text += f" [rule: {rule}]"
        super().__init__(text)


class ConfigError(BadInputError):
    """A profile, config file or --set override is invalid."""


class QueryError(BadInputError):
    """A query is unknown, a run directory or table is missing, or the SQL fails."""


class ImportFormatError(BadInputError):
    """A kernel trace (perf script, ftrace, lackey) cannot be read."""


class OutputExistsError(BadInputError):
    """The output directory exists and --force was not given."""


class OutputPathError(BadInputError):
    """An output cannot go where it was asked to: a directory where a file is wanted, a
    missing parent directory, or a write the system refused."""


class ReplayError(TraceReplayError):
    """The replay could not complete (an internal limit was exceeded)."""


class ConfigNote(UserWarning):
    """Something the configuration asked for was not used, and why (the command line prints
    it as a note)."""
