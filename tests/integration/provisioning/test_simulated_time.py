"""Provisioning over days of simulated time: approval age and just-in-time expiry, without sleeping."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.clock import SimulatedClock
from bitbucket_assets.provisioning.engine import Provisioner
from bitbucket_simulator import SIM_API_TOKEN, Faults
from tests.support.provisioning import NOW, add_request, statuses, writes


def run(sim, db: str, clock: SimulatedClock, expire: bool = False) -> Provisioner:
    client = BitbucketClient(
        Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url, clock=clock, requests_per_hour=1e7
    )
    with duckdb.connect(db) as con:
        provisioner = Provisioner(client, con)
        provisioner.expire() if expire else provisioner.provision()
    return provisioner


def in_group(sim, nickname: str, group: str) -> bool:
    return sim.user(nickname).uuid in sim.org.workspaces["tiny-co"].groups[group].members


def test_a_week_of_just_in_time_access_expires_on_the_simulated_clock(make_sim, warehouse) -> None:
    sim = make_sim()
    clock = SimulatedClock(NOW)
    add_request(
        warehouse, "jit", sim.user("finn"), "leads", approved_at=NOW, expires_at=NOW + timedelta(days=7)
    )
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


def test_jit_grants_survive_dropped_connections_and_expire_exactly_once(make_sim, warehouse) -> None:
    """Connections cut after Bitbucket applied the write (the retry then gets 409 or 404): each grant is still
    ours, expires exactly once, and a membership that existed before its request is never removed."""
    sim = make_sim(faults=Faults(seed=4, drop_rate=0.35))
    clock = SimulatedClock(NOW)
    ws = sim.org.workspaces["tiny-co"]
    leads = ws.groups["leads"]
    newcomers = [u for u, m in ws.members.items() if m.role != "owner" and u not in leads.members][:8]
    veteran = leads.members[0]
    expires = NOW + timedelta(days=1)
    for i, user in enumerate(newcomers):
        add_request(warehouse, f"jit-{i}", user, "leads", approved_at=NOW, expires_at=expires)
    add_request(warehouse, "jit-veteran", veteran, "leads", approved_at=NOW, expires_at=expires)

    def client() -> BitbucketClient:
        return BitbucketClient(
            Credentials.api_token(sim.email, SIM_API_TOKEN),
            sim.url,
            clock=clock,
            requests_per_hour=1e7,
            max_retries=12,
        )

    with duckdb.connect(warehouse) as con:
        Provisioner(client(), con).provision()
    granted = statuses(warehouse)
    assert {k: v[0] for k, v in granted.items()} == {
        **{f"jit-{i}": "applied" for i in range(8)},
        "jit-veteran": "no_change",
    }
    assert set(newcomers) <= set(leads.members)
    clock.advance(timedelta(days=2))
    with duckdb.connect(warehouse) as con:
        Provisioner(client(), con).expire()
    assert {k: v[0] for k, v in statuses(warehouse).items()} == dict.fromkeys(
        [*(f"jit-{i}" for i in range(8)), "jit-veteran"], "expired"
    )
    assert "not made by this system" in statuses(warehouse)["jit-veteran"][1]
    assert not set(newcomers) & set(leads.members) and veteran in leads.members
    # Each newcomer was written exactly once each way, and some of those writes lost their response.
    for user in newcomers:
        mine = [
            w for w in writes(sim) if w.path.endswith("/" + user) or w.path.endswith(user.replace("{", "%7B"))
        ]
        assert sorted(w.status for w in mine if w.status in (200, 204)) == [200, 204], user
    dropped = [w for w in writes(sim) if w.fault == "drop"]
    assert {w.method for w in dropped} == {"PUT", "DELETE"}
    with duckdb.connect(warehouse, read_only=True) as con:
        expiries = con.execute(
            "select request_id, count(*) from provisioning.provisioning_log where action = 'expire' group by "
            "1"
        ).fetchall()
    assert sorted(expiries) == [*((f"jit-{i}", 1) for i in range(8)), ("jit-veteran", 1)]
