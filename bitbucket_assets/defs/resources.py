"""Every resource the definitions use, built from one `Settings`."""

from __future__ import annotations

from dagster_duckdb import DuckDBResource

from ..settings import Settings
from .extraction.resources import bitbucket_resource
from .warehouse.project import dbt_resource


def build_resources(settings: Settings) -> dict:
    settings.ensure_warehouse_directory()
    return {
        "bitbucket": bitbucket_resource(settings),
        "duckdb": DuckDBResource(database=settings.duckdb_path),
        "dbt": dbt_resource(),
    }
