"""The dbt project as dagster-dbt sees it, and how dbt is invoked."""

from __future__ import annotations

import json
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from ...warehouse.files import DBT_PROJECT_DIR, dbt_executable

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())


def dbt_vars(database: str) -> str:
    """`--vars` for dbt: the warehouse `profiles.yml` opens (`var('duckdb_path')`), as an absolute path, since
    dbt runs in its own process in dbt_project/."""
    path = database if database.startswith("md:") else str(Path(database).resolve())
    return json.dumps({"duckdb_path": path})
