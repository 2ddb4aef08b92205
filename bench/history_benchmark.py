"""Benchmark: the dbt warehouse on `large` with 1 %/day churn over 90 days of history.

Measures (issue: daily sync of 20,000 repositories): the incremental build after 90 days against after day 2,
the DuckDB file's growth per day, and the two "as of" questions analysts ask.

Each day's raw snapshot is written straight from the simulator's model with the writer and the columns the
incremental sync uses (the HTTP path is measured by bench/sync_benchmark.py and
bench/daily_sync_benchmark.py): a repository's lists are read on its first day, when its user grants changed,
and on its rolling day (one in N = 7); otherwise they are carried forward with the sync and time that read
them, as the sync writes them. Bitbucket's effective list (about a million rows on `large`) is written every
day, as the sync reads it. Days 3..89 are folded into the history in batches of `--batch` syncs (the
incremental model takes any number of new syncs). The day-2 and day-90 builds are timed back to back: the
warehouse is copied before each, and the copies are rebuilt alternately, three times each, so load on a shared
machine weighs on both alike; the medians are compared; so is a third warehouse holding two days of the day-90
organisation (which has grown), to tell the history's cost from the larger snapshot's. Run: `.venv/bin/python
bench/history_benchmark.py [--days 90] [--batch 8]` (about 45 minutes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
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

from bitbucket_assets.extraction.snapshot import SnapshotWriter  # noqa: E402
from bitbucket_assets.warehouse.clustering import LOG, cluster_history  # noqa: E402
from bitbucket_assets.warehouse.retention import prune_raw_snapshots  # noqa: E402
from bitbucket_simulator import advance, load_organisation  # noqa: E402
from bitbucket_simulator.model import Organisation  # noqa: E402

DBT = str(Path(sys.executable).parent / "dbt")


class ListReads:
    """When each repository's permission lists were last read, as an incremental sync decides it."""

    def __init__(self, max_age_days: int = 7):
        self.n = max_age_days
        # repository uuid -> (sync, read at, user grants)
        self.last: dict[str, tuple[str, datetime, tuple]] = {}

    def observe(
        self, repository_uuid: str, grants: tuple, sync_id: str, day: int, now: datetime
    ) -> tuple[str, datetime]:
        """The sync and time of the lists the snapshot holds for this repository today."""
        known = self.last.get(repository_uuid)
        slot = int(hashlib.md5(repository_uuid.encode()).hexdigest(), 16) % self.n == day % self.n
        if known is None or known[2] != grants or slot:
            self.last[repository_uuid] = known = (sync_id, now, grants)
        return known[0], known[1]


def write_snapshot(
    org: Organisation, con: duckdb.DuckDBPyConnection, sync_id: str, reads: ListReads, day: int
) -> None:
    """One complete raw snapshot of the model, as the incremental sync would write it (without raw JSON)."""
    w = SnapshotWriter(con, sync_id)
    w.begin("model://large", "api_token", {"workspaces": None, "bench": sync_id})
    now = org.now
    seen: set[str] = set()
    for ws in org.workspaces.values():
        base = {"workspace_uuid": ws.uuid, "workspace_slug": ws.slug}
        w.add(
            "workspaces",
            {**base, "name": ws.name, "is_private": True, "administrator": True, "effective_list": "read"},
        )
        for m in ws.members.values():
            u = org.users[m.user_uuid]
            if m.user_uuid not in seen:
                seen.add(m.user_uuid)
                w.add(
                    "users",
                    {
                        "user_uuid": u.uuid,
                        "account_id": u.account_id,
                        "display_name": u.display_name,
                        "nickname": u.nickname,
                    },
                )
            w.add(
                "workspace_members",
                {
                    **base,
                    "user_uuid": u.uuid,
                    "account_id": u.account_id,
                    "permission": m.role,
                    "added_on": m.added_on,
                    "last_accessed": m.last_accessed,
                },
            )
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
            for kind in ("users", "groups"):
                w.add(
                    "fetch_log",
                    {
                        **base,
                        "resource_type": "project",
                        "resource_id": p.uuid,
                        "list": kind,
                        "rows": 0,
                        "fetched_at": now,
                        "observed_sync_id": sync_id,
                    },
                )
        for r in ws.repositories.values():
            project = ws.projects[r.project_key]
            keys = {**base, "repository_uuid": r.uuid, "repository_slug": r.slug}
            w.add(
                "repositories",
                {
                    **keys,
                    "full_name": f"{ws.slug}/{r.slug}",
                    "name": r.name,
                    "project_uuid": project.uuid,
                    "project_key": project.key,
                    "is_private": r.is_private,
                },
            )
            observed, read_at = reads.observe(r.uuid, tuple(sorted(r.user_grants.items())), sync_id, day, now)
            for u, perm in r.user_grants.items():
                w.add(
                    "repository_user_permissions",
                    {**keys, "user_uuid": u, "permission": perm, "observed_sync_id": observed},
                )
            for g, perm in r.group_grants.items():  # in bulk: read every day
                w.add(
                    "repository_group_permissions",
                    {**keys, "group_slug": g, "permission": perm, "observed_sync_id": sync_id},
                )
            w.add(
                "fetch_log",
                {
                    **base,
                    "resource_type": "repository",
                    "resource_id": r.uuid,
                    "list": "users",
                    "rows": len(r.user_grants),
                    "fetched_at": read_at,
                    "observed_sync_id": observed,
                },
            )
            w.add(
                "fetch_log",
                {
                    **base,
                    "resource_type": "repository",
                    "resource_id": r.uuid,
                    "list": "groups",
                    "rows": len(r.group_grants),
                    "fetched_at": now,
                    "observed_sync_id": sync_id,
                    "read_reason": "bulk",
                },
            )
            # Bitbucket's effective list, every day
            for u, perm in ws.effective_repository_permissions(r).items():
                w.add(
                    "effective_repository_permissions",
                    {
                        **base,
                        "repository_uuid": r.uuid,
                        "repository_name": r.name,
                        "user_uuid": u,
                        "permission": perm,
                    },
                )
        w.checkpoint(ws.slug, "effective", None)  # the writer keeps one checkpoint's rows in memory
    w.complete(list(org.workspaces), {"calls_by_family": {}, "retries": 0, "rate_limited": 0})


def dbt_build(db: str, select: str = "path:models") -> float:
    started = time.perf_counter()
    subprocess.run(
        [DBT, "run", "--profiles-dir", ".", "--select", select, "--quiet"],
        cwd=ROOT / "dbt_project",
        env={**os.environ, "DUCKDB_PATH": db},
        check=True,
    )
    return time.perf_counter() - started


def housekeeping(db: str, keep: int) -> None:
    """What the sync job does after each build: prune raw snapshots (`raw_snapshot_retention`), renew the
    history's order (`history_order`)."""
    with duckdb.connect(db) as con:
        prune_raw_snapshots(con, keep)
        cluster_history(con)
        con.execute("CHECKPOINT")


def timed_query(db: str, sql: str, params: list, runs: int = 7) -> tuple[float, float, int]:
    """Median milliseconds of `runs` runs after a warm-up: answered in DuckDB (every column of every row
    materialised in a temporary table, as a SQL client or the dashboard's data layer receives it) and fetched
    into Python objects (`fetchall`, which adds the conversion of each row and list); and the rows
    returned."""
    with duckdb.connect(db) as con:
        con.execute(sql, params).fetchall()  # warm
        in_duckdb, in_python = [], []
        for _ in range(runs):
            started = time.perf_counter()
            con.execute(f"CREATE OR REPLACE TEMP TABLE answer AS {sql}", params)
            in_duckdb.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            rows = con.execute(sql, params).fetchall()
            in_python.append((time.perf_counter() - started) * 1000)
        return statistics.median(in_duckdb), statistics.median(in_python), len(rows)


def copy_warehouse(source: str, target: str) -> None:
    for suffix in ("", ".wal"):
        if os.path.exists(source + suffix):
            shutil.copyfile(source + suffix, target + suffix)
        elif os.path.exists(target + suffix):
            os.remove(target + suffix)


def alternate_builds(sources: list[str], work: str, rounds: int = 3) -> list[list[float]]:
    """Rebuild copies of each warehouse (as it stood before a build) in turn, `rounds` times: a ratio of two
    builds run minutes apart would measure the machine's load, not the warehouse."""
    times: list[list[float]] = [[] for _ in sources]
    for _ in range(rounds):
        for source, taken in zip(sources, times, strict=True):
            copy_warehouse(source, work)
            taken.append(dbt_build(work))
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument(
        "--keep", type=int, default=30, help="raw snapshots kept (BITBUCKET_RAW_SYNC_RETENTION)"
    )
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    org = load_organisation("large")
    tmp = tempfile.mkdtemp(prefix="history-bench-")
    db = f"{tmp}/large.duckdb"
    before_day2, before_last, work = (
        f"{tmp}/before-day2.duckdb",
        f"{tmp}/before-last.duckdb",
        f"{tmp}/work.duckdb",
    )
    results: dict[str, object] = {}
    reads = ListReads()

    def day(n: int) -> None:
        if n > 1:
            advance(org, 1, args.churn)
        with duckdb.connect(db) as con:
            write_snapshot(org, con, f"day-{n:03d}", reads, n)

    day(1)
    with duckdb.connect(db) as con:
        raw_bytes_before = os.path.getsize(db)
    results["build_day1_s"] = dbt_build(db)
    housekeeping(db, args.keep)
    size_day1 = os.path.getsize(db)
    with duckdb.connect(db) as con:
        snapshot_rows = con.execute("select count(*) from marts.fct_grants").fetchone()[0]
    day(2)
    size_before_day2 = os.path.getsize(db)
    copy_warehouse(db, before_day2)
    results["build_day2_s"] = dbt_build(db)
    housekeeping(db, args.keep)
    print(
        f"day 1 build {results['build_day1_s']:.1f} s, day 2 build {results['build_day2_s']:.1f} s, "
        f"{snapshot_rows:,} grant paths per snapshot, file {size_day1 / 1e6:.0f} MB after day 1 "
        f"(raw snapshot alone {raw_bytes_before / 1e6:.0f} MB)",
        flush=True,
    )

    sizes = [(2, os.path.getsize(db))]
    n = 3
    while n < args.days:
        batch_end = min(args.days - 1, n + args.batch - 1)
        for d in range(n, batch_end + 1):
            day(d)
        dbt_build(db)
        housekeeping(db, args.keep)
        sizes.append((batch_end, os.path.getsize(db)))
        print(f"  days {n}..{batch_end} folded in; file {os.path.getsize(db) / 1e6:.0f} MB", flush=True)
        n = batch_end + 1
    size_before_last = os.path.getsize(db)
    day(args.days)
    copy_warehouse(db, before_last)
    results[f"build_day{args.days}_s"] = dbt_build(db)
    housekeeping(db, args.keep)
    with duckdb.connect(db) as con:
        clusterings = con.execute(f"select count(*), median(seconds), max(seconds) from {LOG}").fetchone()
        since = con.execute(
            f"select count(*) from marts.fct_grant_history "
            f"where last_sync_at > (select max(through_sync_at) from {LOG})"
        ).fetchone()[0]
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
    results.update(
        {
            "history_versions": versions,
            "access_changes": changes,
            "file_mb": size_after_last / 1e6,
            "growth_last_day_mb": growth,
            "full_snapshot_mb": (size_day1 - 0) / 1e6,
        }
    )
    q1 = (
        "select * from marts.effective_access_as_of(?) where resource_type = 'repository' and resource_id = ?"
    )
    q2 = "select * from marts.effective_access_as_of(?) where user_uuid = ?"
    results["repo_as_of_ms"], results["repo_as_of_fetchall_ms"], n1 = timed_query(db, q1, [when, repo])
    results["user_as_of_ms"], results["user_as_of_fetchall_ms"], n2 = timed_query(db, q2, [when, user])
    # The worst case: a history never put in order (the rows in an order unrelated to either question).
    copy_warehouse(db, work)
    with duckdb.connect(work) as con:
        con.execute("create temp table shuffled as select * from marts.fct_grant_history order by grant_key")
        con.execute("delete from marts.fct_grant_history")
        con.execute("insert into marts.fct_grant_history select * from shuffled")
    results["repo_as_of_unordered_ms"] = timed_query(work, q1, [when, repo])[0]
    results["user_as_of_unordered_ms"] = timed_query(work, q2, [when, user])[0]
    results["clusterings"], results["clustering_median_s"], results["clustering_max_s"] = clusterings
    results["history_rows_since_clustering"] = since
    # The organisation changes size with the churn (repositories created and deleted, leavers who keep
    # access): a warehouse holding two days of today's organisation separates what the history costs from what
    # today's snapshot costs.
    grown, before_grown_day2 = f"{tmp}/grown.duckdb", f"{tmp}/before-grown-day2.duckdb"
    grown_reads = ListReads()
    with duckdb.connect(grown) as con:
        write_snapshot(org, con, "grown-001", grown_reads, 1)
    dbt_build(grown)
    housekeeping(grown, args.keep)
    advance(org, 1, args.churn)
    with duckdb.connect(grown) as con:
        write_snapshot(org, con, "grown-002", grown_reads, 2)
    copy_warehouse(grown, before_grown_day2)
    with duckdb.connect(before_day2) as con:
        paths_day2 = con.execute("select count(*) from marts.fct_grants").fetchone()[0]
    with duckdb.connect(before_grown_day2) as con:
        paths_grown = con.execute("select count(*) from marts.fct_grants").fetchone()[0]
    day2_builds, last_builds, grown_builds = alternate_builds(
        [before_day2, before_last, before_grown_day2], work
    )
    results["day2_builds_s"], results[f"day{args.days}_builds_s"] = day2_builds, last_builds
    results["grown_day2_builds_s"] = grown_builds
    ratio = statistics.median(last_builds) / statistics.median(day2_builds)
    results["build_ratio"] = ratio
    results["build_ratio_same_size"] = statistics.median(last_builds) / statistics.median(grown_builds)
    results["grant_paths_day1"], results[f"grant_paths_day{args.days}"] = paths_day2, paths_grown
    last_median, day2_median = statistics.median(last_builds), statistics.median(day2_builds)
    print(
        f"day {args.days} build {last_median:.1f} s vs day 2 {day2_median:.1f} s "
        f"(medians of {len(last_builds)} alternate rebuilds: {', '.join(f'{t:.1f}' for t in day2_builds)} | "
        f"{', '.join(f'{t:.1f}' for t in last_builds)}): ratio {ratio:.2f} (target <= 1.2)"
    )
    print(
        f"the organisation went from {paths_day2:,} to {paths_grown:,} grant paths; two days of today's "
        f"organisation build in {statistics.median(grown_builds):.1f} s "
        f"({', '.join(f'{t:.1f}' for t in grown_builds)}): day {args.days} against the same organisation "
        f"without its history: ratio {results['build_ratio_same_size']:.2f}"
    )
    print(
        f"file {size_after_last / 1e6:.0f} MB after {args.days} days ({versions:,} history versions, "
        f"{changes:,} changes); last day grew it by {growth:.1f} MB = "
        f"{growth / (size_day1 / 1e6) * 100:.1f} % of the {size_day1 / 1e6:.0f} MB day-1 file (target <= 10 "
        "% of one snapshot)"
    )
    print(
        f"steady state (days {steady[0][0]}..{steady[-1][0]}): {per_day:.2f} MB per day = "
        f"{per_day / (size_day1 / 1e6) * 100:.1f} % of one full snapshot"
    )
    print(
        f"as-of queries on day 45, answered in DuckDB: repository {results['repo_as_of_ms']:.0f} ms ({n1} "
        f"rows), user {results['user_as_of_ms']:.0f} ms ({n2} rows) (medians of 7; target < 100 ms); "
        f"fetched into Python: {results['repo_as_of_fetchall_ms']:.0f} and "
        f"{results['user_as_of_fetchall_ms']:.0f} ms"
    )
    print(
        f"  the history was put in Z-order {clusterings[0]} times over {args.days} days (median "
        f"{clusterings[1]:.1f} s, longest {clusterings[2]:.1f} s); {since:,} of {versions:,} rows written "
        f"since the last; never ordered, the same questions take {results['repo_as_of_unordered_ms']:.0f} "
        f"and {results['user_as_of_unordered_ms']:.0f} ms"
    )
    print(json.dumps(results, default=str))
    _ = size_before_day2


if __name__ == "__main__":
    main()
