"""Provisioning over days of simulated time: approval age and just-in-time expiry, without sleeping."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.clock import SimulatedClock
from bitbucket_assets.provisioning.engine import Provisioner
from bitbucket_assets.simulator import SIM_API_TOKEN

from .conftest import NOW, add_request, statuses, writes


def run(sim, db: str, clock: SimulatedClock, expire: bool = False) -> Provisioner:
    client = BitbucketClient(Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url, clock=clock,
                             requests_per_hour=1e7)  # fmt: skip
    with duckdb.connect(db) as con:
        provisioner = Provisioner(client, con)
        provisioner.expire() if expire else provisioner.provision()
    return provisioner


def in_group(sim, nickname: str, group: str) -> bool:
    return sim.user(nickname).uuid in sim.org.workspaces["tiny-co"].groups[group].members


def test_a_week_of_just_in_time_access_expires_on_the_simulated_clock(make_sim, warehouse) -> None:
    sim = make_sim()
    clock = SimulatedClock(NOW)
    add_request(warehouse, "jit", sim.user("finn"), "leads", approved_at=NOW, expires_at=NOW + timedelta(days=7))
    run(sim, warehouse, clock)
    assert statuses(warehouse)["jit"][0] == "applied" and in_group(sim, "finn", "leads")
    clock.advance(timedelta(days=6, hours=23))
    run(sim, warehouse, clock, expire=True)
    assert statuses(warehouse)["jit"][0] == "applied" and in_group(sim, "finn", "leads")
    clock.advance(timedelta(hours=2))  # now past the expiry
    run(sim, warehouse, clock, expire=True)
    assert statuses(warehouse)["jit"][0] == "expired" and not in_group(sim, "finn", "leads")
    assert [(w.method, w.status) for w in writes(sim)] == [("PUT", 200), ("DELETE", 204)]
    with duckdb.connect(warehouse, read_only=True) as con:
        stamps = con.execute(
            "select action, attempted_at from provisioning.provisioning_log order by attempted_at"
        ).fetchall()
    # The log is dated by the same clock: the grant at the start, the expiry 7 days and 1 hour later.
    assert stamps == [("add", NOW), ("expire", NOW + timedelta(days=7, hours=1))]


def test_an_approval_grows_old_on_the_simulated_clock(make_sim, warehouse) -> None:
    sim = make_sim()
    clock = SimulatedClock(NOW)
    add_request(warehouse, "late", sim.user("zoe"), "leads", approved_at=NOW)
    clock.advance(timedelta(days=31))
    run(sim, warehouse, clock)
    status, reason = statuses(warehouse)["late"]
    assert status == "rejected" and reason == "approval is 31 days old; the limit is 30 days"
    assert writes(sim) == []
