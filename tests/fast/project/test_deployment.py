"""The Dagster deployment files: definitions, the schedule and the local instance's concurrency limits."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from bitbucket_assets.definitions import defs
from tests.support import ROOT


def test_schedule_runs_the_whole_sync() -> None:
    schedule = defs.resolve_schedule_def("daily_bitbucket_sync")
    assert schedule.cron_schedule == "0 5 * * *" and schedule.execution_timezone == "UTC"
    assert schedule.job_name == "bitbucket_sync"


def test_every_duckdb_writer_is_in_one_pool() -> None:
    # Every asset with a function writes the file; the provisioning log is written by the provisioning ops.
    pools = {asset.node_def.name: asset.node_def.pool for asset in defs.assets if hasattr(asset, "node_def")}
    assert pools == {
        "raw_schema": "duckdb_writer",
        "refresh_plan_views": "duckdb_writer",
        "bitbucket_raw_snapshot": "duckdb_writer",
        "provisioning_tables": "duckdb_writer",
        "warehouse_models": "duckdb_writer",
        "raw_snapshot_retention": "duckdb_writer",
        "history_order": "duckdb_writer",
        "analyst_read_copy": "duckdb_writer",
    }
    jobs = [defs.resolve_job_def(name) for name in ("provision_group_membership", "expire_jit_access")]
    assert {node.definition.pool for job in jobs for node in job.graph.nodes} == {"duckdb_writer"}


def test_local_instance_allows_one_writer_and_one_run(tmp_path) -> None:
    config = yaml.safe_load((ROOT / "dagster_home" / "dagster.yaml").read_text())
    assert config["concurrency"] == {"pools": {"default_limit": 1}, "runs": {"max_concurrent_runs": 1}}
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "dagster_home" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert not instance.telemetry_enabled  # as in production: nothing about the runs leaves the machine


def test_dagster_finds_the_definitions_from_workspace_yaml() -> None:
    import subprocess
    import sys

    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "Validation successful for code location bitbucket_assets.definitions"
        in result.stderr + result.stdout
    )


def test_production_files_are_consistent() -> None:
    """deploy/ parses, keeps one DuckDB writer, loads our code location and keeps secrets out of the files."""
    instance = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    assert instance["concurrency"]["pools"]["default_limit"] == 1
    assert instance["run_launcher"]["class"] == "K8sRunLauncher"
    assert instance["telemetry"] == {"enabled": False}
    assert instance["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    values = yaml.safe_load((ROOT / "deploy" / "values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "bitbucket_assets.definitions"]
    documented = (ROOT / ".env.example").read_text()
    for entry in deployment["env"]:
        assert entry["name"] in documented, f"{entry['name']} is not in .env.example"
    text = (ROOT / "deploy" / "values.yaml").read_text() + (ROOT / "deploy" / "dagster.yaml").read_text()
    assert "API_TOKEN" not in text and "ATATT" not in text
    # The instance file is one Dagster accepts (checked without reaching Postgres or Kubernetes).
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    assert validate_config(dagster_instance_config_schema(), instance).success
