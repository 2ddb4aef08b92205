"""Dagster definitions: this module only assembles what the domain packages define."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from .defs.extraction.assets import bitbucket_raw_snapshot, sync_job
from .defs.extraction.resources import bitbucket_resource_from_env, duckdb_path


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[bitbucket_raw_snapshot],
        jobs=[sync_job],
        resources={
            "bitbucket": bitbucket_resource_from_env(),
            "duckdb": DuckDBResource(database=duckdb_path()),
        },
    )


defs = build_definitions()
