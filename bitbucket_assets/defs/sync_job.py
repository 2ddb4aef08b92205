"""The sync job and its daily schedule, and the definitions a sync needs (and nothing else: the CLI's `sync`
loads only these)."""

from __future__ import annotations

import dagster as dg

from ..settings import Settings
from .access_requests.assets import GROUP as PROVISIONING
from .access_requests.assets import provisioning_tables
from .dbt_models import assets as dbt_models
from .raw_snapshot import assets as raw_snapshot
from .upkeep import assets as upkeep

SYNC_JOB = "bitbucket_sync"

sync_job = dg.define_asset_job(
    SYNC_JOB,
    # Every asset but what the provisioning jobs write; the provisioning inputs are created before dbt runs.
    selection=dg.AssetSelection.all() - dg.AssetSelection.groups(PROVISIONING)
    | dg.AssetSelection.assets(provisioning_tables),
    # Every step writes the one DuckDB file, one after another (the writer pool): a process per step would buy
    # no parallelism and cost a load of the code location each.
    executor_def=dg.in_process_executor,
    description="One sync: the raw schema and the refresh plan's views, the extraction of a snapshot, the "
    "dbt build over it, raw retention, the history's order and the analysts' read copy.",
)


def daily_sync(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="daily_bitbucket_sync",
        job=sync_job,
        cron_schedule=settings.bitbucket_sync_cron,
        execution_timezone=settings.bitbucket_sync_timezone,
        description="The daily sync; turn it on in the Dagster UI (Automation) or with `dagster schedule "
        "start`.",
    )


def definitions() -> dg.Definitions:
    """What the sync job runs: its assets and their checks (resources: `resources.with_resources`)."""
    return dg.Definitions.merge(
        raw_snapshot.definitions(),
        dbt_models.definitions(),
        upkeep.definitions(),
        dg.Definitions(assets=[provisioning_tables], jobs=[sync_job]),
    )
