"""The sync job (raw snapshot, dbt build, retention, the history's order, the analysts' copy) and its daily
schedule."""

from __future__ import annotations

import dagster as dg

from ..settings import Settings

SYNC_JOB = "bitbucket_sync"


def build_sync_job(settings: Settings) -> dg.UnresolvedAssetJobDefinition:
    """Every asset: the raw snapshot, then dbt over it, then retention and the history's order, then the read copy."""
    return dg.define_asset_job(
        SYNC_JOB,
        selection=dg.AssetSelection.all(),
        config={"ops": {"raw_snapshot_retention": {"config": {"keep_syncs": settings.bitbucket_raw_sync_retention}}}},
    )


def build_daily_sync(settings: Settings, job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="daily_bitbucket_sync",
        job=job,
        cron_schedule=settings.bitbucket_sync_cron,
        execution_timezone=settings.bitbucket_sync_timezone,
        description="The daily sync; turn it on in the Dagster UI (Automation) or with `dagster schedule start`.",
    )
