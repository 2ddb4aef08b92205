"""Benchmark: a daily sync of `large` (20,000 repositories) for 30 simulated days inside Bitbucket's rate
limit.

Each day: the organisation moves on by 1 % churn (joiners, leavers, group moves, project and repository grant
changes, new repositories, direct grants added and removed), then one sync runs — the first in full, the rest
incremental (extraction/refresh.py) — paced at the client's default budget (900 requests per hour per bucket,
under Bitbucket's 1,000) on a simulated clock, so hours of pacing take no time; then dbt builds the marts the
figures come from. Printed per day: calls per rate-limit bucket, simulated hours the sync took, mismatches
between `fct_effective_access` and Bitbucket's effective list, and the oldest permission list in the snapshot.

Each day also reads change control (branch restrictions, branching model, override settings, deploy keys) for
about 1/N of the repositories (`--change-control-days`, N), beside the effective list; printed: those calls,
the coverage of the rolling first pass, and the oldest change-control read.

Run: `.venv/bin/python bench/daily_sync_benchmark.py` (`--days`, `--org`, `--max-age-days`,
`--change-control-days`). The simulator
runs in its own process pinned to CPU 0. Figures and the machine are printed; docs/benchmarks.md records them.
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
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, start_simulator  # noqa: E402

from bitbucket_assets.client import BitbucketApi, BitbucketClient, Credentials  # noqa: E402
from bitbucket_assets.clock import SimulatedClock  # noqa: E402
from bitbucket_assets.extraction.extract import ExtractionOptions  # noqa: E402
from bitbucket_assets.extraction.raw_schema import TABLES  # noqa: E402
from bitbucket_assets.extraction.refresh import RefreshPolicy  # noqa: E402
from bitbucket_assets.extraction.sync import run_sync  # noqa: E402
from bitbucket_assets.provisioning.tables import create_provisioning_tables  # noqa: E402
from bitbucket_assets.settings import DEFAULT_CHANGE_CONTROL_DAYS  # noqa: E402
from bitbucket_simulator import SIM_ACCESS_TOKEN, SIM_API_TOKEN  # noqa: E402

DBT = str(Path(sys.executable).parent / "dbt")
# The plan views, the marts the figures read, and the history (the analysts' table macros need it).
SELECT = [
    "path:models/plan",
    "+fct_reconciliation_mismatches",
    "+dim_repositories",
    "+fct_grant_history",
    "+fct_change_control_coverage",
    "+fct_change_rights",
]
# The marts' production branch and the rules that apply to it, per repository whose rules this sync read (a
# carried repository may have changed since its read: that is age, not a mismatch).
MART_RULES = """
select b.repository_uuid, b.production_branch, b.production_branch_source,
       coalesce(list({'id': r.restriction_id, 'kind': r.kind, 'value': r.value,
                      'users': r.exempt_user_uuids, 'groups': r.exempt_group_slugs}
                     order by r.restriction_id) filter (where r.restriction_id is not null), []) as rules
from intermediate.int_production_branches b
left join intermediate.int_production_branch_rules r using (sync_id, repository_uuid)
where b.sync_id = $sync and b.repository_uuid in (
    select resource_id from raw.change_control_reads
    where sync_id = $sync and observed_sync_id = sync_id and list = 'branch_restrictions')
group by all
"""


def rule_mismatches(con: duckdb.DuckDBPyConnection, url: str, sync_id: str) -> tuple[int, int]:
    """Repositories read by this sync whose production branch or rules in the marts differ from the
    simulator's own (`GET /_sim/change-control`, its model's matching), and how many were compared."""
    reference = {
        r["repository_uuid"]: (r["production_branch"], r["production_branch_source"], r["rules"])
        for r in requests.get(f"{url}/_sim/change-control", timeout=600).json()
    }
    compared = mismatched = 0
    for uuid, branch, source, rules in con.execute(MART_RULES, {"sync": sync_id}).fetchall():
        compared += 1
        ours = (
            branch,
            source,
            [{**r, "users": sorted(r["users"]), "groups": sorted(r["groups"])} for r in rules],
        )
        mismatched += reference.get(uuid) != ours
    return mismatched, compared


FIGURES = """
select
    (select count(*) from marts.fct_reconciliation_mismatches) as mismatches,
    (select count(*) from marts.fct_effective_access where resource_type = 'repository') as compared,
    (select max(epoch(synced_at - permissions_read_at)) / 86400 from marts.dim_repositories) as oldest_days,
    (select count(*) filter (where permissions_carried_forward) from marts.dim_repositories) as carried,
    -- Change control (extraction/change_control.py): repositories covered / all, and the oldest read.
    (select sum(repositories_read) / sum(repositories) from marts.fct_change_control_coverage
     where synced_at = (select max(synced_at) from marts.fct_change_control_coverage)) as control_coverage,
    (select max(epoch(synced_at - oldest_read_at)) / 86400 from marts.fct_change_control_coverage
     where synced_at = (select max(synced_at) from marts.fct_change_control_coverage)) as control_oldest_days
"""


def dbt_run(db: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [DBT, "run", "--profiles-dir", ".", "--quiet", "--select", *SELECT],
        cwd=ROOT / "dbt_project",
        env={**os.environ, "DUCKDB_PATH": db},
        check=True,
    )
    return time.perf_counter() - started


def keep_last_raw_snapshots(con: duckdb.DuckDBPyConnection, keep: int = 2) -> None:
    """The benchmark measures syncs, not retention: drop raw snapshots but the newest `keep` to bound the file
    (each snapshot carries its own copy of every list, so the newest needs no older one)."""
    old = con.execute(
        "select sync_id from raw.syncs where status = 'complete' "
        "qualify row_number() over (order by finished_at desc) > ?",
        [keep],
    ).fetchall()
    old = [r[0] for r in old]
    for sync_id in old:
        for table in TABLES:
            con.execute(f"delete from raw.{table} where sync_id = ?", [sync_id])
        con.execute("update raw.syncs set status = 'pruned' where sync_id = ?", [sync_id])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--org", default="large")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--max-age-days", type=int, default=7)
    parser.add_argument(
        "--change-control-days",
        type=int,
        default=DEFAULT_CHANGE_CONTROL_DAYS,
        help="N of the change-control rolling schedule",
    )
    parser.add_argument(
        "--budget", type=float, default=900.0, help="the client's requests per hour per bucket"
    )
    parser.add_argument(
        "--second-credential",
        action="store_true",
        help="read change control's rules with the simulator's workspace access token (its own rate limit)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    print(
        f"org {args.org}, {args.days} days, churn {args.churn:.0%}/day, N = {args.max_age_days} days, "
        f"budget {args.budget:.0f}/h per bucket, change control every {args.change_control_days} days"
        + (", rules read with a second credential" if args.second_credential else ""),
        flush=True,
    )
    proc, url, email = start_simulator(args.org)
    db = f"{tempfile.mkdtemp(prefix='daily-sync-bench-')}/{args.org}.duckdb"
    clock = SimulatedClock(datetime(2026, 1, 5, 2, 0, tzinfo=UTC))
    rows = []
    try:
        for day in range(1, args.days + 1):
            changes = {}
            if day > 1:
                changes = requests.post(
                    f"{url}/_sim/advance", json={"days": 1, "churn": args.churn}, timeout=600
                )
                changes = changes.json()
            client = BitbucketClient(
                Credentials.api_token(email, SIM_API_TOKEN), url, clock=clock, requests_per_hour=args.budget
            )
            # The second credential: a client of its own (its own pacing buckets) on the same clock.
            control = (
                BitbucketClient(
                    Credentials.access_token(SIM_ACCESS_TOKEN),
                    url,
                    clock=clock,
                    requests_per_hour=args.budget,
                )
                if args.second_credential
                else None
            )
            token_workspace = BitbucketApi(control).user_workspaces()[0].slug if control is not None else None
            started, wall = clock.monotonic(), time.perf_counter()
            with duckdb.connect(db) as con:
                create_provisioning_tables(con)  # the dbt sources the Dagster job creates before a build
                policy = RefreshPolicy(
                    max_age_days=args.max_age_days, change_control_days=args.change_control_days
                )
                options = ExtractionOptions(
                    refresh=policy, change_control_client=control, change_control_workspace=token_workspace
                )
                result = run_sync(client, con, options)
            client.close()
            if control is not None:
                control.close()
            hours = (clock.monotonic() - started) / 3600
            sync_wall = time.perf_counter() - wall
            build = dbt_run(db)
            with duckdb.connect(db) as con:
                mismatches, compared, oldest, carried, coverage, control_oldest = con.execute(
                    FIGURES
                ).fetchone()
                token_calls = con.execute(
                    "select count(*) filter (where observed_sync_id = sync_id) from raw.change_control_reads "
                    "where sync_id = ? and workspace_slug = ? and list <> 'deploy_keys' "
                    "and resource_type = 'repository'",
                    [result.sync_id, token_workspace or ""],
                ).fetchone()[0]
                control_calls = con.execute(
                    "select count(*) filter (where observed_sync_id = sync_id) from raw.change_control_reads "
                    "where sync_id = ?",
                    [result.sync_id],
                ).fetchone()[0]
                rules_mismatches, rules_compared = rule_mismatches(con, url, result.sync_id)
                keep_last_raw_snapshots(con)
            buckets = {"repositories": 0, "other": 0}
            for family, n in result.stats["calls_by_family"].items():
                buckets["repositories" if family.startswith("2.0/repositories") else "other"] += n
            # The token's calls are counted with the main client's (one manifest); its bucket is its own.
            buckets["repositories"] -= token_calls
            buckets["token"] = token_calls
            # Workspaces that read their lists instead of the effective list today (over the target hours).
            unreconciled = sorted(
                ws for ws, r in result.refresh.items() if "effective list not read" in r.get("why", "")
            )
            reasons = ("full", "new", "due", "changed")
            read = {k: sum(w["read"].get(k, 0) for w in result.refresh.values()) for k in reasons}
            # The floor: the busier bucket's calls at the budget, as if the other bucket's work were all
            # beside it.
            floor = max(buckets.values()) / args.budget
            row = {
                "day": day,
                "calls": result.stats["calls"],
                **buckets,
                "hours": round(hours, 2),
                "floor_hours": round(floor, 2),
                "mismatches": mismatches,
                "compared": compared,
                "oldest_days": round(oldest or 0, 2),
                "read": read,
                "carried": carried,
                "control_calls": control_calls,
                "token_calls": token_calls,
                "control_coverage": round(float(coverage or 0), 4),
                "control_oldest_days": round(control_oldest or 0, 2),
                "rules_mismatches": rules_mismatches,
                "rules_compared": rules_compared,
                "not_reconciled": unreconciled,
                "changes": changes,
                "sync_wall_s": round(sync_wall, 1),
                "dbt_s": round(build, 1),
                "429": result.stats["rate_limited"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            # The next day's sync starts 24 hours after this one did (or at once, if this one took longer).
            clock.advance(max(0.0, started + 86400 - clock.monotonic()))
    finally:
        proc.terminate()
    incremental = rows[1:] or rows

    def span(key: str) -> str:
        values = [r[key] for r in incremental]
        return f"{min(values):,}–{max(values):,}"

    print(
        f"summary: first sync {rows[0]['calls']:,} calls in {rows[0]['hours']} h; incremental days: "
        f"calls {span('calls')}, repositories bucket {span('repositories')}, other {span('other')}, "
        f"token {span('token')}; "
        f"hours {span('hours')}; mismatches {sum(r['mismatches'] for r in rows)} in all; "
        f"oldest list {max(r['oldest_days'] for r in rows)} days; 429s {sum(r['429'] for r in rows)}; "
        f"change control: {span('control_calls')} calls a day, coverage {rows[-1]['control_coverage']:.1%} "
        f"after {len(rows)} days, oldest read {max(r['control_oldest_days'] for r in incremental)} days, "
        f"rules mismatches {sum(r['rules_mismatches'] for r in rows)} "
        f"of {sum(r['rules_compared'] for r in rows):,} repositories compared",
        flush=True,
    )


if __name__ == "__main__":
    main()
