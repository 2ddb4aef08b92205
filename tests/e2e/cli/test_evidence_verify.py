"""An evidence pack an auditor can check: its manifest names the parameters, the syncs drawn on (with their
reconciliation result) and, per CSV, the SQL, rows and SHA-256; the warehouse records its digests; and
`evidence verify` passes on a fresh pack and fails, naming the file, after one byte changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import duckdb

from bitbucket_assets import services
from bitbucket_assets.settings import load_settings
from tests.support import CLI
from tests.support.warehouses import History


def cli(db: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DUCKDB_PATH": db}
    return subprocess.run([CLI, "evidence", *args], capture_output=True, text=True, timeout=300, env=env)


def test_pack_manifest_record_and_verify(tiny_history: History, tmp_path) -> None:
    db = str(tmp_path / "copy.duckdb")
    shutil.copy(tiny_history.db, db)
    settings = load_settings(duckdb_path=db)
    end = datetime.now(UTC)
    pack = services.evidence(settings, end - timedelta(days=1), end, str(tmp_path / "pack"))

    manifest = json.loads((pack.directory / "manifest.json").read_text())
    assert manifest["parameters"]["to"] == end.isoformat()
    # all three days lie in the period
    assert [s["sync_id"] for s in manifest["syncs"]] == tiny_history.sync_ids
    assert all(s["reconciled"] is True and s["compared_rows"] > 100 for s in manifest["syncs"])
    assert all(s["api_calls"] and s["entity_counts"]["users"] == 103 for s in manifest["syncs"])
    population = manifest["files"]["population.csv"]
    assert "marts.effective_access_as_of" in population["sql"] and population["rows"] > 200
    html = pack.report.read_text()
    assert population["sha256"] in html and tiny_history.sync_ids[0] in html and "agreed on" in html
    with duckdb.connect(db, read_only=True) as con:
        recorded = con.execute(
            "select manifest_sha256, files->>'population.csv' from reporting.evidence_packs"
        )
        assert recorded.fetchall()[0][1] == population["sha256"]

    fresh = cli(db, "verify", str(pack.directory))
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "is intact" in fresh.stdout and "ok: population.csv" in fresh.stdout

    # One byte of one CSV changes.
    target = pack.directory / "risks.csv"
    data = bytearray(target.read_bytes())
    data[-3] = ord("X") if data[-3] != ord("X") else ord("Y")
    target.write_bytes(bytes(data))
    altered = cli(db, "verify", str(pack.directory))
    assert altered.returncode == 1
    assert "ALTERED: risks.csv: altered" in altered.stdout and "population.csv: altered" not in altered.stdout


def test_a_rewritten_manifest_or_report_does_not_pass(tiny_history: History, tmp_path) -> None:
    db = str(tmp_path / "copy.duckdb")
    shutil.copy(tiny_history.db, db)
    end = datetime.now(UTC)
    pack = services.evidence(
        load_settings(duckdb_path=db), end - timedelta(days=1), end, str(tmp_path / "pack")
    )
    # Someone edits a CSV and rewrites the manifest to match: the warehouse's record catches the manifest.
    target = pack.directory / "changes.csv"
    target.write_text(target.read_text() + "2026-01-01,forged\n")
    manifest = json.loads((pack.directory / "manifest.json").read_text())
    from bitbucket_assets.reporting.pack_integrity import csv_rows, sha256_of

    manifest["files"]["changes.csv"] |= {"sha256": sha256_of(target), "rows": csv_rows(target)}
    (pack.directory / "manifest.json").write_text(json.dumps(manifest))
    result = services.verify_evidence(load_settings(duckdb_path=db), str(pack.directory))
    assert not result.intact and any(p.startswith("manifest.json: altered") for p in result.problems)
    assert "changes.csv" in result.checked  # consistent with the forged manifest, and still caught above
