"""The dbt project as dagster-dbt sees it, and how dbt is invoked."""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from importlib import metadata
from pathlib import Path

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


def dbt_vars(database: str) -> str:
    """`--vars` for dbt: the warehouse `profiles.yml` opens (`var('duckdb_path')`), as an absolute path, since
    dbt runs in its own process in dbt_project/."""
    path = database if database.startswith("md:") else str(Path(database).resolve())
    return json.dumps({"duckdb_path": path})


def warehouse_target(database: str) -> Path:
    """dbt's target directory for one warehouse (relative to the project), kept from one run to the next.

    dbt reuses its parse of the project (`partial_parse.msgpack`) only when the command line's vars and the
    profile (the warehouse's path) are those it was saved with. dagster-dbt's default, a new directory per
    run seeded from `target/` (parsed without vars), made every sync parse the whole project again: about 5 s
    of CPU per dbt run, and a directory per run piling up."""
    digest = hashlib.sha256(dbt_vars(database).encode()).hexdigest()[:16]
    return Path("target") / f"warehouse-{digest}"


@contextmanager
def target_for(database: str) -> Iterator[Path]:
    """The warehouse's target directory, held for one dbt run (two runs on one warehouse would overwrite each
    other's artifacts; DuckDB's lock serialises them anyway), without the last run's results."""
    target = warehouse_target(database)
    directory = dbt_project.project_dir / target
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            (directory / "run_results.json").unlink(missing_ok=True)
            yield target
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
