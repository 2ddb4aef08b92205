"""`sync` and `check` as a user runs them: progress lines, exit statuses, configuration mistakes."""

from __future__ import annotations

import os
import subprocess

import dagster as dg
import duckdb
import pytest

from bitbucket_assets.client import (
    BitbucketClient,
    Credentials,
)
from bitbucket_assets.service_key import UNSIGNED
from bitbucket_simulator import (
    SIM_API_TOKEN,
)
from tests.support import CLI
from tests.support.extraction import interrupt_a_sync, plant_checkpoint
from tests.support.listener import Listener

SECRET = "ATATT3xSettingsTestSecret0001"


def test_sync_prints_plain_progress_lines_off_a_terminal_and_dagster_logs_them(
    make_sim, tmp_path, warehouse_dir
) -> None:
    sim = make_sim()
    db = warehouse_dir / "w.duckdb"
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
    out = subprocess.run([CLI, "sync"], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("progress: ")]
    assert lines[0].startswith("progress: tiny-co: members done; ")
    assert any(line.startswith("progress: tiny-co: repositories done; ") for line in lines)
    assert any(line.startswith("progress: tiny-labs: effective done; ") for line in lines)
    assert SIM_API_TOKEN not in out.stdout + out.stderr
    # The terminal is quiet: Dagster's and dbt's lines went to the run's log file, named at the end, with the
    # same progress lines in Dagster's run log.
    assert out.stderr == "" and " - dagster - " not in out.stdout and "Running with dbt" not in out.stdout
    [log] = (warehouse_dir / "logs").glob("sync-*.log")  # beside the warehouse
    assert out.stdout.splitlines()[-1] == f"  details (Dagster's and dbt's lines): {log}"
    details = log.read_text()
    assert " - dagster - " in details and "Running with dbt" in details and SIM_API_TOKEN not in details
    assert all(line.removeprefix("progress: ") in details for line in lines)
    # DAGSTER_HOME names an instance: the run is recorded there, as the UI shows it, with its
    # materializations.
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        [run] = instance.get_runs()
        assert (run.job_name, run.status) == ("bitbucket_sync", dg.DagsterRunStatus.SUCCESS)
        manifest = instance.get_latest_materialization_event(dg.AssetKey(["raw", "syncs"]))
        assert manifest.run_id == run.run_id and manifest.asset_materialization.metadata["sync_id"].value


def test_a_sync_held_back_exits_3_check_says_why_and_accepting_publishes_it(
    make_sim, warehouse, tmp_path
) -> None:
    """The circuit breaker as a user meets it: exit status 3 (not 0, not 1), nothing published, `check` names
    what vanished, `sync --accept-vanished` publishes the held snapshot without calling Bitbucket. It starts
    from the session's first sync of `tiny` (the `warehouse` copy), the organisation the simulator serves."""
    sim = make_sim()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITBUCKET_", "DUCKDB_", "DAGSTER_"))}
    env.update(
        {
            "BITBUCKET_API_URL": sim.url,
            "BITBUCKET_EMAIL": sim.email,
            "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
            "BITBUCKET_REQUESTS_PER_HOUR": "36000",
            "DUCKDB_PATH": warehouse,
        }
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CLI, *args], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path
        )

    ws = sim.org.workspaces["tiny-co"]
    with sim.simulator.lock:  # a third of the members vanish at once (a proxy, a broken directory sync...)
        for uuid in [u for u in ws.members if sim.org.users[u].nickname.startswith("filler")][:30]:
            del ws.members[uuid]
            for group in ws.groups.values():
                group.members = [m for m in group.members if m != uuid]
        sim.org.touch()
    held = run("sync")
    assert held.returncode == 3, held.stderr[-2000:]
    assert "HELD BACK (suspect)" in held.stdout and "VANISHED in tiny-co: 30 of 100 members" in held.stdout
    assert "bitbucket-access sync --accept-vanished" in held.stdout
    check = run("check")
    assert (
        "was HELD BACK as suspect" in check.stdout and "tiny-co: 30 of 100 members vanished" in check.stdout
    )
    calls = len(sim.simulator.request_log)
    accepted = run("sync", "--accept-vanished")
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    assert "(held back earlier, published as it was read: accepted)" in accepted.stdout
    assert len(sim.simulator.request_log) == calls
    assert "HELD BACK" not in run("check").stdout


def sync_env(sim, db) -> dict[str, str]:
    """The sync command's environment against `sim`, on a throwaway Dagster instance (no DAGSTER_HOME)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITBUCKET_", "DUCKDB_", "DAGSTER_HOME"))}
    return {
        **env,
        "BITBUCKET_API_URL": sim.url,
        "BITBUCKET_EMAIL": sim.email,
        "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
        "BITBUCKET_REQUESTS_PER_HOUR": "36000",
        "DUCKDB_PATH": str(db),
    }


def test_a_resumed_sync_exits_0_and_prints_its_summary(make_sim, tmp_path, warehouse_dir) -> None:
    sim = make_sim()
    db = warehouse_dir / "w.duckdb"
    interrupted = interrupt_a_sync(sim, db)
    done = subprocess.run(
        [CLI, "sync"], capture_output=True, text=True, env=sync_env(sim, db), timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = done.stdout[done.stdout.index(f"sync {interrupted} complete") :].splitlines()
    assert (
        summary[0]
        == f"sync {interrupted} complete (resumed from its checkpoints): workspaces tiny-co, tiny-labs"
    )
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select sync_id, status, resumes from raw.syncs").fetchall() == [
            (interrupted, "complete", 1)
        ]
        grants = con.execute("select count(*) from marts.fct_grants").fetchone()[0]
    assert f"  marts/fct_grants: {grants} rows" in summary and grants > 0
    checks = [line for line in summary if line.startswith("  checks: ")]
    assert len(checks) == 1 and "FAILED" not in checks[0]
    assert summary[-1].startswith("  details (Dagster's and dbt's lines): ")


def test_sync_refuses_a_checkpoint_rewritten_to_another_host_and_sends_it_nothing(make_sim, tmp_path) -> None:
    sim = make_sim()
    db = tmp_path / "w.duckdb"
    interrupted = interrupt_a_sync(sim, db)
    with Listener() as elsewhere:
        plant_checkpoint(db, interrupted, elsewhere.url + "/2.0/repositories/tiny-labs?page=2")
        before = len(sim.simulator.request_log)
        done = subprocess.run(
            [CLI, "sync"], capture_output=True, text=True, env=sync_env(sim, db), timeout=600, cwd=tmp_path
        )
    assert elsewhere.received == []
    # Bitbucket itself hears only the command's preflight (the credential and the workspaces), nothing of the
    # planted page.
    assert [r.path for r in sim.simulator.request_log[before:]] == ["/2.0/user/workspaces"]
    assert done.returncode == 1
    assert (
        f"the checkpoint of sync {interrupted} (workspace tiny-labs, stage repositories) points to "
        f"http://127.0.0.1:{elsewhere.port}, not to the configured origin {sim.url}: refused" in done.stderr
    )
    assert SIM_API_TOKEN not in done.stdout + done.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select status from raw.syncs").fetchall() == [("failed",)]


def test_check_command_exit_status(make_sim, clean_env) -> None:
    sim = make_sim()
    env = {
        **os.environ,
        "BITBUCKET_API_URL": sim.url,
        "BITBUCKET_EMAIL": sim.email,
        "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
    }
    ok = subprocess.run([CLI, "check"], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0
    assert "verdict: ready to sync; ready to provision in tiny-co, not in tiny-labs (see above)" in ok.stdout
    assert f"signing: {UNSIGNED}" in ok.stdout.splitlines()  # no BITBUCKET_SIGNING_KEY: says what that means
    bad = subprocess.run(
        [CLI, "check"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "BITBUCKET_API_TOKEN": "ATATT3xWrongToken"},
    )
    assert bad.returncode == 1 and "authentication failed" in bad.stdout
    assert "ATATT3xWrongToken" not in bad.stdout + bad.stderr


def test_a_bad_value_is_a_clear_error_naming_the_variable(clean_env, tmp_path) -> None:
    env = {**os.environ, "BITBUCKET_REQUESTS_PER_HOUR": "lots", "DUCKDB_PATH": str(tmp_path / "w.duckdb")}
    result = subprocess.run([CLI, "check"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert "BITBUCKET_REQUESTS_PER_HOUR" in result.stderr and "Traceback" not in result.stderr
    assert "lots" not in result.stderr  # the value is never echoed: it could be a secret


def test_credentials_in_the_api_url_are_refused_and_never_echoed(tmp_path) -> None:
    secret_url = f"https://svc:{SECRET}@api.bitbucket.org"
    env = {**os.environ, "BITBUCKET_API_URL": secret_url, "DUCKDB_PATH": str(tmp_path / "w.duckdb")}
    for command in (["check"], ["sync"]):
        result = subprocess.run([CLI, *command], capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 1 and "BITBUCKET_API_URL must not contain credentials" in result.stderr
        assert SECRET not in result.stdout + result.stderr

    with pytest.raises(ValueError, match="must not contain credentials") as excinfo:
        BitbucketClient(Credentials.api_token("a@b.example", "t"), secret_url)
    assert SECRET not in str(excinfo.value)
