"""Shared fixtures: simulated Bitbucket servers on free loopback ports."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
import requests

from bitbucket_assets.provisioning.tables import create_provisioning_tables
from bitbucket_simulator import SIM_API_TOKEN, Simulator, SimulatorServer, load_organisation
from bitbucket_simulator.model import Organisation
from tests.support import durations, provisioning, warehouses

# dbt in the tests writes no JSON artifacts (manifest.json, run_results.json) and logs to its file at info,
# not debug: together about 1.7 s of CPU of each dbt process's 7 to 10, in a suite that starts about 60 of
# them. No test reads them but those that ask for them (the tiny history's debug log, the unit tests' results,
# the manifest `pytest_configure` parses). The product's own runs keep dbt's defaults; a developer can too,
# by setting either variable.
os.environ.setdefault("DBT_WRITE_JSON", "false")
os.environ.setdefault("DBT_LOG_LEVEL_FILE", "info")


class Sim:
    """A running simulator plus an authenticated session as the organisation's operator."""

    def __init__(self, server: SimulatorServer):
        self.server = server
        self.simulator: Simulator = server.simulator
        self.org: Organisation = self.simulator.org
        self.url = server.url
        operator = self.org.users[self.org.operator_uuid]
        self.email = operator.email
        self.session = requests.Session()
        self.session.auth = (operator.email, SIM_API_TOKEN)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url + path, timeout=10, **kwargs)

    def user(self, nickname: str):
        return next(u for u in self.org.users.values() if u.nickname == nickname)


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    """Start a fresh simulator (per test) for tests that mutate state, faults or limits."""
    servers: list[SimulatorServer] = []

    def start(org: str = "tiny", **kwargs) -> Sim:
        server = SimulatorServer(Simulator(load_organisation(org), **kwargs)).start()
        servers.append(server)
        return Sim(server)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def tiny_sim() -> Iterator[Sim]:
    """A read-only `tiny` simulator shared by the whole session. Do not mutate it."""
    server = SimulatorServer(Simulator(load_organisation("tiny"))).start()
    yield Sim(server)
    server.stop()


@pytest.fixture
def clean_env(monkeypatch) -> pytest.MonkeyPatch:
    """No BITBUCKET_*, DUCKDB_PATH or DAGSTER_HOME of the machine's reaches the code under test."""
    for name in list(os.environ):
        if name.startswith("BITBUCKET_") or name in ("DUCKDB_PATH", "DAGSTER_HOME"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
def policy(tmp_path, make_sim):
    """A simulator and an approver policy on its organisation (tests/support/provisioning.py, `policy`)."""
    return provisioning.policy(tmp_path, make_sim())


# ---- warehouses shared by the session (built once across xdist workers: tests/support/warehouses.py) ----


@pytest.fixture(scope="session")
def tiny_history(tmp_path_factory) -> warehouses.History:
    """Three syncs of `tiny` by the sync job, with revocations and a re-grant between them. Read-only."""
    return warehouses.tiny_history(
        warehouses.shared_build(tmp_path_factory, "tiny", warehouses.build_tiny_history)
    )


@pytest.fixture(scope="session")
def tiny_warehouse(tmp_path_factory) -> str:
    """The warehouse after one sync of `tiny` (the first day of `tiny_history`). Read-only: copy it."""
    directory = warehouses.shared_build(tmp_path_factory, "tiny", warehouses.build_tiny_history)
    return str(directory / "day1.duckdb")


@pytest.fixture
def warehouse_dir(tmp_path_factory) -> Path:
    """Where a test keeps the warehouses dbt runs on: the same directory for every test of this worker,
    emptied before each (`warehouses.worker_warehouse_dir`, which says why). A failed test's warehouse is
    therefore gone once the worker's next test starts (rerun it alone to keep it)."""
    return warehouses.worker_warehouse_dir(tmp_path_factory)


@pytest.fixture
def warehouse(tiny_warehouse, warehouse_dir) -> str:
    """A copy of `tiny_warehouse` of the test's own (in `warehouse_dir`), with the provisioning tables. It
    keeps the file's name, so its catalog's: dbt's views name relations by catalog, and a sync on the copy
    reuses the plan views (`build_tiny_history` built them)."""
    copy = str(warehouse_dir / Path(tiny_warehouse).name)
    shutil.copy(tiny_warehouse, copy)
    with duckdb.connect(copy) as con:
        create_provisioning_tables(con)
    return copy


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory):
    """`bitbucket-access demo --days 3` run once, as a user runs it: its output and its warehouse files."""
    directory = warehouses.shared_build(tmp_path_factory, "demo", warehouses.build_demo_warehouse)
    db = directory / "demo.duckdb"
    return SimpleNamespace(
        db=db,
        read_copy=db.with_name("demo.read.duckdb"),
        stdout=(directory / "stdout.txt").read_text(),
        ran_on=[date.fromisoformat(d) for d in json.loads((directory / "ran_on.json").read_text())],
    )


@pytest.fixture(scope="session")
def dashboard_db(demo_warehouse, tmp_path_factory) -> str:
    copy = str(tmp_path_factory.mktemp("dash") / "dash.duckdb")
    shutil.copy(demo_warehouse.read_copy, copy)
    with duckdb.connect(copy) as con:
        create_provisioning_tables(con)
        now = datetime.now(UTC)
        con.execute(
            "insert into provisioning.access_requests (request_id, workspace_slug, group_slug, user_id, "
            "action, requested_by, approved_by, approved_at, status) values ('r1', 'northwind', 'payments', "
            "'{u}', 'add', 'a@x', 'b@x', ?, 'applied')",
            [now],
        )
        con.execute(
            "insert into provisioning.provisioning_log (log_id, request_id, workspace_slug, group_slug, "
            "user_uuid, action, outcome, http_status, error, requested_by, approved_by, attempted_at, "
            "run_id, dry_run) values ('l1', 'r1', 'northwind', 'payments', '{u}', 'add', 'applied', 200, "
            "null, 'a@x', 'b@x', ?, 'run-1', false)",
            [now],
        )
    return copy


# ---- tiers: tests/fast, tests/integration, tests/e2e (README, "Development") ----

TIERS = ("fast", "integration", "e2e")
CPU_AT_SETUP = pytest.StashKey[float]()


def pytest_collection_modifyitems(config, items) -> None:
    """Mark each test with its tier (its directory), and collect the longest modules first
    (tests/durations.json), so that under xdist (`--dist loadfile --no-loadscope-reorder`: a module's tests,
    and its module-scoped fixtures, on one worker, in this order) the long ones run beside the rest, not
    after."""
    for item in items:
        tier = next((t for t in TIERS if f"/tests/{t}/" in str(item.path)), None)
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
    seconds = durations.load()
    items.sort(key=lambda item: -seconds.get(item.nodeid.split("::")[0], durations.UNKNOWN_SECONDS))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    item.stash[CPU_AT_SETUP] = durations.cpu_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Each test's CPU seconds (its process and the children it waited for) as a property of its teardown's
    report, so of the junit report: `make test-durations` prints the modules that cost the most CPU, which
    is what bounds a suite on two cores."""
    if call.when == "teardown" and CPU_AT_SETUP in item.stash:
        item.user_properties.append(("cpu_s", round(durations.cpu_seconds() - item.stash[CPU_AT_SETUP], 2)))
    yield


def pytest_configure(config) -> None:
    """dagster-dbt reads dbt's manifest when the definitions load: make sure it exists (`make` builds it
    too)."""
    import subprocess
    import sys
    from pathlib import Path

    project = Path(__file__).resolve().parents[1] / "dbt_project"
    manifest = project / "target" / "manifest.json"
    sources = [
        project / "dbt_project.yml",
        *[p for d in ("models", "macros", "tests") for p in (project / d).rglob("*")],
    ]
    if not manifest.exists() or max(p.stat().st_mtime for p in sources) > manifest.stat().st_mtime:
        dbt = Path(sys.executable).parent / "dbt"
        parse = [str(dbt), "parse", "--quiet", "--write-json", "--profiles-dir", "."]
        subprocess.run(parse, cwd=project, check=True)


def pytest_sessionfinish(session) -> None:
    """Remove the dbt target directories the session's warehouses left in dbt_project/target: one per
    warehouse path (`warehouse_target`), 8 to 17 MB each, and the session's paths are new every time, so they
    piled up by the gigabyte. Found by the session's temporary directory in the file naming each one's
    warehouse (`WAREHOUSE_NAME_FILE`); the controller does it once every worker is done."""
    if hasattr(session.config, "workerinput"):
        return
    basetemp = getattr(getattr(session.config, "_tmp_path_factory", None), "_basetemp", None)
    if basetemp is None:
        return
    warehouses.remove_dbt_targets_under(Path(basetemp))
