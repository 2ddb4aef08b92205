"""`sync` and `check` as a user runs them: progress lines, exit statuses, configuration mistakes."""

from __future__ import annotations

import os
import subprocess

import dagster as dg
import pytest

from bitbucket_assets.client import (
    BitbucketClient,
    Credentials,
)
from bitbucket_simulator import (
    SIM_API_TOKEN,
)
from tests.support import CLI

SECRET = "ATATT3xSettingsTestSecret0001"


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
    [log] = (tmp_path / "logs").glob("sync-*.log")
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


def test_a_sync_held_back_exits_3_check_says_why_and_accepting_publishes_it(make_sim, tmp_path) -> None:
    """The circuit breaker as a user meets it: exit status 3 (not 0, not 1), nothing published, `check` names
    what vanished, `sync --accept-vanished` publishes the held snapshot without calling Bitbucket."""
    sim = make_sim()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITBUCKET_", "DUCKDB_", "DAGSTER_"))}
    env.update(
        {
            "BITBUCKET_API_URL": sim.url,
            "BITBUCKET_EMAIL": sim.email,
            "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
            "BITBUCKET_REQUESTS_PER_HOUR": "36000",
            "DUCKDB_PATH": str(tmp_path / "w.duckdb"),
        }
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [CLI, *args], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path
        )

    assert run("sync").returncode == 0
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


def test_check_command_exit_status(make_sim) -> None:
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
