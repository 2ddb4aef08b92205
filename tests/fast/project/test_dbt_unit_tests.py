"""The dbt unit tests (models/*/_*unit_tests.yml) on an empty warehouse, and small assets called directly.

dbt unit tests replace a model's inputs with fixtures, but dbt reads the inputs' columns from the warehouse:
the inputs are built empty first (`--empty`), from the raw and provisioning tables their assets create.
"""

from __future__ import annotations

import json
import os
import subprocess

import duckdb
from dagster_duckdb import DuckDBResource

from bitbucket_assets.defs.access_requests.assets import provisioning_tables
from bitbucket_assets.defs.raw_snapshot.assets import raw_schema
from bitbucket_assets.defs.upkeep.assets import history_order
from bitbucket_assets.warehouse.files import DBT_PROJECT_DIR, dbt_executable


def test_raw_schema_and_provisioning_tables_create_what_dbt_reads(tmp_path) -> None:
    db = str(tmp_path / "w.duckdb")
    duck = DuckDBResource(database=db)
    created = raw_schema(duckdb=duck)
    assert "sync_checkpoints" in created.metadata["tables"]
    counts = {
        r.asset_key.to_user_string(): r.metadata["dagster/row_count"]
        for r in provisioning_tables(duckdb=duck)
    }
    assert counts == {
        "provisioning/access_requests": 0,
        "provisioning/leavers": 0,
        "provisioning/project_branch_rules": 0,
    }
    # Both are idempotent: a second materialization changes nothing.
    raw_schema(duckdb=duck)
    list(provisioning_tables(duckdb=duck))
    with duckdb.connect(db, read_only=True) as con:
        tables = {
            r[0]
            for r in con.execute("select schema_name || '.' || table_name from duckdb_tables()").fetchall()
        }
    assert {"raw.syncs", "raw.repositories", "provisioning.leavers", "provisioning.access_requests"} <= tables


def test_every_dbt_unit_test_passes(tmp_path) -> None:
    db = str(tmp_path / "w.duckdb")
    duck = DuckDBResource(database=db)
    raw_schema(duckdb=duck)
    list(provisioning_tables(duckdb=duck))
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    tested = sorted({test["model"] for test in manifest["unit_tests"].values()})
    assert tested, "the project has dbt unit tests"
    target = tmp_path / "target"
    command = [dbt_executable(), "build", "--empty", "--write-json", "--profiles-dir", "."]
    command += ["--target-path", str(target)]
    command += ["--select", *[f"+{model}" for model in tested], "--exclude", "test_type:data"]
    env = {**os.environ, "DUCKDB_PATH": db}
    done = subprocess.run(command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    results = json.loads((target / "run_results.json").read_text())["results"]
    unit = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert len(unit) == len(manifest["unit_tests"]) and set(unit.values()) == {"pass"}


def test_history_order_on_a_warehouse_without_history(tmp_path) -> None:
    """Called directly, as the sync job calls it: a warehouse that has no history yet is left as it is."""
    db = str(tmp_path / "w.duckdb")
    result = history_order(duckdb=DuckDBResource(database=db))
    assert result.metadata["history_clustered"] is False and result.metadata["history_rows"] == 0
