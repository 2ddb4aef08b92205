"""How dbt is run on one warehouse: the vars that name the file, and the target directory that keeps dbt's
parse of the project for it. Plain functions, shared by the Dagster assets (defs/dbt_models) and whatever else
runs dbt on a warehouse (the demo, the plan views built outside a job)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..settings import process_environment
from .files import DBT_PROJECT_DIR, dbt_executable

# The project's manifest (`make install` parses it; the image's build too): what Dagster's definitions load.
PROJECT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
# In each warehouse's target directory: the warehouse it belongs to, since its name is a hash (so that whoever
# clears old directories out, the test session among them, can tell them apart).
WAREHOUSE_NAME_FILE = "warehouse.txt"


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


def warehouse_named(database: str) -> str:
    """The warehouse a target directory belongs to, as its `WAREHOUSE_NAME_FILE` says: the absolute path, or a
    MotherDuck database without its query string (which may carry a token)."""
    return database.partition("?")[0] if database.startswith("md:") else str(Path(database).resolve())


@contextmanager
def target_for(database: str) -> Iterator[Path]:
    """The warehouse's target directory, held for one dbt run (two runs on one warehouse would overwrite each
    other's artifacts; DuckDB's lock serialises them anyway), without the last run's results."""
    target = warehouse_target(database)
    directory = DBT_PROJECT_DIR / target
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            (directory / WAREHOUSE_NAME_FILE).write_text(warehouse_named(database) + "\n")
            (directory / "run_results.json").unlink(missing_ok=True)
            yield target
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_dbt(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`dbt <args>` on one warehouse as the sync job runs it: its vars, its target directory (so the next run
    reuses this parse of the project) and dbt's log beside it (where dagster-dbt has dbt write it). Output
    captured; the caller decides what a failure means."""
    with target_for(database) as target:
        return subprocess.run(
            [
                *(dbt_executable(), *args, "--profiles-dir", ".", "--vars", dbt_vars(database)),
                *("--target-path", str(target), "--log-path", str(target)),
            ],
            cwd=DBT_PROJECT_DIR,
            env=process_environment(),
            capture_output=True,
            text=True,
        )
