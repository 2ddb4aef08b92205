"""Every failure a user can cause, as the user sees it: one line saying what was wrong and what to do, exit
status 1, no trace and no Dagster or dbt lines on the terminal (they are in the run's log file; `--verbose`
shows them)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

from bitbucket_simulator import SIM_API_TOKEN
from tests.support import CLI

WRONG_TOKEN = "ATATT3xWrongTokenForTheErrorLine"


def environment(tmp_path: Path, url: str, email: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BITBUCKET_", "DUCKDB_", "DAGSTER_"))}
    env.update(
        {
            "BITBUCKET_API_URL": url,
            "BITBUCKET_EMAIL": email,
            "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
            "BITBUCKET_REQUESTS_PER_HOUR": "36000",
            "DUCKDB_PATH": str(tmp_path / "w.duckdb"),
            **extra,
        }
    )
    return env


def run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The command failed with exit status 1 and said so in exactly one line, without a trace or a class
    path."""
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything and "bitbucket_assets." not in everything
    assert " - dagster - " not in everything and "Running with dbt" not in everything
    return errors[0]


def test_a_wrong_token_is_one_line_and_the_details_are_in_the_log(make_sim, tmp_path) -> None:
    sim = make_sim()
    env = environment(tmp_path, sim.url, sim.email, BITBUCKET_API_TOKEN=WRONG_TOKEN)
    line = one_error_line(run(env, "sync", cwd=tmp_path))
    assert line.startswith("Error: authentication failed (HTTP 401)")
    assert "check the credential" in line and WRONG_TOKEN not in line
    log = Path(re.search(r"\(details: (.+\.log)\)$", line).group(1))
    assert log.parent == tmp_path / "logs" and "AuthenticationError" in log.read_text()
    assert WRONG_TOKEN not in log.read_text()
    assert sim.simulator.request_log[-1].path == "/2.0/user/workspaces"  # found before any other work

    verbose = run(env, "sync", "--verbose", cwd=tmp_path)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr and WRONG_TOKEN not in verbose.stderr


def test_a_refused_connection_names_the_host_and_says_what_each_retry_waits_for(tmp_path) -> None:
    with socket.socket() as closed:  # bound, never listening: every connection is refused
        closed.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{closed.getsockname()[1]}"
        env = environment(tmp_path, f"http://{host}", "a@b.example")
        for command in ("sync", "check"):
            result = run(env, command, cwd=tmp_path)
            shown = (result.stdout + result.stderr).splitlines()  # among the progress lines, or first
            retries = [line for line in shown if line.startswith("retrying: ")]
            assert len(retries) == 2 and all(f"cannot reach {host}: connection refused" in r for r in retries)
            assert re.search(r"; retry 1 of 2 in \d+\.\d s$", retries[0])
            if command == "sync":
                line = one_error_line(result)
                assert line.startswith(f"Error: cannot reach {host}: connection refused")
                assert f"BITBUCKET_API_URL: http://{host}" in line
            else:
                assert f"problem: cannot reach {host}: connection refused" in result.stdout
                assert "verdict: NOT ready to sync" in result.stdout and result.returncode == 1


def test_an_unwritable_warehouse_path_is_found_before_any_work_by_sync_and_check(make_sim, tmp_path) -> None:
    sim = make_sim()
    (tmp_path / "a-file").write_text("")
    target = tmp_path / "a-file" / "w.duckdb"  # a directory that cannot exist, even for root
    env = environment(tmp_path, sim.url, sim.email, DUCKDB_PATH=str(target))
    line = one_error_line(run(env, "sync", cwd=tmp_path))
    assert line.startswith(f"Error: DUCKDB_PATH {target} cannot be written")
    assert "set DUCKDB_PATH to a file in a directory this user can write" in line
    assert sim.simulator.request_log == []  # nothing was asked of Bitbucket

    check = run(env, "check", cwd=tmp_path)
    assert check.returncode == 1 and f"problem: DUCKDB_PATH {target} cannot be written" in check.stdout
    assert "verdict: NOT ready to sync" in check.stdout


def test_an_unknown_workspace_is_refused_by_sync_and_check(make_sim, tmp_path) -> None:
    sim = make_sim()
    env = environment(tmp_path, sim.url, sim.email, BITBUCKET_WORKSPACES="tiny-co,nowhere")
    line = one_error_line(run(env, "sync", cwd=tmp_path))
    assert "BITBUCKET_WORKSPACES names nowhere, which this credential cannot see" in line
    assert "correct BITBUCKET_WORKSPACES, or leave it unset" in line
    assert not (tmp_path / "w.duckdb").exists()  # refused before the warehouse was touched

    check = run(env, "check", cwd=tmp_path)
    assert check.returncode == 1 and "verdict: NOT ready to sync" in check.stdout
    assert "problem: BITBUCKET_WORKSPACES names nowhere" in check.stdout


def test_a_missing_warehouse_is_named_not_taken_for_a_locked_one(tmp_path) -> None:
    env = environment(tmp_path, "http://127.0.0.1:9", "a@b.example")
    (tmp_path / "pack").mkdir()
    verify = run(env, "evidence", "verify", str(tmp_path / "pack"), cwd=tmp_path)
    line = one_error_line(verify)
    assert line.startswith(f"Error: there is no warehouse at {tmp_path / 'w.duckdb'}")
    assert "run `bitbucket-access sync` first" in line and "locked" not in line
    pack = run(env, "evidence", "--from", "2026-01-01", "--to", "2026-01-31", "--out", "p2", cwd=tmp_path)
    assert "there is no warehouse at" in one_error_line(pack)


def test_version_and_help_are_whole() -> None:
    version = subprocess.run([CLI, "--version"], capture_output=True, text=True, timeout=60)
    assert re.fullmatch(r"bitbucket-access, version \d+\.\d+\.\d+\S*\n", version.stdout)
    env = {**os.environ, "COLUMNS": "80"}
    for args in ([], ["review"], ["evidence"], ["requests"]):
        shown = subprocess.run([CLI, *args, "--help"], capture_output=True, text=True, timeout=60, env=env)
        commands = shown.stdout.split("Commands:")[1].splitlines()
        assert commands and not [line for line in commands if line.rstrip().endswith("...")], shown.stdout
    assert "--verbose" in subprocess.run([CLI, "sync", "--help"], capture_output=True, text=True).stdout


def test_check_says_a_warehouse_file_that_is_not_a_database_would_fail_a_sync(make_sim, tmp_path) -> None:
    sim = make_sim()
    (tmp_path / "w.duckdb").write_bytes(b"not a database" * 500)
    check = run(environment(tmp_path, sim.url, sim.email), "check", cwd=tmp_path)
    assert check.returncode == 1 and "verdict: NOT ready to sync" in check.stdout
    assert f"problem: cannot open the warehouse {tmp_path / 'w.duckdb'}: " in check.stdout
    assert "not a valid DuckDB database" in check.stdout and "Traceback" not in check.stderr
