"""SIGKILL a sync at several points: nothing partial becomes visible, and the next run resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import duckdb

from bitbucket_simulator import SIM_API_TOKEN, Faults
from tests.support.extraction import snapshot, sync

SYNC_SCRIPT = """
import sys, duckdb
from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.refresh import RefreshPolicy
from bitbucket_assets.extraction.sync import run_sync
url, email, token, db = sys.argv[1:5]
client = BitbucketClient(Credentials.api_token(email, token), url, requests_per_hour=1e7, max_workers=4)
with duckdb.connect(db) as con:
    # As tests/support/extraction.py does: every change control, so both snapshots read the same.
    print(run_sync(client, con, ExtractionOptions(refresh=RefreshPolicy(change_control_days=1))).sync_id)
"""


def start_sync(sim, db) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SYNC_SCRIPT, sim.url, sim.email, SIM_API_TOKEN, str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_several_points_then_resume(make_sim, tmp_path) -> None:
    clean_sim = make_sim("demo")
    clean = sync(clean_sim, tmp_path / "clean.duckdb")
    clean_calls = len(clean_sim.simulator.request_log)

    sim = make_sim("demo", faults=Faults(seed=2, latency_ms=3))
    db = tmp_path / "w.duckdb"
    # Requests answered in each trial before the kill: during members, projects, repositories pages.
    kill_points = (5, 60, 120, 80)
    for point in kill_points:
        start = len(sim.simulator.request_log)
        proc = start_sync(sim, db)
        deadline = time.monotonic() + 60
        while len(sim.simulator.request_log) < start + point and time.monotonic() < deadline:
            time.sleep(0.002)
        assert proc.poll() is None, "the sync finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        with duckdb.connect(str(db), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM raw.syncs WHERE status = 'complete'").fetchone() == (0,)
            statuses = {s for (s,) in con.execute("SELECT status FROM raw.syncs").fetchall()}
        assert statuses == {"running"}  # one sync, never published, resumed by each next run
    before = len(sim.simulator.request_log)
    finisher = start_sync(sim, db)
    out, err = finisher.communicate(timeout=120)
    assert finisher.returncode == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status, resumes FROM raw.syncs").fetchall() == [
            ("complete", len(kill_points))
        ]
    assert snapshot(db, out.strip()) == snapshot(tmp_path / "clean.duckdb", clean.sync_id)
    total = len(sim.simulator.request_log)
    # Each kill costs at most the checkpoint unit in flight: one page and its permission lists (201 calls),
    # plus the workspace list fetched again on start.
    assert total - clean_calls <= len(kill_points) * (201 + 2)
    assert len(sim.simulator.request_log) - before < clean_calls
