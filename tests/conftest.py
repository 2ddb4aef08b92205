"""Shared fixtures: simulated Bitbucket servers on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests

from bitbucket_simulator import SIM_API_TOKEN, Simulator, SimulatorServer, load_organisation
from bitbucket_simulator.model import Organisation


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


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory):
    """`bitbucket-access demo --days 3` run once, as a user runs it: its output and its warehouse files."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    db = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    exe = shutil.which("bitbucket-access") or str(Path(sys.executable).parent / "bitbucket-access")
    out = subprocess.run(
        [exe, "demo", "--days", "3"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={**os.environ, "DUCKDB_PATH": str(db)},
    ).stdout
    return SimpleNamespace(db=db, read_copy=db.with_name("demo.read.duckdb"), stdout=out)


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
        subprocess.run([str(dbt), "parse", "--quiet", "--profiles-dir", "."], cwd=project, check=True)
