"""The analysts' copy of the warehouse, published atomically after every successful run.

DuckDB locks its file per process: an analyst's open session, even read-only, would make a scheduled
sync fail to open the warehouse. Analysts and dashboards therefore read `<name>.read.duckdb`, which is
replaced in one rename once the marts are built; the pipeline never opens it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from ..extraction.assets import DUCKDB_WRITERS


def read_copy_path(database: str) -> Path:
    path = Path(database)
    return path.with_name(path.stem + ".read" + (path.suffix or ".duckdb"))


def publish_read_copy(database: str) -> Path | None:
    """Checkpoint the warehouse, copy it beside itself and rename the copy into place (atomic on POSIX)."""
    if database.startswith("md:"):
        return None  # MotherDuck serves concurrent readers itself
    with duckdb_lib.connect(database) as con:
        con.execute("CHECKPOINT")
    target = read_copy_path(database)
    staging = target.with_name(target.name + ".tmp")
    shutil.copyfile(database, staging)
    os.replace(staging, target)
    return target


@dg.asset(
    deps=[dg.AssetKey(["marts", "fct_access_changes"]), dg.AssetKey(["raw_snapshot_retention"])],
    group_name="warehouse_marts",
    pool=DUCKDB_WRITERS,
    kinds={"duckdb"},
    description="A read-only copy of the warehouse for analysts and dashboards, replaced atomically after each run.",
)
def analyst_read_copy(duckdb: DuckDBResource) -> dg.MaterializeResult:
    target = publish_read_copy(duckdb.database)
    return dg.MaterializeResult(metadata={"path": str(target) if target else "(MotherDuck: not needed)"})
