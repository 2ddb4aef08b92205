"""SIGKILL the provisioning job part-way, twelve times (six on the Admin API path), then let it finish: every
approved request is applied exactly once and the log is complete.

Each run is killed right after the simulator answered its k-th membership write (k = 1..4 in turn): a point
defined by the work done, not by time, so the test means the same on a fast and on a busy machine. The
kill then lands while the run records that write, or a little later; every window is exercised over the runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb

from bitbucket_simulator import SIM_API_TOKEN, SIM_ORG_API_KEY, SIM_ORG_ID, Faults
from tests.support.provisioning import add_request, statuses

RUN = """
import sys, duckdb
from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.client.admin_api import AtlassianAdminApi
from bitbucket_assets.provisioning.engine import Provisioner, ProvisioningPolicy
url, email, token, db, org_id, org_key = sys.argv[1:7]
client = BitbucketClient(Credentials.api_token(email, token), url, requests_per_hour=1e7)
admin = AtlassianAdminApi.connect(org_id, org_key, url, requests_per_hour=1e7) if org_key else None
with duckdb.connect(db) as con:
    # The cap is a product rule, not something for this test to trip over: room for every request it adds.
    Provisioner(client, con, ProvisioningPolicy(max_changes_per_run=1000), admin_api=admin,
                admin_managed=["tiny-co"] if admin else None).provision()
"""

PER_TRIAL = 5  # requests added before each trial, so every run has work to be killed in


def successful_writes(sim, api: str) -> list:
    """Every membership change that took effect, one entry per change, naming the membership."""
    if api == "admin":  # a POST names its user in the body: the simulator keeps the changes themselves
        return list(sim.simulator.admin.changes)
    ok, log = (("PUT", 200), ("DELETE", 204)), list(sim.simulator.request_log)
    return [r.path for r in log if r.path.startswith("/1.0/") and (r.method, r.status) in ok]


def test_sigkill_part_way_applies_each_request_once(make_sim, warehouse, capsys) -> None:
    sim = make_sim(faults=Faults(seed=1, latency_ms=20, jitter_ms=10))
    sigkill_trials(sim, warehouse, capsys, api="1.0", wanted_kills=12)


def test_sigkill_part_way_applies_each_request_once_through_the_admin_api(
    make_sim, warehouse, capsys
) -> None:
    """The same guarantee when the workspace's groups are organization groups: tiny-co is switched to
    administered-from-admin.atlassian.com in the simulator and named so in the run's settings."""
    sim = make_sim(faults=Faults(seed=2, latency_ms=20, jitter_ms=10))
    sim.org.workspaces["tiny-co"].admin_managed = True
    sigkill_trials(sim, warehouse, capsys, api="admin", wanted_kills=6)


def sigkill_trials(sim, warehouse: str, capsys, api: str, wanted_kills: int) -> None:
    org = (SIM_ORG_ID, SIM_ORG_API_KEY) if api == "admin" else ("", "")
    args = [sys.executable, "-c", RUN, sim.url, sim.email, SIM_API_TOKEN, warehouse, *org]
    adds, removes, kills, trials = [], [], 0, 0
    # The wanted kills; a run that finished before its kill point (a parent starved on a very busy machine) is
    # not one, and the loop goes on, 18 runs at most (the 90 filler users of tiny).
    while kills < wanted_kills and trials < 18:
        trial, trials = trials, trials + 1
        for i in range(PER_TRIAL):
            who = f"filler-{trial * PER_TRIAL + i + 1:03d}"
            if i == PER_TRIAL - 1:  # one removal per batch: out of `everyone`
                add_request(warehouse, f"t{trial}-remove-{who}", sim.user(who), "everyone", action="remove")
                removes.append(who)
            else:
                add_request(warehouse, f"t{trial}-add-{who}", sim.user(who), "leads")
                adds.append(who)
        # this run has at least PER_TRIAL writes to make
        target = len(successful_writes(sim, api)) + 1 + trial % 4
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300  # generous: a slow machine only takes longer to get there
        while (
            len(successful_writes(sim, api)) < target and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        else:
            assert proc.returncode == 0, f"run {trial} failed: {proc.stderr.read()[-1500:]!r}"
        proc.wait(timeout=60)
    final = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr[-2000:]

    st = statuses(warehouse)
    assert len(st) == trials * PER_TRIAL
    assert {k: s for k, (s, _) in st.items()} == {k: "applied" for k in st}
    ws = sim.org.workspaces["tiny-co"]
    assert all(sim.user(who).uuid in ws.groups["leads"].members for who in adds)
    assert not any(sim.user(who).uuid in ws.groups["everyone"].members for who in removes)
    # Exactly once: one successful mutating call per request, whatever the kills interrupted.
    ok_writes = successful_writes(sim, api)
    assert len(ok_writes) == len(set(ok_writes)) == len(st)
    # Every write went through the API the workspace's kind calls for, and none through the other.
    other = successful_writes(sim, "1.0" if api == "admin" else "admin")
    assert other == []
    with duckdb.connect(warehouse, read_only=True) as con:
        finals = con.execute(
            "select request_id, count(*) from provisioning.provisioning_log where outcome = 'applied' group "
            "by 1"
        ).fetchall()
        reconciled = con.execute(
            "select count(*) from provisioning.provisioning_log where error like '%reconciled after a crash%'"
        ).fetchone()[0]
        intents = con.execute("select count(*) from provisioning.provisioning_intents").fetchone()[0]
        backends = {
            b for (b,) in con.execute("select distinct backend from provisioning.provisioning_log").fetchall()
        }
    assert dict(finals) == {k: 1 for k in st}  # the log is complete: one final row per request
    assert intents == 0
    assert backends == {"atlassian-admin-api" if api == "admin" else "bitbucket-1.0"}
    # reached long before the 18th run: a run is killed after at most 4 of its 5+ writes
    assert kills == wanted_kills
    with capsys.disabled():
        print(
            f"\ncrash test ({api} API): {trials} runs, {kills} SIGKILLed, {len(st)} requests, "
            f"{len(ok_writes)} successful writes (one each), {reconciled} finished from an intent after a "
            "kill"
        )
