"""Dagster definitions: this module only assembles what the domain packages define, from one `Settings`."""

import dagster as dg

from .defs.extraction.assets import bitbucket_raw_snapshot
from .defs.monitoring import build_failure_alerts, with_sync_freshness
from .defs.provisioning.jobs import approved_requests_sensor, build_jit_expiry_schedule, build_provisioning_jobs
from .defs.resources import build_resources
from .defs.sync import build_daily_sync, build_sync_job
from .defs.warehouse.assets import (
    effective_access_matches_bitbucket,
    history_order,
    raw_snapshot_retention,
    warehouse_models,
)
from .defs.warehouse.read_copy import analyst_read_copy
from .settings import Settings, load_settings


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or load_settings()
    sync_job = build_sync_job(settings)
    defs = dg.Definitions(
        assets=[bitbucket_raw_snapshot, warehouse_models, raw_snapshot_retention, history_order, analyst_read_copy],
        asset_checks=[effective_access_matches_bitbucket],
        jobs=[sync_job, *build_provisioning_jobs(settings)],
        schedules=[build_daily_sync(settings, sync_job), build_jit_expiry_schedule(settings)],
        sensors=[approved_requests_sensor, build_failure_alerts(settings)],
        resources=build_resources(settings),
    )
    return with_sync_freshness(defs, settings)


defs = build_definitions()
