"""Showing a sync's progress where the command runs: a live table on a terminal (rich), plain lines otherwise
(a log file, CI, a pipe), one per checkpoint. Fed by the `bitbucket_assets.progress` log records that the
extraction emits (`extraction/progress.py`), so it works whatever runs the sync in this process. Other
records there (a sync resumed from its checkpoints) and the client's retries and waits show as lines."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from .extraction.progress import EVENTS, ProgressEvent
from .reporting.safe_text import terminal_line


class _Handler(logging.Handler):
    def __init__(self, show) -> None:
        super().__init__(logging.INFO)
        self.show = show

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "progress", None)
        if isinstance(event, ProgressEvent):
            self.show(event)
        else:
            self.show(record.getMessage())


@contextmanager
def sync_progress(stream: TextIO | None = None) -> Iterator[None]:
    """Show progress events while the block runs: a bar per workspace and stage on a terminal, else one line
    per event on `stream` (stdout)."""
    from .command_log import retry_notices

    stream = stream or sys.stdout
    if stream.isatty():
        with (
            _RichDisplay(Console(file=stream)) as display,
            _attached(display.show),
            retry_notices(lambda line: display.show(f"retrying: {line}")),
        ):
            yield
        return

    def plain(event: ProgressEvent | str) -> None:
        line = f"progress: {event.line()}" if isinstance(event, ProgressEvent) else event
        print(terminal_line(line), file=stream, flush=True)

    with _attached(plain), retry_notices(lambda line: plain(f"retrying: {line}")):
        yield


@contextmanager
def _attached(show) -> Iterator[None]:
    handler = _Handler(show)
    previous = EVENTS.level
    EVENTS.addHandler(handler)
    EVENTS.setLevel(logging.INFO)
    try:
        yield
    finally:
        EVENTS.removeHandler(handler)
        EVENTS.setLevel(previous)


class _RichDisplay:
    """One bar per (workspace, stage): pages done of expected, and the latest calls, 429s, pacing and ETA."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=16),  # pulses while a list's length is unknown (total None)
            TextColumn("{task.fields[pages]}"),
            TextColumn("{task.fields[detail]}"),
            console=console,
            # Python's stdout and stderr go to the run's log file (command_log.py): rich must not bring them
            # back to the terminal.
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.tasks: dict[tuple[str, str], TaskID] = {}

    def __enter__(self) -> _RichDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def show(self, event: ProgressEvent | str) -> None:
        if isinstance(event, str):  # a line above the bars: a resume, a retry
            self.progress.console.print(terminal_line(event), markup=False, highlight=False)
            return
        key = (event.workspace, event.stage)
        detail = terminal_line(event.short())
        if event.finished:
            pages = "done"
        elif event.pages_expected is None:
            pages = f"page {event.pages_done}"
        else:
            pages = f"{event.pages_done}/{event.pages_expected}"
        total = event.pages_done if event.finished else event.pages_expected
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(
                f"{event.workspace} {event.stage}", total=total, detail=detail, pages=pages
            )
        self.progress.update(
            self.tasks[key], completed=event.pages_done, total=total, detail=detail, pages=pages
        )
