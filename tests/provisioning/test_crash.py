"""SIGKILL the provisioning job at random points, ten times and more, then let it finish:
every approved request is applied exactly once and the log is complete."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import duckdb

from bitbucket_assets.simulator import SIM_API_TOKEN, Faults

from .conftest import add_request, statuses

RUN = """
import sys, duckdb
from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.provisioning.engine import Provisioner
url, email, token, db = sys.argv[1:5]
client = BitbucketClient(Credentials.api_token(email, token), url, requests_per_hour=1e7)
with duckdb.connect(db) as con:
    Provisioner(client, con).provision()
"""

TRIALS = 12  # SIGKILLs wanted
PER_TRIAL = 5  # requests added before each trial, so every run has work to be killed in


def test_sigkill_at_random_points_applies_each_request_once(make_sim, warehouse, capsys) -> None:
    sim = make_sim(faults=Faults(seed=1, latency_ms=60, jitter_ms=20))
    rng = random.Random(2026)
    args = [sys.executable, "-c", RUN, sim.url, sim.email, SIM_API_TOKEN, warehouse]
    adds, removes, kills = [], [], 0
    trials = 0
    # Run until 12 runs were killed mid-way (a run that finished first does not count), 18 runs at most.
    while kills < TRIALS and trials < 18:
        trial, trials = trials, trials + 1
        for i in range(PER_TRIAL):
            who = f"filler-{trial * PER_TRIAL + i + 1:03d}"
            if i == PER_TRIAL - 1:  # one removal per batch: out of `everyone`
                add_request(warehouse, f"t{trial}-remove-{who}", sim.user(who), "everyone", action="remove")
                removes.append(who)
            else:
                add_request(warehouse, f"t{trial}-add-{who}", sim.user(who), "leads")
                adds.append(who)
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.15, 0.8))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    final = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr[-2000:]

    st = statuses(warehouse)
    assert len(st) == trials * PER_TRIAL
    assert {k: s for k, (s, _) in st.items()} == {k: "applied" for k in st}
    ws = sim.org.workspaces["tiny-co"]
    assert all(sim.user(who).uuid in ws.groups["leads"].members for who in adds)
    assert not any(sim.user(who).uuid in ws.groups["everyone"].members for who in removes)
    # Exactly once: one successful mutating call per request, whatever the kills interrupted.
    ok_writes = [r.path for r in sim.simulator.request_log if (r.method, r.status) in (("PUT", 200), ("DELETE", 204))]
    assert len(ok_writes) == len(set(ok_writes)) == len(st)
    with duckdb.connect(warehouse, read_only=True) as con:
        finals = con.execute(
            "select request_id, count(*) from provisioning.provisioning_log where outcome = 'applied' group by 1"
        ).fetchall()
        reconciled = con.execute(
            "select count(*) from provisioning.provisioning_log where error like '%reconciled after a crash%'"
        ).fetchone()[0]
        intents = con.execute("select count(*) from provisioning.provisioning_intents").fetchone()[0]
    assert dict(finals) == {k: 1 for k in st}  # the log is complete: one final row per request
    assert intents == 0
    assert kills >= 10
    with capsys.disabled():
        print(
            f"\ncrash test: {trials} runs, {kills} SIGKILLed, {len(st)} requests, {len(ok_writes)} successful "
            f"writes (one each), {reconciled} finished from an intent after a kill"
        )
