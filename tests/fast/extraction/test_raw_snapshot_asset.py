"""The raw snapshot as a Dagster asset: materialization, metadata, checks, and no secret in the event log."""

from __future__ import annotations

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from bitbucket_assets.defs.raw_snapshot.assets import bitbucket_raw_snapshot
from bitbucket_assets.defs.resources import BitbucketResource
from bitbucket_simulator import SIM_API_TOKEN, SIM_ORG_API_KEY, SIM_ORG_ID


def test_materialize_against_the_simulator(make_sim, tmp_path, capsys) -> None:
    sim = make_sim()
    instance = dg.DagsterInstance.ephemeral()
    resources = {
        "bitbucket": BitbucketResource(
            api_url=sim.url,
            email=sim.email,
            api_token=SIM_API_TOKEN,
            requests_per_hour=1e7,
            admin_api_url=sim.url,
            admin_org_id=SIM_ORG_ID,
            admin_api_key=SIM_ORG_API_KEY,
        ),
        "duckdb": DuckDBResource(database=str(tmp_path / "w.duckdb")),
    }
    result = dg.materialize([bitbucket_raw_snapshot], resources=resources, instance=instance)
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "permissions_fetched": True,
        "permission_lists_fresh": True,
        "memberships_point_at_known_users": True,
        "no_unexpected_empty_entity": True,
        "no_entries_skipped": True,
        "nothing_vanished": True,
    }
    meta = {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }
    assert meta["raw/repositories"]["dagster/row_count"] == 6
    assert meta["raw/syncs"]["sync_id"] == result.run_id
    assert meta["raw/syncs"]["api_calls"] == len(sim.simulator.request_log)
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status FROM raw.syncs WHERE sync_id = ?", [result.run_id]).fetchone() == (
            "complete",
        )
    assert meta["raw/syncs"]["group_sources"] == {
        "tiny-co": "bitbucket-1.0",
        "tiny-labs": "atlassian-admin-api",
    }
    # Neither secret appears anywhere Dagster records or prints; the run's log shows the sync's progress.
    records = instance.all_logs(result.run_id)
    printed = capsys.readouterr().err
    assert records and not any(
        secret in str(r) for r in records for secret in (SIM_API_TOKEN, SIM_ORG_API_KEY)
    )
    assert SIM_API_TOKEN not in printed and SIM_ORG_API_KEY not in printed
    messages = [r.user_message for r in records]
    assert any(m.startswith("tiny-co: repositories done; ") for m in messages)
    assert any(m.startswith("tiny-labs: members done; ") for m in messages)


def test_a_suspect_snapshot_fails_the_run_at_a_blocking_check_and_the_flag_publishes_it(make_sim, tmp_path):
    """Over the breaker's limit the run fails at `nothing_vanished` (blocking, ERROR) with the snapshot held
    back; the next run with `accept_vanished` publishes that snapshot as it was read, without a call."""
    sim = make_sim()
    resources = {
        "bitbucket": BitbucketResource(
            api_url=sim.url, email=sim.email, api_token=SIM_API_TOKEN, requests_per_hour=1e7
        ),
        "duckdb": DuckDBResource(database=str(tmp_path / "w.duckdb")),
    }

    instance = dg.DagsterInstance.ephemeral()

    def run(**config) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [bitbucket_raw_snapshot],
            resources=resources,
            instance=instance,
            run_config={"ops": {"bitbucket_raw_snapshot": {"config": config}}},
            raise_on_error=False,
        )

    assert run().success
    ws = sim.org.workspaces["tiny-co"]
    fillers = [u for u in ws.members if sim.org.users[u].nickname.startswith("filler")][:30]
    with sim.simulator.lock:
        for uuid in fillers:  # 30 of 100 members leave at once: over a fifth
            del ws.members[uuid]
            for group in ws.groups.values():
                if uuid in group.members:
                    group.members.remove(uuid)
        sim.org.touch()
    held = run()
    assert not held.success
    [check] = [c for c in held.get_asset_check_evaluations() if c.check_name == "nothing_vanished"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["vanished"].value[0].startswith("tiny-co: 30 of 100 members vanished (30%) since")
    failure = next(e for e in held.all_events if e.is_step_failure)
    assert "blocking asset check" in failure.step_failure_data.error.message
    # Not retried by the deployment's run retries: a retry would only hold the same change back again.
    assert instance.get_run_by_id(held.run_id).tags["dagster/retry_on_asset_or_op_failure"] == "false"
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("SELECT status FROM raw.syncs ORDER BY started_at").fetchall() == [
            ("complete",),
            ("suspect",),
        ]
    calls = len(sim.simulator.request_log)
    accepted = run(accept_vanished=True)
    assert accepted.success and len(sim.simulator.request_log) == calls  # published as read: no call
    meta = {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in accepted.get_asset_materialization_events()
    }
    assert meta["raw/syncs"]["sync_id"] == held.run_id and meta["raw/syncs"]["held_published"]
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute(
            "SELECT status, vanished_accepted FROM raw.syncs WHERE sync_id = ?", [held.run_id]
        ).fetchone() == ("complete", True)
