"""The analysts' copy of the warehouse as an asset: published after every successful run (`warehouse/files.py`)."""

from __future__ import annotations

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...warehouse.files import WRITER_POOL, publish_read_copy


@dg.asset(
    deps=[
        dg.AssetKey(["marts", "fct_access_changes"]),
        dg.AssetKey(["raw_snapshot_retention"]),
        dg.AssetKey(["history_order"]),
    ],
    group_name="warehouse_marts",
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="A read-only copy of the warehouse for analysts and dashboards, replaced atomically after each run.",
)
def analyst_read_copy(duckdb: DuckDBResource) -> dg.MaterializeResult:
    target = publish_read_copy(duckdb.database)
    return dg.MaterializeResult(metadata={"path": str(target) if target else "(MotherDuck: not needed)"})
