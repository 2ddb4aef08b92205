"""The production instance (deploy/dagster.yaml: Postgres run, event and schedule storage, the queued run
coordinator, one DuckDB writer per pool) runs the sync job and the provisioning job end to end against the
simulator, and Postgres holds what happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import psycopg2

from bitbucket_assets.definitions import build_definitions
from bitbucket_assets.provisioning.tables import create_provisioning_tables
from bitbucket_assets.settings import load_settings
from bitbucket_simulator import SIM_API_TOKEN


def test_sync_and_provisioning_jobs_on_the_postgres_instance(
    dagster_home, postgres, make_sim, warehouse_dir
) -> None:
    sim = make_sim()
    db = str(warehouse_dir / "w.duckdb")
    settings = load_settings(
        bitbucket_api_url=sim.url,
        bitbucket_email=sim.email,
        bitbucket_api_token=SIM_API_TOKEN,
        bitbucket_requests_per_hour=1e7,
        duckdb_path=db,
    )
    defs = build_definitions(settings)
    with dg.DagsterInstance.get() as instance:  # from DAGSTER_HOME: the production instance file
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        sync = defs.resolve_job_def("bitbucket_sync").execute_in_process(instance=instance)
        assert sync.success

        finn = sim.user("finn")
        with duckdb.connect(db) as con:
            create_provisioning_tables(con)
            con.execute(
                "insert into provisioning.access_requests (request_id, workspace_slug, group_slug, user_id, "
                "action, requested_by, approved_by, approved_at, reason) values ('pg-1', 'tiny-co', "
                "'leads', ?, 'add', 'ana@tiny.example', 'olga@tiny.example', ?, 'on-call cover')",
                [finn.uuid, datetime.now(UTC) - timedelta(hours=1)],
            )
        provision = defs.resolve_job_def("provision_group_membership").execute_in_process(instance=instance)
        assert provision.success
        assert finn.uuid in sim.org.workspaces["tiny-co"].groups["leads"].members

        records = {r.dagster_run.run_id: r.dagster_run for r in instance.get_run_records()}
        assert {records[sync.run_id].job_name, records[provision.run_id].job_name} == {
            "bitbucket_sync",
            "provision_group_membership",
        }
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in records.values())

    # Read back from Postgres itself, not through Dagster's objects.
    con = psycopg2.connect(postgres.url)
    try:
        cursor = con.cursor()
        cursor.execute("select run_id, status from runs")
        runs = dict(cursor.fetchall())
        events = "select count(*) from event_logs where run_id = %s and dagster_event_type = %s"
        cursor.execute(events, [sync.run_id, "ASSET_MATERIALIZATION"])
        materialized = cursor.fetchone()[0]
        cursor.execute(events, [sync.run_id, "ASSET_CHECK_EVALUATION"])
        checks = cursor.fetchone()[0]
    finally:
        con.close()
    assert runs == {sync.run_id: "SUCCESS", provision.run_id: "SUCCESS"}
    # raw tables, staging, marts; raw checks, dbt tests, reconciliation
    assert materialized >= 20 and checks >= 30
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("select count(*) from marts.fct_effective_access").fetchone()[0] > 100
