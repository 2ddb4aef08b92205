"""The raw schema and the raw snapshot: one multi-asset, because a snapshot is complete or it is nothing."""

import dagster as dg
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ...extraction.checks import ALL_CHECKS, BLOCKING
from ...extraction.extract import ExtractionOptions
from ...extraction.progress import to_python_log
from ...extraction.raw_schema import TABLES, create_raw_schema
from ...extraction.refresh import FRESHNESS_VIEW, PLAN_VIEW, describe_refresh
from ...extraction.sync import run_sync
from ...extraction.vanished import Vanished
from ...warehouse.files import WRITER_POOL
from ..resources import BitbucketResource

GROUP = "bitbucket_raw"
# A run held back by the circuit breaker fails on purpose: retrying it (deploy/dagster.yaml retries failed
# runs) would read Bitbucket again, abandon the held snapshot and hold back the same change (Dagster's tag).
NO_RETRY = {"dagster/retry_on_asset_or_op_failure": "false"}
RAW_SCHEMA = dg.AssetKey("raw_schema")
RAW_TABLES = list(TABLES)
CHECKED = dg.AssetKey(["raw", "repositories"])
# The views the extraction asks which repositories' lists to read (dbt, models/plan).
PLAN_VIEWS = [dg.AssetKey(view.split(".")) for view in (FRESHNESS_VIEW, PLAN_VIEW)]

# Every raw table is written into the raw schema, reading the refresh plan's views on the way.
READS = [RAW_SCHEMA, *PLAN_VIEWS]
SPECS = [
    dg.AssetSpec(
        ["raw", "syncs"],
        deps=READS,
        group_name=GROUP,
        description="Sync manifest: one row per sync with status, workspaces, counts, API calls, retries, "
        "429s.",
        kinds={"duckdb"},
    ),
    *[
        dg.AssetSpec(
            ["raw", table],
            deps=READS,
            group_name=GROUP,
            description=f"Raw `{table}` rows of every sync (`sync_id`), typed columns plus the raw JSON.",
            kinds={"duckdb"},
        )
        for table in RAW_TABLES
    ],
]
CHECK_SPECS = [
    dg.AssetCheckSpec(
        check.__name__,
        asset=CHECKED,
        blocking=check.__name__ in BLOCKING,
        description=(check.__doc__ or "").split("\n\n")[0].replace("\n    ", " "),
    )
    for check in ALL_CHECKS
]


@dg.asset(
    key=RAW_SCHEMA,
    group_name=GROUP,
    pool=WRITER_POOL,
    kinds={"duckdb"},
    description="The raw tables, created (and given the columns later versions added) before the refresh "
    "plan's views select from them and the extraction writes into them.",
)
def raw_schema(duckdb: DuckDBResource) -> dg.MaterializeResult:
    with duckdb.get_connection() as con:
        create_raw_schema(con)
    return dg.MaterializeResult(metadata={"tables": ["syncs", "sync_checkpoints", *RAW_TABLES]})


class SnapshotConfig(dg.Config):
    full: bool = Field(
        default=False,
        description="Read every repository's permission lists, instead of those that are new, changed or due "
        "(BITBUCKET_REFRESH_MAX_AGE_DAYS); the rest are carried forward from the sync that read them.",
    )
    accept_vanished: bool = Field(
        default=False,
        description="Accept that more vanished than the circuit breaker allows "
        "(BITBUCKET_MAX_VANISHED_SHARE): publish the snapshot the last run held back as `suspect` (as it was "
        "read, without calling Bitbucket) when it is the newest sync and was made with the same settings, "
        "else publish this run's snapshot whatever vanished.",
    )


@dg.multi_asset(
    specs=SPECS,
    check_specs=CHECK_SPECS,
    can_subset=False,
    pool=WRITER_POOL,
    description="Extract a complete snapshot of Bitbucket Cloud access into the raw tables of DuckDB. An "
    "incremental sync asks the refresh plan's views which repositories' permission lists to read.",
)
def bitbucket_raw_snapshot(
    context: dg.AssetExecutionContext,
    config: SnapshotConfig,
    bitbucket: BitbucketResource,
    duckdb: DuckDBResource,
):
    client, admin_api = bitbucket.get_client(), bitbucket.get_admin_api()
    control_client = bitbucket.get_change_control_client()
    options = ExtractionOptions(
        workspaces=bitbucket.workspace_filter(),
        admin_api=admin_api,
        change_control_client=control_client,
        change_control_workspace=bitbucket.change_control_workspace,
        admin_managed=bitbucket.admin_managed(),
        refresh=bitbucket.refresh_policy(full=config.full),
        breaker=bitbucket.breaker(),
        accept_vanished=config.accept_vanished,
        # At every checkpoint: a line in the run's log, and the event for a terminal running the job
        # in-process.
        progress=[lambda event: context.log.info(event.line()), to_python_log],
    )
    try:
        with duckdb.get_connection() as con:
            try:
                result = run_sync(client, con, options, sync_id=context.run.run_id)
                outcomes = [check(con, result.sync_id) for check in ALL_CHECKS]
            except BaseException:
                # DuckDBResource closes its connection only when the block ends normally; left open, it would
                # hold the warehouse's file lock in this process after the run failed.
                con.close()
                raise
    finally:
        client.close()
        if admin_api is not None:
            admin_api.client.close()
        if control_client is not None:
            control_client.close()
    stats = result.stats
    context.log.info(
        f"sync {result.sync_id}: {len(result.workspaces)} workspace(s), {stats['calls']} API calls, "
        f"{stats['retries']} retries, {stats['rate_limited']} rate-limited responses"
    )
    for slug, reason in result.skipped.items():
        context.log.warning(f"workspace {slug} skipped: {reason}")
    for slug, refresh in result.refresh.items():
        context.log.info(f"workspace {slug}: {describe_refresh(refresh)}")
    if result.held_published:
        context.log.warning(f"sync {result.sync_id}, held back as suspect, published as read (accepted)")
    for v in result.over_limit:
        held = "held back (suspect): nothing published" if result.status == "suspect" else "accepted"
        context.log.warning(f"{Vanished(**v).line()} [{held}]")
    if result.status == "suspect":
        context.instance.add_run_tags(context.run.run_id, NO_RETRY)
    yield dg.MaterializeResult(
        asset_key=["raw", "syncs"],
        metadata={
            "sync_id": result.sync_id,
            "status": result.status,
            "held_published": result.held_published,
            "workspaces": ", ".join(result.workspaces),
            "api_calls": stats["calls"],
            "retries": stats["retries"],
            "rate_limited": stats["rate_limited"],
            "calls_by_family": stats["calls_by_family"],
            "skipped_workspaces": result.skipped,
            "group_sources": result.group_sources,
            "refresh": result.refresh,
            "vanished": [Vanished(**v).line() for v in result.vanished],
        },
    )
    for table in RAW_TABLES:
        yield dg.MaterializeResult(
            asset_key=["raw", table],
            metadata={
                "sync_id": result.sync_id,
                "status": result.status,
                "dagster/row_count": result.counts.get(table, 0),
            },
        )
    for outcome in outcomes:
        yield dg.AssetCheckResult(
            check_name=outcome.name,
            asset_key=CHECKED,
            passed=outcome.passed,
            description=outcome.description,
            metadata=outcome.metadata,
            severity=dg.AssetCheckSeverity.WARN
            if outcome.severity == "WARN"
            else dg.AssetCheckSeverity.ERROR,
        )


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[raw_schema, bitbucket_raw_snapshot])
