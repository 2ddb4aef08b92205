"""Benchmark: what publishing the provisioning copy costs on `large`, against the full read copy.

A day of `large` is written straight from the simulator's model (as bench/history_benchmark.py does) and
built with dbt; the provisioning schema is given a year of provisioning (requests and log rows, `--log`) and
then a review campaign of the whole population (one item per user and resource, every item of the
organisation: the largest the schema gets). Each publication is timed `--runs` times (median): the read copy
(`publish_read_copy`: checkpoint, copy of the whole file, rename, plus the provisioning copy) and the
provisioning copy alone (`publish_provisioning_copy`), with the sizes of both files; then again with a tenth
of the campaign decided. Run:
`.venv/bin/python bench/provisioning_copy_benchmark.py [--log 20000] [--runs 3]` (about 10 minutes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine  # noqa: E402
from history_benchmark import DBT, ListReads, dbt_build, write_snapshot  # noqa: E402

from bitbucket_assets.provisioning.tables import create_provisioning_tables  # noqa: E402
from bitbucket_assets.reporting.review import new_campaign, register_campaign  # noqa: E402
from bitbucket_assets.warehouse.files import publish_read_copy, read_copy_path  # noqa: E402
from bitbucket_assets.warehouse.provisioning_copy import (  # noqa: E402
    provisioning_copy_path,
    publish_provisioning_copy,
)
from bitbucket_simulator import load_organisation  # noqa: E402


def timed(call, runs: int) -> float:
    taken = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        taken.append(time.perf_counter() - started)
    return statistics.median(taken)


def provisioning_year(db: str, rows: int) -> None:
    """`rows` approved requests and one applied log row each (no hash chain: its cost is the insert's)."""
    now = datetime.now(UTC)
    requests = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(rows)],
            "workspace_slug": ["acme"] * rows,
            "group_slug": [f"group-{i % 300}" for i in range(rows)],
            "user_id": [f"{{user-{i % 5000}}}" for i in range(rows)],
            "action": ["add" if i % 3 else "remove" for i in range(rows)],
            "requested_by": ["manager@acme.example"] * rows,
            "approved_by": ["approver@acme.example"] * rows,
            "approved_at": [now - timedelta(minutes=i) for i in range(rows)],
            "status": ["applied"] * rows,
        }
    )
    with duckdb.connect(db) as con:
        create_provisioning_tables(con)
        columns = ", ".join(requests.columns)
        con.execute(f"insert into provisioning.access_requests ({columns}) select * from requests")
        con.execute(
            "insert into provisioning.provisioning_log (log_id, request_id, workspace_slug, group_slug, "
            "user_uuid, action, outcome, http_status, requested_by, approved_by, attempted_at, run_id, seq) "
            "select 'l' || request_id, request_id, workspace_slug, group_slug, user_id, action, 'applied', "
            "204, requested_by, approved_by, approved_at, 'bench', row_number() over () "
            "from provisioning.access_requests"
        )
        con.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", type=int, default=20000, help="requests and log rows (a year of them)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    tmp = tempfile.mkdtemp(prefix="provisioning-copy-bench-")
    db = f"{tmp}/large.duckdb"
    org = load_organisation("large")
    started = time.perf_counter()
    with duckdb.connect(db) as con:
        write_snapshot(org, con, "day-001", ListReads(), 1)
        create_provisioning_tables(con)  # the sync job creates them before its dbt build reads them
    subprocess.run(
        [DBT, "seed", "--profiles-dir", ".", "--quiet"],
        cwd=ROOT / "dbt_project",
        env={**os.environ, "DUCKDB_PATH": db},
        check=True,
    )
    build = dbt_build(db)
    print(f"large written and built in {time.perf_counter() - started:.0f} s (dbt {build:.0f} s)", flush=True)
    provisioning_year(db, args.log)

    def measure(label: str) -> None:
        read = timed(lambda: publish_read_copy(db), args.runs)
        side = timed(lambda: publish_provisioning_copy(db), args.runs)
        read_size = os.path.getsize(read_copy_path(db))
        side_size = os.path.getsize(provisioning_copy_path(read_copy_path(db)))
        print(
            f"{label}: read copy {read:.2f} s, {read_size / 1e6:.0f} MB (provisioning copy included); "
            f"provisioning copy alone {side:.3f} s, {side_size / 1e6:.1f} MB; "
            f"{read / side:.0f} x faster, {read_size / side_size:.0f} x smaller",
            flush=True,
        )

    measure(f"{args.log:,} requests and log rows")
    started = time.perf_counter()
    with duckdb.connect(db, read_only=True) as con:
        campaign = new_campaign(con, datetime.now(UTC))
    with duckdb.connect(db) as con:
        register_campaign(con, campaign, datetime.now(UTC))
        con.execute("CHECKPOINT")
    print(
        f"a campaign of the whole population: {len(campaign.rows):,} items, exported and registered in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    measure(f"the same and a campaign of {len(campaign.rows):,} items")
    decided = decide_a_tenth(db)
    measure(f"the same with {decided:,} of its items decided")


def decide_a_tenth(db: str) -> int:
    """Every tenth item of the campaign kept, as one reviewer's import records it."""
    with duckdb.connect(db) as con:
        con.execute(
            "insert into provisioning.review_decisions select campaign_id, review_item, 'keep', null, "
            "'reviewer@acme.example', null, now(), repeat('0', 64), row_number() over () from "
            "provisioning.review_items using sample 10 percent (system, 42)"
        )
        con.execute("CHECKPOINT")
        return con.execute("select count(*) from provisioning.review_decisions").fetchone()[0]


if __name__ == "__main__":
    main()
