"""A warehouse built from several syncs of `tiny`, with revocations and a re-grant between them.

Built once per session: each day is a real sync over HTTP followed by a real dbt build run by Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg
import duckdb
import pytest

from bitbucket_assets.defs import sync_job
from bitbucket_assets.defs.resources import build_resources
from bitbucket_assets.settings import load_settings
from bitbucket_simulator import SIM_API_TOKEN, Simulator, SimulatorServer, load_organisation


@dataclass
class History:
    db: str
    org: object
    sync_ids: list[str] = field(default_factory=list)
    results: list = field(default_factory=list)

    def query(self, sql: str, params=None) -> list[tuple]:
        with duckdb.connect(self.db, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def user(self, nickname: str):
        return next(u for u in self.org.users.values() if u.nickname == nickname)


def run_pipeline(
    sim_url: str, email: str, db: str, selection=None, workspaces: str | None = None
) -> dg.ExecuteInProcessResult:
    """The sync job (or `selection` of its assets) against a simulator, as the code location runs it."""
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
    )


@pytest.fixture(scope="session")
def tiny_history(tmp_path_factory) -> History:
    org = load_organisation("tiny")
    db = str(tmp_path_factory.mktemp("warehouse") / "tiny.duckdb")
    history = History(db, org)
    ws = org.workspaces["tiny-co"]
    ben, finn = (next(u for u in org.users.values() if u.nickname == n) for n in ("ben", "finn"))
    with SimulatorServer(Simulator(org)) as server:
        email = org.users[org.operator_uuid].email

        def day() -> None:
            result = run_pipeline(server.url, email, db)
            assert result.success
            history.results.append(result)
            history.sync_ids.append(
                history.query("select sync_id from raw.syncs order by finished_at desc limit 1")[0][0]
            )

        day()  # day 1: the baseline
        ws.groups["developers"].members.remove(ben.uuid)  # ben leaves developers
        ws.groups["leads"].members.append(finn.uuid)  # finn joins leads
        ws.repositories["runbooks"].user_grants[
            next(u for u in org.users.values() if u.nickname == "zoe").uuid
        ] = "admin"
        org.touch()
        day()  # day 2: revocations, an addition and a changed permission
        ws.groups["developers"].members.append(ben.uuid)  # ben comes back
        org.touch()
        day()  # day 3: the re-grant
    return history
