"""Opening the warehouse: a lock is waited for; any other IO error, and a missing file, is said at once."""

from __future__ import annotations

import duckdb
import pytest

from bitbucket_assets.services import error_text
from bitbucket_assets.warehouse.files import (
    WarehouseBusyError,
    WarehouseMissingError,
    WarehouseUnavailableError,
    open_reader,
    open_writer,
    warehouse_path_problem,
)


class _CountingClock:
    """A clock whose sleeps are counted and take no time: waiting at all is what the tests look for."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def test_a_reader_of_a_missing_warehouse_is_told_to_sync_first_without_waiting(tmp_path) -> None:
    clock = _CountingClock()
    with pytest.raises(WarehouseMissingError, match=r"no warehouse at .*run `bitbucket-access sync`"):
        open_reader(str(tmp_path / "none.duckdb"), clock=clock)
    assert clock.sleeps == 0


def test_an_io_error_that_is_not_a_lock_is_not_taken_for_a_busy_warehouse(tmp_path) -> None:
    not_a_database = tmp_path / "w.duckdb"
    not_a_database.write_bytes(b"not a database" * 500)
    clock = _CountingClock()
    with pytest.raises(WarehouseUnavailableError) as excinfo:
        open_writer(str(not_a_database), clock=clock)
    message = str(excinfo.value)
    assert not isinstance(excinfo.value, WarehouseBusyError) and "locked" not in message
    assert "not a valid DuckDB database" in message and "check DUCKDB_PATH" in message
    assert clock.sleeps == 0 and "\n" not in message


def test_a_locked_warehouse_is_waited_for_then_named_busy(tmp_path) -> None:
    """DuckDB's lock is per process: another process holds it (a child Python keeps the file open)."""
    import subprocess
    import sys

    database = tmp_path / "w.duckdb"
    duckdb.connect(str(database)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(database)!r}); print('x'); "
            "sys.stdout.flush(); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "x"
        clock = _CountingClock()
        with pytest.raises(WarehouseBusyError, match="stayed locked for 3 s"):
            open_writer(str(database), wait_seconds=3, clock=clock)
        assert clock.sleeps > 1
    finally:
        holder.communicate("")


def test_an_unwritable_warehouse_path_is_found_before_any_work(tmp_path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    problem = warehouse_path_problem(str(a_file / "w.duckdb"))
    assert problem is not None and problem.startswith(f"DUCKDB_PATH {a_file / 'w.duckdb'} cannot be written")
    assert "set DUCKDB_PATH to a file in a directory this user can write" in problem
    assert warehouse_path_problem(str(tmp_path / "new" / "w.duckdb")) is None  # created on the way
    assert list((tmp_path / "new").iterdir()) == []  # the probe leaves nothing behind
    assert warehouse_path_problem("md:bitbucket_access") is None


def test_dagster_errors_lose_their_class_path() -> None:
    message = "bitbucket_assets.client.errors.AuthenticationError: authentication failed (HTTP 401)\n"
    assert error_text(message, "AuthenticationError") == "authentication failed (HTTP 401)"
    assert error_text("plain: words", "ValueError") == "plain: words"
