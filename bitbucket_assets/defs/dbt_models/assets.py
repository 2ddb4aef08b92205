"""dbt models as Dagster assets, and the reconciliation check against Bitbucket's own effective permissions.

Two steps, because the extraction sits between them: `refresh_plan_views` builds the views over the sync in
progress that the extraction reads (models/plan), and `warehouse_models` builds everything else from the
published snapshot once the extraction is done.
"""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource

from ...warehouse import plan_views
from ...warehouse.dbt_runs import dbt_vars, target_for
from ...warehouse.files import WRITER_POOL
from .project import dbt_project

PLAN_MODELS = plan_views.SELECTION
# The dbt source the refresh plan reads: the raw tables mid-sync (models/staging/_bitbucket__sources.yml).
IN_PROGRESS = "bitbucket_sync_in_progress"
RAW_SCHEMA = dg.AssetKey("raw_schema")


class WarehouseTranslator(DagsterDbtTranslator):
    """Group dbt assets by layer (plan / staging / intermediate / marts) so the lineage reads top to bottom.

    The refresh plan's views read the raw tables while the extraction writes them (the sync in progress and
    each workspace's previous snapshot), and the extraction reads the plan: drawn as it is, that is a loop. In
    Dagster's graph the plan therefore hangs off the raw schema (`raw_schema`, created before both), and the
    extraction off the plan; dbt's own lineage shows the source tables.
    """

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or {}
        if node.get("resource_type") != "model":
            return spec
        layer = (node.get("fqn") or ["", "warehouse"])[1]
        deps = [dep for dep in spec.deps if dep.asset_key.path[0] != IN_PROGRESS]
        if len(deps) < len(spec.deps):
            deps.append(dg.AssetDep(RAW_SCHEMA))
        return spec.replace_attributes(group_name=f"warehouse_{layer}", deps=deps)


# dbt's unit tests check the models' code against fixed inputs: they run in development and CI (make test),
# not on every sync, as dbt advises (docs.getdbt.com, "Unit tests": "only in development or CI environments").
BUILD = ["build", "--exclude-resource-type", "unit_test"]


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource):
    # dbt runs in its own process (in dbt_project/): hand it the very file Dagster writes, and the target
    # directory that keeps its parse of the project for that file.
    with target_for(duckdb.database) as target:
        args = [*BUILD, "--vars", dbt_vars(duckdb.database)]
        yield from dbt.cli(args, context=context, target_path=target).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=PLAN_MODELS,
    name="refresh_plan_views",
    dagster_dbt_translator=WarehouseTranslator(),
    pool=WRITER_POOL,
)
def refresh_plan_views(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource):
    """The views an incremental sync asks which repositories' lists to read (extraction/refresh.py); dbt runs
    only when a sync may read them and they are not the current project's for this warehouse
    (warehouse/plan_views.py)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    with duckdb.get_connection() as con:
        needed = plan_views.needed(con)
        current = needed and plan_views.are_current(con, manifest)
    if not needed or current:
        why = (
            "this project's already"
            if current
            else "not read by this sync: the warehouse has no complete snapshot yet, every list is read"
        )
        context.log.info(f"The refresh plan's views are {why}: dbt is not run for them.")
        for name in sorted(context.op_execution_context.selected_output_names):
            yield dg.Output(None, output_name=name, metadata={"rebuilt": False, "why": why})
        return
    yield from _build(context, dbt, duckdb)
    if not context.is_subset:  # a run of some of the views leaves the others as they were: not current
        with duckdb.get_connection() as con:
            plan_views.mark_current(con, manifest)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=PLAN_MODELS,
    name="warehouse_models",
    dagster_dbt_translator=WarehouseTranslator(),
    pool=WRITER_POOL,
)
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource):
    """Staging views over complete snapshots, intermediate models, the marts and the analysts' table
    macros."""
    yield from _build(context, dbt, duckdb)


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_reconciliations"]),
    description=(
        "Repository effective access computed by dbt equals Bitbucket's own effective permissions captured "
        "in the same sync (workspaces where the credential is an administrator); every mismatch is listed."
    ),
)
def effective_access_matches_bitbucket(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    # The comparison is dbt's (fct_reconciliation_mismatches), stored with its result per sync
    # (fct_reconciliations).
    with duckdb.get_connection() as con:
        rows = con.execute(
            "select side, workspace_slug, repository_uuid, user_uuid, permission "
            "from marts.fct_reconciliation_mismatches order by all"
        ).fetchall()
        compared = con.execute(
            "select compared_rows from marts.fct_reconciliations order by synced_at desc limit 1"
        ).fetchone()
    mismatches = [f"{side}: {ws} repository {repo} user {user} {perm}" for side, ws, repo, user, perm in rows]
    metadata = {
        "compared_rows": compared[0] if compared else 0,
        "mismatches": len(rows),
        "examples": mismatches[:100],
    }
    return dg.AssetCheckResult(passed=not rows, metadata=metadata)


def definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[refresh_plan_views, warehouse_models], asset_checks=[effective_access_matches_bitbucket]
    )
