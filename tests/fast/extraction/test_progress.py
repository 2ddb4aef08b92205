"""Progress of a sync: an event per checkpoint with pages done of expected, calls, 429s, pacing and time left;
plain lines from `sync` off a terminal, and the same lines in Dagster's run log."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.client.client import endpoint_family
from bitbucket_assets.clock import SimulatedClock
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.progress import ProgressEvent, stage_of
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
    # Each stage counts its own calls (two pages, the workspace's group grants in one call, a users list per
    # repository), not the sync's running total.
    assert repos[-1].stage_calls == 2 + 1 + repo_count and repos[-1].stage_calls < repos[-1].calls
    members = next(e for e in events if e.workspace == first and e.stage == "members")
    assert 0 < members.stage_calls < 10


def test_a_resumed_sync_is_announced_with_when_it_began_and_where_it_continues(tmp_path) -> None:
    import io
    import logging

    from bitbucket_assets.extraction.progress import EVENTS
    from bitbucket_assets.extraction.raw_schema import create_raw_schema
    from bitbucket_assets.extraction.snapshot import SnapshotWriter
    from bitbucket_assets.progress_display import sync_progress

    clock = SimulatedClock(datetime(2026, 11, 1, 9, 30, tzinfo=UTC))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        create_raw_schema(con)
        first = SnapshotWriter(con, "s1", clock=clock)
        first.begin("https://api.bitbucket.org", "api_token", {"workspaces": None})
        first.checkpoint("acme", "members", None)
        first.checkpoint("acme", "repositories", "https://api.bitbucket.org/2.0/repositories/acme?page=3")
        again = SnapshotWriter(con, "s2", clock=clock)
        again.begin("https://api.bitbucket.org", "api_token", {"workspaces": None})
        assert again.resumed and again.sync_id == "s1"
        assert again.resume_description() == (
            "s1 (started 2026-11-01 09:30 UTC) from its checkpoints: acme: members, repositories (part read)"
        )
        # What run_sync announces, shown by the display above the progress lines.
        stream = io.StringIO()
        with sync_progress(stream):
            EVENTS.info("resuming sync %s", again.resume_description())
            logging.getLogger("bitbucket_assets.client.client").warning(
                "cannot reach x; retry 1 of 6 in 0.5 s"
            )
        assert stream.getvalue().splitlines() == [
            "resuming sync s1 (started 2026-11-01 09:30 UTC) from its checkpoints: acme: members, "
            "repositories (part read)",
            "retrying: cannot reach x; retry 1 of 6 in 0.5 s",
        ]


def test_the_live_display_leaves_stdout_and_stderr_to_the_run_log() -> None:
    """On a terminal the live display draws on its own stream; Python's stdout and stderr (Dagster's console
    lines, a trace) stay where the command sent them (the run's log file), not brought to the terminal."""
    import os
    import pty
    import sys

    from bitbucket_assets.progress_display import sync_progress

    leader, follower = pty.openpty()
    before = sys.stdout, sys.stderr
    with os.fdopen(follower, "w") as terminal:
        assert terminal.isatty()
        with sync_progress(terminal):
            assert (sys.stdout, sys.stderr) == before
    os.close(leader)


def test_each_endpoint_family_belongs_to_its_stage() -> None:
    """Per-stage call counts: change control's reads, under repositories and projects, count as its own."""
    stages = {
        path: stage_of(endpoint_family(path))
        for path in (
            "/2.0/repositories/acme/{r1}/branch-restrictions",
            "/2.0/repositories/acme/{r1}/effective-branching-model",
            "/2.0/repositories/acme/{r1}/override-settings",
            "/2.0/repositories/acme/{r1}/deploy-keys",
            "/2.0/workspaces/acme/projects/PRJ/deploy-keys",
            "/2.0/repositories/acme/{r1}/permissions-config/users",
            "/2.0/workspaces/acme/projects/PRJ/permissions-config/groups",
            "/2.0/workspaces/acme/permissions/repositories",
            "/2.0/workspaces/acme/members",
        )
    }
    assert list(stages.values()) == ["change_control"] * 5 + [
        "repositories",
        "projects",
        "effective",
        "members",
    ]
