"""The dbt project as dagster-dbt sees it, and how dbt is invoked."""

from __future__ import annotations

from dagster_dbt import DbtCliResource, DbtProject

from ...warehouse.files import DBT_PROJECT_DIR, dbt_executable

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
