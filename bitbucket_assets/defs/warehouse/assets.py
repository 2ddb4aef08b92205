"""dbt models as Dagster assets, and the reconciliation check against Bitbucket's own effective permissions."""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource

from ...extraction.retention import prune_raw_snapshots
from ...provisioning.tables import create_provisioning_tables
from ...warehouse.clustering import cluster_history
from ...warehouse.files import WRITER_POOL
from .project import dbt_project


class WarehouseTranslator(DagsterDbtTranslator):
    """Group dbt assets by layer (staging / intermediate / marts) so the lineage reads top to bottom."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or {}
        layer = (node.get("fqn") or ["", "warehouse"])[1] if node.get("resource_type") == "model" else None
        return spec.replace_attributes(group_name=f"warehouse_{layer}") if layer else spec


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=WarehouseTranslator(),
    pool=WRITER_POOL,
)
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource):
    # The risk rules read provisioning.leavers (HR fills it): make sure it exists, empty until then.
    with duckdb.get_connection() as con:
        create_provisioning_tables(con)
    # dbt runs in its own process (in dbt_project/): hand it the very file Dagster writes, as an absolute path.
    yield from dbt.cli(["build", "--vars", dbt_vars(duckdb.database)], context=context).stream()


def dbt_vars(database: str) -> str:
    """`--vars` for dbt: the warehouse `profiles.yml` opens (`var('duckdb_path')`)."""
    path = database if database.startswith("md:") else str(Path(database).resolve())
    return json.dumps({"duckdb_path": path})


class RetentionConfig(dg.Config):
    keep_syncs: int = 30  # the sync job sets BITBUCKET_RAW_SYNC_RETENTION here


@dg.asset(
    deps=[dg.AssetKey(["marts", "fct_grant_history"])],
    group_name="warehouse_marts",
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="Deletes raw snapshots beyond the newest BITBUCKET_RAW_SYNC_RETENTION complete syncs (default 30), "
    "only once fct_grant_history has folded them in: the history survives pruning.",
)
def raw_snapshot_retention(config: RetentionConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    keep = config.keep_syncs
    with duckdb.get_connection() as con:
        pruned = prune_raw_snapshots(con, keep)
    return dg.MaterializeResult(metadata={"kept_syncs": keep, "pruned_syncs": len(pruned), "pruned": pruned})


@dg.asset(
    deps=[dg.AssetKey(["marts", "fct_grant_history"])],
    group_name="warehouse_marts",
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="When a tenth of marts.fct_grant_history was written since the last time, rewrites it in Z-order of "
    "resource and user, so that the as-of questions read a few row groups (warehouse/clustering.py; each rewrite "
    "is logged in maintenance.history_clustering). The rows never change, only their order.",
)
def history_order(duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        clustering = cluster_history(con)
    return dg.MaterializeResult(metadata={
        "history_clustered": clustering["clustered"], "history_rows": clustering["history_rows"],
        "history_rows_since_clustering": clustering["rows_since_last"],
    })  # fmt: skip


@dg.asset_check(asset=dg.AssetKey(["marts", "fct_reconciliations"]), description=(
    "Repository effective access computed by dbt equals Bitbucket's own effective permissions captured in the "
    "same sync (workspaces where the credential is an administrator); every mismatch is listed."
))  # fmt: skip
def effective_access_matches_bitbucket(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    # The comparison is dbt's (fct_reconciliation_mismatches), stored with its result per sync (fct_reconciliations).
    with duckdb.get_connection() as con:
        rows = con.execute(
            "select side, workspace_slug, repository_uuid, user_uuid, permission "
            "from marts.fct_reconciliation_mismatches order by all"
        ).fetchall()
        compared = con.execute(
            "select compared_rows from marts.fct_reconciliations order by synced_at desc limit 1"
        ).fetchone()
    mismatches = [f"{side}: {ws} repository {repo} user {user} {perm}" for side, ws, repo, user, perm in rows]
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={"compared_rows": compared[0] if compared else 0, "mismatches": len(rows),
                  "examples": mismatches[:100]},
    )  # fmt: skip
