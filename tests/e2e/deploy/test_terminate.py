"""A run terminated from the instance (as the UI's Terminate does) ends within seconds, even while the sync is
paced for many minutes, and leaves its checkpoints: the next run resumes them instead of starting over."""

from __future__ import annotations

import dagster as dg
import pytest

from bitbucket_assets.definitions import build_definitions
from bitbucket_assets.settings import load_settings
from bitbucket_assets.warehouse.files import open_reader
from bitbucket_simulator import SIM_API_TOKEN
from tests.support import wait_for

from .conftest import dagster_cli, pipeline_env, running_daemon


@pytest.mark.timeout(900)
def test_terminating_a_paced_sync_stops_it_and_the_next_run_resumes(
    dagster_home, make_sim, tmp_path, warehouse_dir
) -> None:
    sim = make_sim()
    db = warehouse_dir / "w.duckdb"
    # 120 calls an hour per bucket: a burst of 6, then one call every 30 s; this sync would take over 15
    # minutes.
    env = pipeline_env(sim, db, BITBUCKET_REQUESTS_PER_HOUR="120")
    log = sim.simulator.request_log
    with running_daemon(env, tmp_path / "daemon.log"), dg.DagsterInstance.get() as instance:
        dagster_cli(env, "job", "launch", "-j", "bitbucket_sync")
        run = wait_for("the launched run to start", lambda: instance.get_runs())[0]
        # The burst is spent (members and groups committed as a checkpoint): the step now waits on its pacing.
        wait_for("the sync to be paced", lambda: len(log) >= 7, timeout=300)
        instance.run_coordinator.cancel_run(run.run_id)  # what the UI's Terminate calls
        stopped = wait_for(
            "the terminated run to end",
            lambda: (r := instance.get_run_by_id(run.run_id)).is_finished and r,
            timeout=240,
        )
        assert stopped.status == dg.DagsterRunStatus.CANCELED
        # It ended long before its pacing would have let it finish: a handful of calls, not the ~40 it needs.
        assert len(log) < 15
        with open_reader(str(db)) as con:
            status, error = con.execute("select status, error from raw.syncs").fetchone()
            done = con.execute("select workspace_slug, stage from raw.sync_checkpoints where done").fetchall()
        assert status == "interrupted" and "Interrupted" in error
        assert ("tiny-co", "members") in done

        # The next run (paced for a test this time) resumes the same sync from its checkpoints: the raw
        # snapshot's step, as "Materialize selected" runs it (the dbt build after it is not about resuming).
        before = len(log)
        fast = load_settings(
            bitbucket_api_url=sim.url,
            bitbucket_email=sim.email,
            bitbucket_api_token=SIM_API_TOKEN,
            bitbucket_requests_per_hour=1e7,
            duckdb_path=str(db),
        )
        definitions = build_definitions(fast)
        raw = definitions.resolve_assets_def(dg.AssetKey(["raw", "syncs"])).keys  # the step, all its tables
        job = definitions.resolve_job_def("bitbucket_sync")
        assert job.execute_in_process(instance=instance, asset_selection=list(raw)).success
    resumed = [r.path for r in log[before:]]
    # the committed checkpoint is not fetched again
    assert "/2.0/workspaces/tiny-co/permissions" not in resumed
    with open_reader(str(db)) as con:
        assert con.execute("select status, resumes from raw.syncs").fetchall() == [("complete", 1)]
