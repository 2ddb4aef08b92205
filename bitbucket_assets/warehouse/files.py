"""Where the warehouse lives and the copy analysts read.

DuckDB locks its file per process: an analyst's open session, even read-only, would make a scheduled
sync fail to open the warehouse. Analysts and dashboards therefore read `<name>.read.duckdb`, which is
replaced in one rename once the marts are built; the pipeline never opens it.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from ..clock import Clock, SystemClock
from ..settings import Settings

# Every process step that writes the DuckDB file runs in this Dagster pool, limited to one at a time.
WRITER_POOL = "duckdb_writer"

T = TypeVar("T")

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


def dbt_executable() -> str:
    """The `dbt` installed beside this Python, so an unactivated `.venv` works too."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def open_writer(
    database: str, wait_seconds: float = 600.0, clock: Clock | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing, waiting while another process (a sync, a provisioning run) holds
    DuckDB's file lock, as the Dagster writers do; gives up after `wait_seconds` with a clear error."""
    return _open_waiting(database, False, wait_seconds, clock or SystemClock())


def open_reader(
    database: str, wait_seconds: float = 600.0, clock: Clock | None = None
) -> duckdb.DuckDBPyConnection:
    """Open read-only, waiting the same way: reading the warehouse itself (no read copy yet) needs the lock
    too."""
    return _open_waiting(database, True, wait_seconds, clock or SystemClock())


def _open_waiting(
    database: str, read_only: bool, wait_seconds: float, clock: Clock
) -> duckdb.DuckDBPyConnection:
    if read_only and not database.startswith("md:") and not Path(database).exists():
        raise WarehouseMissingError(
            f"there is no warehouse at {database}: run `bitbucket-access sync` first, or point DUCKDB_PATH "
            "at your warehouse"
        )
    return _waiting_for_lock(
        lambda: duckdb.connect(database, read_only=read_only),
        database,
        wait_seconds,
        clock,
        cannot=f"cannot open the warehouse {database}",
        advice=" — check DUCKDB_PATH and that this user can read and write the file and its directory",
    )


def _waiting_for_lock(
    attempt: Callable[[], T],
    database: str,
    wait_seconds: float,
    clock: Clock,
    cannot: str,
    advice: str = "",
) -> T:
    """`attempt()` (a connect, an ATTACH) again while another process holds `database`'s lock, backing off
    up to 5 s, for at most `wait_seconds`; any other IO error at once, as `cannot`, DuckDB's reason and
    `advice`."""
    deadline, pause = clock.monotonic() + wait_seconds, 0.2
    while True:
        try:
            return attempt()
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc):
                raise WarehouseUnavailableError(f"{cannot}: {_first_line(exc)}{advice}") from None
            if clock.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"the warehouse {database} is held by another process (a sync or a provisioning run?) "
                    f"and stayed locked for {wait_seconds:g} s: try again when it has finished"
                ) from None
            clock.sleep(pause)
            pause = min(pause * 2, 5.0)


def _is_lock_conflict(exc: duckdb.IOException) -> bool:
    """DuckDB's "Could not set lock on file ... Conflicting lock is held": another process has the file. Any
    other IO error (no such directory, permission denied, not a database) does not go away by waiting."""
    text = str(exc).lower()
    return "could not set lock" in text or "conflicting lock" in text


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def warehouse_path_problem(database: str) -> str | None:
    """Why the warehouse file cannot be written (its directory cannot be created or written, the file is not
    writable), found before any work; None when it can. Tried for real, as root or on a read-only mount
    permission bits say nothing."""
    if database.startswith("md:"):
        return None
    path = Path(database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".write-test-"):
            pass
        if path.exists():
            with path.open("r+b"):
                pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = exc.filename or path
        return (
            f"DUCKDB_PATH {database} cannot be written ({reason}: {where}) — set DUCKDB_PATH to a file in a "
            "directory this user can write"
        )
    return None


class WarehouseBusyError(RuntimeError):
    """Another process kept the warehouse's write lock for longer than we were willing to wait."""


class WarehouseUnavailableError(RuntimeError):
    """The warehouse cannot be opened for a reason waiting does not cure (a path, a permission, a file that
    is not a DuckDB database); the message names the file and DuckDB's reason."""


class WarehouseMissingError(WarehouseUnavailableError):
    """A reader found no warehouse file where DUCKDB_PATH (or the read copy) points."""


def read_copy_path(database: str) -> Path:
    path = Path(database)
    return path.with_name(path.stem + ".read" + (path.suffix or ".duckdb"))


def publish_read_copy(database: str) -> Path | None:
    """Checkpoint the warehouse, copy it beside itself and rename the copy into place (atomic on POSIX); then
    the provisioning copy beside it (provisioning_copy.py), from the same state, so that it is never older
    than the read copy's own provisioning tables."""
    from .provisioning_copy import publish_provisioning_copy, publishing_lock

    if database.startswith("md:"):
        return None  # MotherDuck serves concurrent readers itself
    with publishing_lock(database):
        with duckdb.connect(database) as con:
            con.execute("CHECKPOINT")
        target = read_copy_path(database)
        with private_staging(target, target.name + ".tmp") as staging:
            shutil.copyfile(database, staging)
            shutil.copymode(database, staging)  # readable by whom the warehouse is, no more
            os.replace(staging, target)
        publish_provisioning_copy(database, locked=True)
    return target


@contextmanager
def private_staging(target: Path, name: str) -> Iterator[Path]:
    """Where to write `target`'s next version: `name` in a new directory beside it that only this user can
    enter (0700), removed afterwards. A file is created with the umask's bits (often world-readable) before
    `copymode` narrows them: written in the open, the warehouse's data would be readable meanwhile. Called
    under `publishing_lock`: a directory a killed publisher left behind (a whole copy) is removed first."""
    prefix = f".publishing-{target.name}-"
    for stale in target.parent.glob(f"{glob.escape(prefix)}*"):
        shutil.rmtree(stale, ignore_errors=True)
    directory = Path(tempfile.mkdtemp(dir=target.parent, prefix=prefix))
    try:
        yield directory / name
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def attach_waiting(
    con: duckdb.DuckDBPyConnection,
    database: str,
    alias: str,
    wait_seconds: float = 600.0,
    clock: Clock | None = None,
) -> None:
    """ATTACH `database` read-only as `alias`, waiting while a writer holds its lock (as `open_reader`)."""
    quoted = database.replace("'", "''")
    _waiting_for_lock(
        lambda: con.execute(f"ATTACH '{quoted}' AS {alias} (READ_ONLY)"),
        database,
        wait_seconds,
        clock or SystemClock(),
        cannot=f"cannot read the warehouse {database}",
    )


def reader_database(settings: Settings) -> str:
    """What readers open: `BITBUCKET_DASHBOARD_DB` when set, else the read copy (a MotherDuck name as is)."""
    if settings.bitbucket_dashboard_db:
        return settings.bitbucket_dashboard_db
    return settings.duckdb_path if settings.is_motherduck else str(read_copy_path(settings.duckdb_path))


def report_database(settings: Settings) -> str:
    """What reports (review export, evidence) read: the read copy when one exists, else the warehouse
    itself."""
    reader = reader_database(settings)
    return reader if reader.startswith("md:") or Path(reader).exists() else settings.duckdb_path
