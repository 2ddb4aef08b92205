"""Where a command's details go: the terminal keeps what the user asked for (the live display, the result,
one line per error), and everything the libraries print (Dagster's event lines, dbt's output, warnings, the
trace of a failure) goes to a log file beside the warehouse, named in the last line when something failed.
With `--verbose` nothing is redirected.

The redirection is at the file-descriptor level, so a dbt subprocess and Dagster's console logger (which
hold their own handles on stdout and stderr) land in the file too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from .reporting.safe_text import terminal_line

# The client logs every retry and every wait for a rate limit here (`client/client.py`).
CLIENT_LOG = logging.getLogger("bitbucket_assets.client")


@dataclass(frozen=True)
class CommandOutput:
    """`terminal`: where the user's lines go; `log_path`: the file holding the details (None: verbose, the
    details are on the terminal too)."""

    terminal: TextIO
    log_path: Path | None


def log_file(directory: Path, command: str, now: datetime | None = None) -> Path:
    """`<directory>/<command>-<UTC time>.log`: one file per run, sorted by time."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return directory / f"{command}-{stamp}-{os.getpid()}.log"


@contextmanager
def details_to_log(directory: Path, command: str, verbose: bool) -> Iterator[CommandOutput]:
    """Run the block with stdout and stderr going to a new log file in `directory` (unless `verbose`); the
    block writes to the user through `CommandOutput.terminal`."""
    if verbose:
        yield CommandOutput(sys.stdout, None)
        return
    path = log_file(directory, command)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = path.open("ab")
    except OSError:  # nowhere to keep details (a read-only disk): show them rather than lose them
        yield CommandOutput(sys.stdout, None)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        yield CommandOutput(terminal, path)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        terminal.close()
        handle.close()


class _NoticeHandler(logging.Handler):
    def __init__(self, show) -> None:
        super().__init__(logging.WARNING)
        self.show = show

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.show(terminal_line(record.getMessage()))
        except Exception:  # a notice must never cost the command
            self.handleError(record)


@contextmanager
def retry_notices(show) -> Iterator[None]:
    """While the block runs, every retry and rate-limit wait of the client is shown as one line (`show`):
    what failed, and how long the pause before the next try is."""
    handler = _NoticeHandler(show)
    CLIENT_LOG.addHandler(handler)
    try:
        yield
    finally:
        CLIENT_LOG.removeHandler(handler)
