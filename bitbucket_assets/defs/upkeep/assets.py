"""Raw retention, the history's physical order and the analysts' read copy, as assets after the dbt build."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from ...warehouse.clustering import cluster_history
from ...warehouse.files import WRITER_POOL, publish_read_copy
from ...warehouse.retention import prune_raw_snapshots
from ..raw_snapshot.assets import RAW_TABLES
from ..resources import RetentionResource

GROUP = "warehouse_upkeep"
HISTORY = dg.AssetKey(["marts", "fct_grant_history"])


@dg.asset(
    deps=[
        HISTORY,
        dg.AssetKey(["staging", "stg_bitbucket__workspace_observations"]),
        *[dg.AssetKey(["raw", table]) for table in ["syncs", *RAW_TABLES]],
    ],
    group_name=GROUP,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="Deletes the raw rows of complete syncs beyond the newest BITBUCKET_RAW_SYNC_RETENTION "
    "(default 30), only once fct_grant_history has folded them in and none is still a workspace's latest "
    "observation: the history survives pruning (warehouse/retention.py).",
)
def raw_snapshot_retention(retention: RetentionResource, duckdb: DuckDBResource) -> dg.MaterializeResult:
    keep = retention.raw_sync_retention
    with duckdb.get_connection() as con:
        pruned = prune_raw_snapshots(con, keep)
    return dg.MaterializeResult(metadata={"kept_syncs": keep, "pruned_syncs": len(pruned), "pruned": pruned})


@dg.asset(
    deps=[HISTORY],
    group_name=GROUP,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="When a tenth of marts.fct_grant_history was written since the last time, rewrites it in "
    "Z-order of resource and user, so that the as-of questions read a few row groups "
    "(warehouse/clustering.py; each rewrite is logged in maintenance.history_clustering). The rows never "
    "change, only their order.",
)
def history_order(duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        clustering = cluster_history(con)
    return dg.MaterializeResult(
        metadata={
            "history_clustered": clustering["clustered"],
            "history_rows": clustering["history_rows"],
            "history_rows_since_clustering": clustering["rows_since_last"],
        }
    )


@dg.asset(
    deps=[dg.AssetKey(["marts", "fct_access_changes"]), raw_snapshot_retention, history_order],
    group_name=GROUP,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="A read-only copy of the warehouse for analysts and dashboards, replaced atomically after "
    "each run (warehouse/files.py).",
)
def analyst_read_copy(duckdb: DuckDBResource) -> dg.MaterializeResult:
    target = publish_read_copy(duckdb.database)
    return dg.MaterializeResult(metadata={"path": str(target) if target else "(MotherDuck: not needed)"})


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[raw_snapshot_retention, history_order, analyst_read_copy])
