"""Warehouses the integration and end-to-end tiers share, each built once per test session.

A pytest-xdist session has one process per worker, and a session fixture runs in every worker that asks for
it: each warehouse is therefore built under a file lock in the directory the workers share, and the others
reuse it. What a test needs from the Dagster runs that built it (materialization metadata, check results) is
kept as JSON beside it. Tests treat these warehouses as read-only, or copy them first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import patch

import dagster as dg
import duckdb
from filelock import FileLock

from bitbucket_assets.defs import sync_job
from bitbucket_assets.defs.resources import build_resources
from bitbucket_assets.settings import load_settings
from bitbucket_assets.warehouse import plan_views
from bitbucket_assets.warehouse.dbt_runs import WAREHOUSE_NAME_FILE
from bitbucket_assets.warehouse.files import DBT_PROJECT_DIR
from bitbucket_simulator import SIM_API_TOKEN, Simulator, SimulatorServer, load_organisation


def remove_dbt_targets_under(directory: Path) -> None:
    """Remove the dbt target directories (`warehouse_target`, in dbt_project/target) of warehouses under
    `directory`, as the file each names its warehouse in says (`WAREHOUSE_NAME_FILE`)."""
    prefix = str(directory.resolve()) + "/"
    for named in (DBT_PROJECT_DIR / "target").glob(f"warehouse-*/{WAREHOUSE_NAME_FILE}"):
        try:
            warehouse = named.read_text().strip()
        except OSError:  # another worker removed its own directory meanwhile
            continue
        if warehouse.startswith(prefix):
            shutil.rmtree(named.parent, ignore_errors=True)


def worker_warehouse_dir(tmp_path_factory) -> Path:
    """The directory, emptied, where a worker builds its tests' warehouses: the same for every test, since dbt
    reuses its parse of the project only for a warehouse at the path it was saved for (`warehouse_target`,
    `dbt_vars`), and parses the whole project again for a new one (about 2.5 to 3 s of CPU more)."""
    directory = tmp_path_factory.getbasetemp() / "warehouses"
    if directory.exists():
        shutil.rmtree(directory)  # a failure to empty it is the error, not the mkdir after it
    directory.mkdir()
    return directory


@contextmanager
def built_in_the_workers_dir(tmp_path_factory, keep: Path) -> Iterator[str]:
    """A module's warehouse, built at `keep.name` in the worker's warehouse directory (whose parse of the
    project dbt most likely has already), then moved with whatever was written beside it (its read copy) to
    `keep`'s directory, out of the way of the tests' own `warehouse_dir`. Yields the path to build at."""
    directory = worker_warehouse_dir(tmp_path_factory)
    yield str(directory / keep.name)
    keep.parent.mkdir(parents=True, exist_ok=True)
    for path in directory.iterdir():
        shutil.move(path, keep.parent / path.name)


def shared_build(tmp_path_factory, name: str, build: Callable[[Path], Any]) -> Path:
    """`build(directory)` once per session across xdist workers; returns the directory it filled. A
    warehouse built there starts without a dbt target directory, as a new one does, even where a session
    with the same base temporary directory (`--basetemp`) was killed before it removed its own."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' base temps are siblings under one session directory
    directory = root / f"shared-{name}"
    with FileLock(str(root / f"shared-{name}.lock")):
        done = directory / ".built"
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            remove_dbt_targets_under(directory)
            build(directory)
            done.write_text("ok")
    return directory


def run_pipeline(
    sim_url: str,
    email: str,
    db: str,
    selection=None,
    workspaces: str | None = None,
    run_config: dict | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """The sync job (or `selection` of its assets) against a simulator (or a replay of recorded answers), as
    the code location runs it."""
    settings = load_settings(
        bitbucket_api_url=sim_url,
        bitbucket_email=email,
        bitbucket_api_token=SIM_API_TOKEN,
        bitbucket_requests_per_hour=1e7,
        bitbucket_workspaces=workspaces,
        duckdb_path=db,
    )
    definitions = sync_job.definitions()
    return dg.materialize(
        [*definitions.assets, *definitions.asset_checks],
        resources=build_resources(settings),
        selection=selection,
        instance=dg.DagsterInstance.ephemeral(),
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


@dataclass
class RunRecord:
    """What a test reads of one Dagster run: each asset's materialization metadata and each check's result."""

    run_id: str
    materializations: dict[str, dict[str, Any]]  # asset key -> metadata
    checks: dict[str, dict[str, Any]]  # check name -> {"passed": bool, "metadata": {...}}

    @classmethod
    def of(cls, result: dg.ExecuteInProcessResult) -> RunRecord:
        materializations = {
            event.asset_key.to_user_string(): {
                key: value.value for key, value in event.materialization.metadata.items()
            }
            for event in result.get_asset_materialization_events()
        }
        checks = {
            c.check_name: {
                "passed": c.passed,
                "metadata": {key: value.value for key, value in c.metadata.items()},
            }
            for c in result.get_asset_check_evaluations()
        }
        plain = json.loads(json.dumps({"materializations": materializations, "checks": checks}, default=str))
        return cls(result.run_id, plain["materializations"], plain["checks"])


@dataclass
class History:
    db: str
    org: object
    sync_ids: list[str] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)

    def query(self, sql: str, params=None) -> list[tuple]:
        with duckdb.connect(self.db, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def user(self, nickname: str):
        return next(u for u in self.org.users.values() if u.nickname == nickname)


def build_tiny_history(directory: Path) -> None:
    """Three syncs of `tiny`, each the real sync job over HTTP: a baseline; revocations, an addition and a
    changed permission; a re-grant. The warehouse after day 1 is kept too (`day1.duckdb`): provisioning tests
    start from it, as from a first sync of `tiny`."""
    org = load_organisation("tiny")
    db = str(directory / "tiny.duckdb")
    ws = org.workspaces["tiny-co"]
    ben, finn, zoe = (next(u for u in org.users.values() if u.nickname == n) for n in ("ben", "finn", "zoe"))
    sync_ids, runs = [], []
    # Whether each dbt run reused the parse of the project is a debug event in dbt's log
    # (test_plan_views_reused; the session's default is info, tests/conftest.py).
    with SimulatorServer(Simulator(org)) as server, patch.dict(os.environ, {"DBT_LOG_LEVEL_FILE": "debug"}):
        email = org.users[org.operator_uuid].email

        def day() -> None:
            result = run_pipeline(server.url, email, db)
            assert result.success
            runs.append(RunRecord.of(result))
            with duckdb.connect(db, read_only=True) as con:
                latest = "select sync_id from raw.syncs order by finished_at desc limit 1"
                sync_ids.append(con.execute(latest).fetchone()[0])

        day()  # day 1: the baseline
        shutil.copy(db, directory / "day1.duckdb")
        # The plan views the job's second sync would build, so that a sync on a copy (`warehouse`) runs one
        # dbt process, as on any warehouse after its second sync.
        plan_views.build(str(directory / "day1.duckdb"))
        ws.groups["developers"].members.remove(ben.uuid)  # ben leaves developers
        ws.groups["leads"].members.append(finn.uuid)  # finn joins leads
        ws.repositories["runbooks"].user_grants[zoe.uuid] = "admin"
        org.touch()
        day()  # day 2: revocations, an addition and a changed permission
        ws.groups["developers"].members.append(ben.uuid)  # ben comes back
        org.touch()
        day()  # day 3: the re-grant
    (directory / "history.json").write_text(
        json.dumps({"sync_ids": sync_ids, "runs": [run.__dict__ for run in runs]})
    )


def tiny_history(directory: Path) -> History:
    saved = json.loads((directory / "history.json").read_text())
    runs = [RunRecord(**run) for run in saved["runs"]]
    return History(str(directory / "tiny.duckdb"), load_organisation("tiny"), saved["sync_ids"], runs)


def build_demo_warehouse(directory: Path) -> None:
    """`bitbucket-access demo --days 3`, run as a user runs it; its output is kept beside the warehouse."""
    exe = shutil.which("bitbucket-access") or str(Path(sys.executable).parent / "bitbucket-access")
    started = datetime.now(UTC).date()
    out = subprocess.run(
        [exe, "demo", "--days", "3"],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
        env={**os.environ, "DUCKDB_PATH": str(directory / "demo.duckdb")},
    ).stdout
    (directory / "stdout.txt").write_text(out)
    # "Today" for the demo is the day it ran, which is not always the day a test reads it (midnight).
    ran_on = sorted({started.isoformat(), datetime.now(UTC).date().isoformat()})
    (directory / "ran_on.json").write_text(json.dumps(ran_on))
