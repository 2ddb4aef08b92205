"""The provisioning copy: what provisioning, review imports and evidence records write, published at once.

The read copy (`files.publish_read_copy`) is the whole warehouse, copied after a sync; provisioning runs every
15 minutes and reviews are imported at any time, and copying a large warehouse after each would cost more than
the change. So every command that writes the `provisioning` or `reporting` schema publishes just those two
schemas as a small DuckDB file of their own beside the read copy, `<read copy>.provisioning.duckdb`, written
aside and renamed into place like the read copy. Readers open the read copy, ATTACH the provisioning copy and
name its schemas in the search path (`attach_provisioning_copy`): `provisioning.actions`, and every mart macro
that reads a provisioning table, then read the newest rows, the snapshot everything else.

The file holds the tables row for row (the log's hash chain and its signed heads included; of the review
items only those decided, and the review files without their bytes: `READERS_NEED`), so
`provisioning --verify-log`'s checks hold over it as over the warehouse; a `main.published` row says when it
was published and the log's head at that moment. It is written by the pipeline's user in the warehouse's
directory with the warehouse's permission bits, and has the warehouse's trust: whoever can write there can
rewrite the read copy too, and only the signatures (log heads, evidence manifests) show it. Publishers take an
exclusive lock on `<file>.lock` and read the warehouse inside it, so the file renamed last holds the newest
state.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from .files import attach_waiting, private_staging, read_copy_path

SCHEMAS = ("provisioning", "reporting")
# Two tables are copied as far as readers need them, not whole: a campaign registers one item per access
# held (a million on `large`), and readers show the items that were decided (`provisioning.attestations`);
# a review file's bytes are checked by provisioning in the warehouse itself, readers show its digest, signer
# and time. Every other table is copied row for row.
READERS_NEED = {
    ("provisioning", "review_items"): (
        "SELECT i.* FROM warehouse.provisioning.review_items i "
        "SEMI JOIN warehouse.provisioning.review_decisions d USING (campaign_id, review_item)"
    ),
    ("provisioning", "review_files"): (
        "SELECT * REPLACE (NULL::BLOB AS content) FROM warehouse.provisioning.review_files"
    ),
}
ALIAS = "fresh"  # the provisioning copy's catalog in a reader's connection


def provisioning_copy_path(reader: str | Path) -> Path:
    """The provisioning copy beside a reader's database (the read copy, or BITBUCKET_DASHBOARD_DB)."""
    path = Path(reader)
    return path.with_name(path.stem + ".provisioning" + (path.suffix or ".duckdb"))


@contextmanager
def publishing_lock(database: str) -> Iterator[None]:
    """One publisher at a time per warehouse (a sync's read copy, a command's provisioning copy)."""
    lock = provisioning_copy_path(read_copy_path(database)).with_suffix(".lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish_provisioning_copy(database: str, locked: bool = False) -> Path | None:
    """Copy the warehouse's provisioning and reporting schemas (tables and views) into the provisioning copy
    beside its read copy, atomically; None for MotherDuck (readers there see the warehouse itself) and for a
    warehouse that has neither schema yet. `locked`: the caller holds `publishing_lock` already."""
    if database.startswith("md:") or not Path(database).exists():
        return None
    if not locked:
        with publishing_lock(database):
            return publish_provisioning_copy(database, locked=True)
    target = provisioning_copy_path(read_copy_path(database))
    # DuckDB names a file's catalog after its name up to the first dot: a warehouse named `warehouse.duckdb`
    # would give the staging file the catalog `warehouse`, the alias the warehouse is attached under.
    with private_staging(target, f"publishing-{target.name}.tmp") as staging:
        with duckdb.connect(str(staging)) as con:
            attach_waiting(con, database, "warehouse")
            con.execute("BEGIN TRANSACTION")  # one commit for every table, not one each
            copied = _copy_schemas(con)
            con.execute("COMMIT")
            con.execute("DETACH warehouse")
        if not copied:
            return None
        shutil.copymode(database, staging)  # readable by whom the warehouse is, no more
        os.replace(staging, target)
    return target


def _copy_schemas(con: duckdb.DuckDBPyConnection) -> int:
    """Tables, then views (their SQL names the schemas, so they bind to the copies), and the publication row;
    returns how many tables were copied."""
    tables = con.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = 'warehouse' "
        f"and schema_name in ({', '.join('?' * len(SCHEMAS))}) order by all",
        list(SCHEMAS),
    ).fetchall()
    views = con.execute(
        "select sql from duckdb_views() where database_name = 'warehouse' and not internal "
        f"and schema_name in ({', '.join('?' * len(SCHEMAS))}) order by schema_name, view_name",
        list(SCHEMAS),
    ).fetchall()
    for schema in sorted({s for s, _ in tables}):
        con.execute(f"CREATE SCHEMA {_ident(schema)}")
    for schema, table in tables:
        name = f"{_ident(schema)}.{_ident(table)}"
        source = READERS_NEED.get((schema, table), f"SELECT * FROM warehouse.{name}")
        con.execute(f"CREATE TABLE {name} AS {source}")
    for (sql,) in views:
        con.execute(sql)
    head = _log_head(con)
    con.execute(
        "CREATE TABLE main.published AS SELECT ?::TIMESTAMPTZ AS published_at, ?::BIGINT AS log_seq, "
        "?::VARCHAR AS log_row_hash, ?::TIMESTAMPTZ AS log_newest_at",
        [datetime.now(UTC), *head],
    )
    return len(tables)


def _log_head(con: duckdb.DuckDBPyConnection) -> tuple:
    try:
        return con.execute(
            "select max(seq), arg_max(row_hash, seq), max(attempted_at) from provisioning.provisioning_log"
        ).fetchone()
    except duckdb.CatalogException:
        return (None, None, None)


def attach_provisioning_copy(con: duckdb.DuckDBPyConnection, reader: str) -> bool:
    """Attach the provisioning copy beside `reader` (read-only) and put its schemas first, so that
    `provisioning.*` and `reporting.*` resolve to it and everything else to `reader`. False (nothing changed)
    when there is none: the reader's own provisioning tables are then the newest there are."""
    if reader.startswith("md:"):
        return False
    side = provisioning_copy_path(reader)
    if not side.exists():
        return False
    con.execute(f"ATTACH '{_quoted(side)}' AS {ALIAS} (READ_ONLY)")
    present = {
        row[0]
        for row in con.execute(
            "select schema_name from duckdb_schemas() where database_name = ?", [ALIAS]
        ).fetchall()
    }
    catalog = con.execute("select current_database()").fetchone()[0]
    # The default catalog's `main` first: it is where schema-qualified names not in the list resolve.
    path = [f'"{catalog}".main', *(f"{ALIAS}.{s}" for s in SCHEMAS if s in present)]
    con.execute(f"SET search_path = '{_quoted(','.join(path))}'")
    return True


def _ident(name: str) -> str:
    """A quoted SQL identifier: a table anyone with write access to the warehouse created may have a quote in
    its name."""
    return '"' + name.replace('"', '""') + '"'


def _quoted(text: str | Path) -> str:
    return str(text).replace("'", "''")


@dataclass(frozen=True)
class DataTimes:
    """How old what a reader shows is: the newest published sync's completion, the provisioning log's newest
    entry, and when the provisioning copy was published (None: not known, or none)."""

    snapshot_at: datetime | None
    provisioning_at: datetime | None
    published_at: datetime | None = None


def data_times(con: duckdb.DuckDBPyConnection) -> DataTimes:
    """The times of the data a connection reads (after `attach_provisioning_copy`, the copy's)."""
    snapshot = _first(con, "select max(synced_at) from marts.fct_sync_summary")
    log = _first(con, "select max(attempted_at) from provisioning.provisioning_log")
    published = _first(con, f"select max(published_at) from {ALIAS}.main.published")
    return DataTimes(snapshot, log, published)


def _first(con: duckdb.DuckDBPyConnection, sql: str):
    try:
        return con.execute(sql).fetchone()[0]
    except (duckdb.CatalogException, duckdb.BinderException):
        return None


def when(moment: datetime | None, missing: str = "none") -> str:
    """A time as people read it: `2026-12-04 14:02 UTC`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else missing
