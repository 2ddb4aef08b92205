"""Where the warehouse lives and the copy analysts read.

DuckDB locks its file per process: an analyst's open session, even read-only, would make a scheduled
sync fail to open the warehouse. Analysts and dashboards therefore read `<name>.read.duckdb`, which is
replaced in one rename once the marts are built; the pipeline never opens it.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import duckdb

from ..clock import Clock, SystemClock
from ..settings import Settings

# Every process step that writes the DuckDB file runs in this Dagster pool, limited to one at a time.
WRITER_POOL = "duckdb_writer"

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
    deadline, pause = clock.monotonic() + wait_seconds, 0.2
    while True:
        try:
            return duckdb.connect(database, read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or clock.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"the warehouse {database} is held by another process (a sync or a provisioning run?) "
                    f"and stayed locked for {wait_seconds:g} s: try again when it has finished"
                ) from None
            clock.sleep(pause)
            pause = min(pause * 2, 5.0)


class WarehouseBusyError(RuntimeError):
    """Another process kept the warehouse's write lock for longer than we were willing to wait."""


def read_copy_path(database: str) -> Path:
    path = Path(database)
    return path.with_name(path.stem + ".read" + (path.suffix or ".duckdb"))


def publish_read_copy(database: str) -> Path | None:
    """Checkpoint the warehouse, copy it beside itself and rename the copy into place (atomic on POSIX)."""
    if database.startswith("md:"):
        return None  # MotherDuck serves concurrent readers itself
    with duckdb.connect(database) as con:
        con.execute("CHECKPOINT")
    target = read_copy_path(database)
    staging = target.with_name(target.name + ".tmp")
    shutil.copyfile(database, staging)
    os.replace(staging, target)
    return target


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
