"""The sync job (raw snapshot, dbt build, retention, the analysts' copy) and its daily schedule."""

import os

import dagster as dg

# Every asset: the raw snapshot, then dbt over it, then retention and the read copy.
sync_job = dg.define_asset_job("bitbucket_sync", selection=dg.AssetSelection.all())

daily_sync = dg.ScheduleDefinition(
    name="daily_bitbucket_sync",
    job=sync_job,
    cron_schedule=os.environ.get("BITBUCKET_SYNC_CRON") or "0 5 * * *",
    execution_timezone=os.environ.get("BITBUCKET_SYNC_TIMEZONE") or "UTC",
    description="The daily sync; turn it on in the Dagster UI (Automation) or with `dagster schedule start`.",
)
