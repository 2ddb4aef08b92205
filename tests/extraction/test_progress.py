"""Progress of a sync: an event per checkpoint with pages done of expected, calls, 429s, pacing and time left;
plain lines from `sync` off a terminal, and the same lines in Dagster's run log."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.clock import SimulatedClock
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.progress import ProgressEvent
from bitbucket_assets.extraction.sync import run_sync
from bitbucket_simulator import SIM_API_TOKEN


def test_a_paced_sync_reports_every_checkpoint_with_its_pacing_and_time_left(make_sim, tmp_path) -> None:
    """`demo` (200 repositories: two pages a workspace) at 3,600 calls an hour with a burst of 50, on a
    simulated clock: the pacing is real, the waiting takes no time."""
    sim = make_sim("demo")
    clock = SimulatedClock(datetime(2026, 11, 1, tzinfo=UTC))
    client = BitbucketClient(
        Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url, requests_per_hour=3600, clock=clock
    )
    events: list[ProgressEvent] = []
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        result = run_sync(client, con, ExtractionOptions(progress=[events.append]))

    stages = [(e.workspace, e.stage) for e in events]
    first = result.workspaces[0]
    assert stages[0] == (first, "members") and events[0].finished
    repos = [e for e in events if e.workspace == first and e.stage == "repositories"]
    repo_count = len(sim.org.workspaces[first].repositories)
    assert [(e.pages_done, e.pages_expected) for e in repos] == [(1, 2), (2, 2)] and repo_count > 100
    assert not repos[0].finished and repos[1].finished
    # Time left at the budget, at one call a second: the second page and its repositories' users lists (their
    # group grants came in one call for the workspace).
    assert repos[0].eta_seconds == 1 + (repo_count - 100) * 1
    # Calls only grow, pacing was waited for (the burst is 50 calls), and the last event counts every call.
    calls = [e.calls for e in events]
    assert calls == sorted(calls) and events[-1].calls == result.stats["calls"]
    assert events[-1].paced_seconds > 0 and events[-1].rate_limited == 0
    assert "page 1/2" in repos[0].line() and "left" in repos[0].line() and "paced" in repos[0].line()


def test_sync_prints_plain_progress_lines_off_a_terminal_and_dagster_logs_them(make_sim, tmp_path) -> None:
    sim = make_sim()
    db = tmp_path / "w.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITBUCKET_", "DUCKDB_"))}
    env.update(
        {
            "BITBUCKET_API_URL": sim.url,
            "BITBUCKET_EMAIL": sim.email,
            "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
            "BITBUCKET_REQUESTS_PER_HOUR": "36000",
            "DUCKDB_PATH": str(db),
            "DAGSTER_HOME": str(tmp_path),
        }
    )
    exe = str(Path(sys.executable).parent / "bitbucket-access")
    out = subprocess.run([exe, "sync"], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("progress: ")]
    assert lines[0].startswith("progress: tiny-co: members done; ")
    assert any(line.startswith("progress: tiny-co: repositories done; ") for line in lines)
    assert any(line.startswith("progress: tiny-labs: effective done; ") for line in lines)
    assert SIM_API_TOKEN not in out.stdout + out.stderr
    # The same lines went to Dagster's run log (printed on stderr by the in-process run).
    assert all(line.removeprefix("progress: ") in out.stderr for line in lines)
