"""Benchmark: the dbt warehouse on `large` with 1 %/day churn over 90 days of history.

Measures (issue: dbt models): the incremental build after 90 days vs after day 2, the DuckDB file's
growth per day against one full snapshot, and the two "as of" questions analysts ask.

To keep 90 days affordable on 2 cores, each day's raw snapshot is written straight from the simulator's
model with the same writer and columns the extraction uses (the HTTP path is measured by
bench/sync_benchmark.py); days 3..89 are folded into the history in batches of `--batch` syncs (the
incremental model takes any number of new syncs), and days 2 and 90 are built one sync at a time and
timed. Run: `.venv/bin/python bench/history_benchmark.py [--days 90] [--batch 8]` (about 20 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine  # noqa: E402

from bitbucket_assets.extraction.retention import prune_raw_snapshots  # noqa: E402
from bitbucket_assets.extraction.snapshot import SnapshotWriter  # noqa: E402
from bitbucket_assets.simulator import advance, load_organisation  # noqa: E402
from bitbucket_assets.simulator.model import Organisation  # noqa: E402

DBT = str(Path(sys.executable).parent / "dbt")


def write_snapshot(org: Organisation, con: duckdb.DuckDBPyConnection, sync_id: str) -> None:
    """One complete raw snapshot of the model, as the extraction would write it (without raw JSON)."""
    w = SnapshotWriter(con, sync_id)
    w.begin("model://large", "api_token", {"workspaces": None, "bench": sync_id})
    seen: set[str] = set()
    for ws in org.workspaces.values():
        base = {"workspace_uuid": ws.uuid, "workspace_slug": ws.slug}
        w.add("workspaces", {**base, "name": ws.name, "is_private": True, "administrator": True})
        for m in ws.members.values():
            u = org.users[m.user_uuid]
            if m.user_uuid not in seen:
                seen.add(m.user_uuid)
                w.add("users", {"user_uuid": u.uuid, "account_id": u.account_id, "display_name": u.display_name,
                                "nickname": u.nickname})  # fmt: skip
            w.add("workspace_members", {**base, "user_uuid": u.uuid, "account_id": u.account_id,
                                        "permission": m.role, "added_on": m.added_on,
                                        "last_accessed": m.last_accessed})  # fmt: skip
        for g in ws.groups.values():
            w.add("groups", {**base, "group_slug": g.slug, "name": g.name, "member_count": len(g.members)})
            for u in g.members:
                w.add("group_members", {**base, "group_slug": g.slug, "user_uuid": u})
        for p in ws.projects.values():
            keys = {**base, "project_uuid": p.uuid, "project_key": p.key}
            w.add("projects", {**keys, "name": p.name, "is_private": True})
            for u, perm in p.user_grants.items():
                w.add("project_user_permissions", {**keys, "user_uuid": u, "permission": perm})
            for g, perm in p.group_grants.items():
                w.add("project_group_permissions", {**keys, "group_slug": g, "permission": perm})
        for r in ws.repositories.values():
            project = ws.projects[r.project_key]
            keys = {**base, "repository_uuid": r.uuid, "repository_slug": r.slug}
            w.add("repositories", {**keys, "full_name": f"{ws.slug}/{r.slug}", "name": r.name,
                                   "project_uuid": project.uuid, "project_key": project.key,
                                   "is_private": r.is_private})  # fmt: skip
            for u, perm in r.user_grants.items():
                w.add("repository_user_permissions", {**keys, "user_uuid": u, "permission": perm})
            for g, perm in r.group_grants.items():
                w.add("repository_group_permissions", {**keys, "group_slug": g, "permission": perm})
    w.complete(list(org.workspaces), {"calls_by_family": {}, "retries": 0, "rate_limited": 0})


def dbt_build(db: str, select: str = "path:models") -> float:
    started = time.perf_counter()
    subprocess.run(
        [DBT, "run", "--profiles-dir", ".", "--select", select, "--quiet"],
        cwd=ROOT / "dbt_project", env={**os.environ, "DUCKDB_PATH": db}, check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def timed_query(db: str, sql: str, params: list) -> tuple[float, int]:
    with duckdb.connect(db, read_only=True) as con:
        con.execute(sql, params).fetchall()  # warm
        started = time.perf_counter()
        rows = con.execute(sql, params).fetchall()
        return (time.perf_counter() - started) * 1000, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--keep", type=int, default=30, help="raw snapshots kept (BITBUCKET_RAW_SYNC_RETENTION)")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    org = load_organisation("large")
    tmp = tempfile.mkdtemp(prefix="history-bench-")
    db = f"{tmp}/large.duckdb"
    results: dict[str, object] = {}

    def day(n: int) -> None:
        if n > 1:
            advance(org, 1, args.churn)
        with duckdb.connect(db) as con:
            write_snapshot(org, con, f"day-{n:03d}")

    day(1)
    with duckdb.connect(db) as con:
        raw_bytes_before = os.path.getsize(db)
    results["build_day1_s"] = dbt_build(db)
    size_day1 = os.path.getsize(db)
    with duckdb.connect(db) as con:
        snapshot_rows = con.execute("select count(*) from marts.fct_grants").fetchone()[0]
    day(2)
    size_before_day2 = os.path.getsize(db)
    results["build_day2_s"] = dbt_build(db)
    print(f"day 1 build {results['build_day1_s']:.1f} s, day 2 build {results['build_day2_s']:.1f} s, "
          f"{snapshot_rows:,} grant paths per snapshot, file {size_day1 / 1e6:.0f} MB after day 1 "
          f"(raw snapshot alone {raw_bytes_before / 1e6:.0f} MB)", flush=True)  # fmt: skip

    sizes = [(2, os.path.getsize(db))]
    n = 3
    while n < args.days:
        batch_end = min(args.days - 1, n + args.batch - 1)
        for d in range(n, batch_end + 1):
            day(d)
        dbt_build(db)
        with duckdb.connect(db) as con:
            prune_raw_snapshots(con, args.keep)
            con.execute("CHECKPOINT")
        sizes.append((batch_end, os.path.getsize(db)))
        print(f"  days {n}..{batch_end} folded in; file {os.path.getsize(db) / 1e6:.0f} MB", flush=True)
        n = batch_end + 1
    size_before_last = os.path.getsize(db)
    day(args.days)
    results[f"build_day{args.days}_s"] = dbt_build(db)
    with duckdb.connect(db) as con:
        prune_raw_snapshots(con, args.keep)
        con.execute("CHECKPOINT")
        versions = con.execute("select count(*) from marts.fct_grant_history").fetchone()[0]
        changes = con.execute("select count(*) from marts.fct_access_changes").fetchone()[0]
        mid = con.execute("select finished_at from raw.syncs where sync_id = 'day-045'").fetchone()
        when = mid[0] if mid else datetime.now(UTC)
        # The hardest cases that day: the repository with the most grant paths, the user with the most access.
        repo = con.execute(
            "select resource_id from marts.access_as_of(?) where resource_type = 'repository' "
            "group by 1 order by count(*) desc limit 1",
            [when],
        ).fetchone()[0]
        user = con.execute(
            "select principal_id from marts.access_as_of(?) where principal_type = 'user' "
            "group by 1 order by count(*) desc limit 1",
            [when],
        ).fetchone()[0]
    size_after_last = os.path.getsize(db)
    sizes.append((args.days, size_after_last))
    growth = (size_after_last - size_before_last) / 1e6
    # Once retention is steady (a raw snapshot pruned for each added), growth per day is the history's.
    steady = [(d, b) for d, b in sizes if d >= args.keep + 2] or sizes
    per_day = (steady[-1][1] - steady[0][1]) / max(1, steady[-1][0] - steady[0][0]) / 1e6
    results["growth_per_day_steady_mb"] = per_day
    results.update({"history_versions": versions, "access_changes": changes, "file_mb": size_after_last / 1e6,
                    "growth_last_day_mb": growth, "full_snapshot_mb": (size_day1 - 0) / 1e6})  # fmt: skip
    q1 = "select * from marts.effective_access_as_of(?) where resource_type = 'repository' and resource_id = ?"
    q2 = "select * from marts.effective_access_as_of(?) where user_uuid = ?"
    results["repo_as_of_ms"], n1 = timed_query(db, q1, [when, repo])
    results["user_as_of_ms"], n2 = timed_query(db, q2, [when, user])
    ratio = results[f"build_day{args.days}_s"] / results["build_day2_s"]
    print(f"day {args.days} build {results[f'build_day{args.days}_s']:.1f} s vs day 2 {results['build_day2_s']:.1f} s: "
          f"ratio {ratio:.2f} (target <= 1.5)")  # fmt: skip
    print(f"file {size_after_last / 1e6:.0f} MB after {args.days} days ({versions:,} history versions, {changes:,} "
          f"changes); last day grew it by {growth:.1f} MB = {growth / (size_day1 / 1e6) * 100:.1f} % of the "
          f"{size_day1 / 1e6:.0f} MB day-1 file (target <= 10 % of one snapshot)")  # fmt: skip
    print(f"steady state (days {steady[0][0]}..{steady[-1][0]}): {per_day:.2f} MB per day = "
          f"{per_day / (size_day1 / 1e6) * 100:.1f} % of one full snapshot")  # fmt: skip
    print(f"as-of queries on day 45: repository {results['repo_as_of_ms']:.0f} ms ({n1} rows), "
          f"user {results['user_as_of_ms']:.0f} ms ({n2} rows) (target < 200 ms)")  # fmt: skip
    print(json.dumps(results, default=str))
    _ = size_before_day2


if __name__ == "__main__":
    main()
