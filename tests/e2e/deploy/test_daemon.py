"""`dagster-daemon` does the scheduling on the production instance (Postgres storage, queued runs, one DuckDB
writer per pool), with the cron settings shortened to every minute:

- the daily sync schedule launches a run that succeeds;
- the sensor launches provisioning when an approved request waits, and skips its other ticks;
- the expiry schedule removes a just-in-time membership once it has expired;
- writer steps of different runs never overlap (the `duckdb_writer` pool).

Everything is asserted from the instance's own records (runs, ticks, step events), never from timings; cron
ticks once a minute, so the waits are generous.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import psycopg2
import pytest

from bitbucket_assets.provisioning.tables import create_provisioning_tables
from bitbucket_assets.warehouse.files import open_reader, open_writer
from tests.support import wait_for

from .conftest import dagster_cli, pipeline_env, running_daemon

WRITER_STEPS = {
    "raw_schema",
    "refresh_plan_views",
    "provisioning_tables",
    "bitbucket_raw_snapshot",
    "warehouse_models",
    "raw_snapshot_retention",
    "history_order",
    "analyst_read_copy",
    "apply_approved_requests",
    "expire_just_in_time_access",
}


def pg_rows(postgres, sql: str, params=()) -> list[tuple]:
    con = psycopg2.connect(postgres.url)
    try:
        cursor = con.cursor()
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        con.close()


@pytest.mark.timeout(900)
def test_daemon_fires_the_schedules_and_the_sensor(
    dagster_home, postgres, make_sim, tmp_path, warehouse_dir
) -> None:
    sim = make_sim()
    db = warehouse_dir / "w.duckdb"
    finn = sim.user("finn")
    leads = sim.org.workspaces["tiny-co"].groups["leads"].members
    # An approved just-in-time request waits before the daemon starts. It is made to expire only once applied,
    # so that how fast this machine applies it cannot decide the outcome.
    expires_at = datetime.now(UTC) + timedelta(days=1)
    with duckdb.connect(str(db)) as con:
        create_provisioning_tables(con)
        con.execute(
            "insert into provisioning.access_requests (request_id, workspace_slug, group_slug, user_id, "
            "action, requested_by, approved_by, approved_at, expires_at, reason) values ('jit-1', "
            "'tiny-co', 'leads', ?, 'add', 'ana@tiny.example', 'olga@tiny.example', ?, ?, 'incident cover')",
            [finn.uuid, datetime.now(UTC) - timedelta(minutes=5), expires_at],
        )
    env = pipeline_env(sim, db, BITBUCKET_SYNC_CRON="* * * * *", BITBUCKET_JIT_EXPIRY_CRON="* * * * *")
    dagster_cli(env, "schedule", "start", "daily_bitbucket_sync")
    dagster_cli(env, "schedule", "start", "jit_expiry_every_15_minutes")
    dagster_cli(env, "sensor", "start", "approved_requests_sensor")
    with running_daemon(env, tmp_path / "daemon.log"):
        with dg.DagsterInstance.get() as instance:

            def runs(tag: str, value: str) -> list[dg.DagsterRun]:
                return [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(tags={tag: value}))]

            def finished(tag: str, value: str) -> list[dg.DagsterRun]:
                return [r for r in runs(tag, value) if r.is_finished]

            provisioned = wait_for(
                "the sensor's provisioning run",
                lambda: finished("dagster/sensor_name", "approved_requests_sensor"),
            )
            assert finn.uuid in leads  # applied
            with open_writer(str(db)) as con:  # waits while a run the daemon launched holds the file
                con.execute(
                    "update provisioning.access_requests set expires_at = now() - interval 1 second "
                    "where request_id = 'jit-1'"
                )
            # One scheduled sync is what this test asks for; the schedule ticks every minute, and each more
            # sync costs seconds of CPU (the suite's time): the schedule stops once it has launched one, as
            # `dagster schedule stop` stops it.
            wait_for(
                "a scheduled sync's launch", lambda: runs("dagster/schedule_name", "daily_bitbucket_sync")
            )
            [schedule] = [
                state
                for state in instance.all_instigator_state()
                if state.instigator_name == "daily_bitbucket_sync"
            ]
            instance.stop_schedule(schedule.instigator_origin_id, schedule.selector_id)
            synced = wait_for(
                "a scheduled sync", lambda: finished("dagster/schedule_name", "daily_bitbucket_sync")
            )
            wait_for(
                "the expiry",
                lambda: (
                    finn.uuid not in leads
                    and finished("dagster/schedule_name", "jit_expiry_every_15_minutes")
                ),
            )
            # Another sensor evaluation after the request was applied: nothing waits, so it skips.
            wait_for(
                "a skipped sensor tick",
                lambda: (
                    ("SKIPPED",) in pg_rows(postgres, "select status from job_ticks where type = 'SENSOR'")
                ),
            )

            assert [r.status for r in provisioned] == [dg.DagsterRunStatus.SUCCESS]
            assert synced[0].status == dg.DagsterRunStatus.SUCCESS and synced[0].job_name == "bitbucket_sync"
            expiries = finished("dagster/schedule_name", "jit_expiry_every_15_minutes")
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in expiries)
            assert len(runs("dagster/sensor_name", "approved_requests_sensor")) == 1  # not again once applied

            # One writer at a time: the writer steps of every run, from their start and end events, never
            # overlap.
            spans = []
            for run in instance.get_runs():
                starts, ends = {}, {}
                for entry in instance.all_logs(run.run_id):
                    event = entry.dagster_event
                    if event is None or event.step_key not in WRITER_STEPS:
                        continue
                    if event.event_type_value == "STEP_START":
                        starts[event.step_key] = entry.timestamp
                    elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                        ends[event.step_key] = entry.timestamp
                spans += [(starts[k], ends[k], f"{run.job_name}:{k}") for k in starts if k in ends]
            spans.sort()
            assert len(spans) >= 6
            overlaps = [(a[2], b[2]) for a, b in itertools.pairwise(spans) if b[0] < a[1]]
            assert overlaps == []
        with open_reader(str(db)) as con:  # a run the daemon launched may hold the file: wait for it
            outcomes = con.execute(
                "select action, outcome from provisioning.provisioning_log where request_id = 'jit-1' "
                "and not dry_run order by seq"
            ).fetchall()
        assert ("add", "applied") in outcomes and ("expire", "expired") in outcomes
