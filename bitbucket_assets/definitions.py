"""Dagster definitions: this module only assembles what the domain packages define."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from .defs.extraction.assets import bitbucket_raw_snapshot
from .defs.extraction.resources import bitbucket_resource_from_env, duckdb_path
from .defs.provisioning.jobs import (
    approved_requests_sensor,
    expire_jit_access,
    jit_expiry_schedule,
    provision_group_membership,
)
from .defs.sync import daily_sync, sync_job
from .defs.warehouse.assets import effective_access_matches_bitbucket, raw_snapshot_retention, warehouse_models
from .defs.warehouse.project import dbt_resource
from .defs.warehouse.read_copy import analyst_read_copy


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[bitbucket_raw_snapshot, warehouse_models, raw_snapshot_retention, analyst_read_copy],
        asset_checks=[effective_access_matches_bitbucket],
        jobs=[sync_job, provision_group_membership, expire_jit_access],
        schedules=[daily_sync, jit_expiry_schedule],
        sensors=[approved_requests_sensor],
        resources={
            "bitbucket": bitbucket_resource_from_env(),
            "duckdb": DuckDBResource(database=duckdb_path()),
            "dbt": dbt_resource(),
        },
    )


defs = build_definitions()
