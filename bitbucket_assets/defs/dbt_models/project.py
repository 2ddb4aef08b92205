"""The dbt project as dagster-dbt sees it, and how dbt is invoked."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from importlib import metadata

from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from ...warehouse.files import DBT_PROJECT_DIR, dbt_executable

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class WarehouseDbt(DbtCliResource):
    """dagster-dbt's resource without two steps it takes before running dbt, which this project never needs.

    `DbtCliResource.cli` runs `dbt --version` in a subprocess (once per resource, so once per run: about
    1.8 s of CPU, and dbt asks PyPI for its latest version) and, before every dbt command, opens a dbt adapter
    in the Dagster process (about 1.4 s of CPU) that serves only `fetch_row_counts()` and
    `fetch_column_metadata()`, which this project does not call. dbt is installed beside this Python
    (`dbt_executable`), so its version is the dbt-core package's; no adapter is opened, as for dbt Fusion.
    tests/fast/project/test_definitions.py fails if a dagster-dbt upgrade renames either step.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        if self.dbt_executable == dbt_executable() != "dbt":
            try:
                return version.parse(metadata.version("dbt-core"))
            except metadata.PackageNotFoundError:  # dbt beside Python, but not dbt-core's (dbt Fusion)
                pass
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:  # type: ignore[override]
        return None


def dbt_resource() -> DbtCliResource:
    return WarehouseDbt(project_dir=dbt_project, dbt_executable=dbt_executable())
