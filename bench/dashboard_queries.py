"""Benchmark: the dashboard's page queries on a warehouse (e.g. `large` after a few days), before and after
they filtered and aggregated in SQL.

"Before" is what the pages did until then: the Changes page read every grant-path row of the period for every
workspace into pandas and filtered it there (`evidence.QUERIES["changes"]` then a pandas filter); "after" is
`dashboard/data.py` today: the period's summary by person, one person's rows and one workspace's rows, each
filtered in SQL. The Risks page judged the history at the chosen date every time
(`marts.risk_register_as_of`); at the latest date it now reads `marts.risk_register`. Who has access, Person
and the Overview's lists are timed as they are now. Each query runs
`--repeat` times on a read-only connection opened per call, as the dashboard does; the median is reported.

    .venv/bin/python bench/dashboard_queries.py /path/to/large.duckdb [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine  # noqa: E402

# The Changes page's query before it filtered in SQL (every workspace's rows of the period, then pandas).
BEFORE_CHANGES = """
    select changed_at, sync_id, change, workspace_slug, resource_type, resource_key, principal_type,
           principal_name, grant_source, via_group_slug, via_project_key, old_permission, new_permission
    from marts.fct_access_changes
    where changed_at >= $from and changed_at <= $to
    order by changed_at, workspace_slug, resource_key, principal_name
"""


def timed(run: Callable[[], object], repeat: int) -> tuple[float, int]:
    """Median seconds over `repeat` runs, and the rows of the last answer."""
    times, rows = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        answer = run()
        times.append(time.perf_counter() - start)
        rows = len(answer) if hasattr(answer, "__len__") else 0
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["BITBUCKET_DASHBOARD_DB"] = str(Path(args.warehouse).resolve())
    from bitbucket_assets.dashboard import data

    last = data.snapshot_dates()[0]
    end = datetime.combine(last, datetime.max.time()).replace(tzinfo=UTC)
    start = datetime.combine(last - timedelta(days=6), datetime.min.time()).replace(tzinfo=UTC)
    workspace = data.workspaces()[0]
    summary = data.change_summary(start, end, None)
    person = str(summary.user_uuid.iloc[0]) if len(summary) else None
    big = data.query(
        "select workspace_slug, resource_type, resource_key from marts.fct_effective_access "
        "where resource_type = 'repository' group by all order by count(*) desc limit 1"
    ).iloc[0]
    users = data.people(None)
    chosen = data.default_person(users)

    def before_changes_one_workspace():
        table = data.query(BEFORE_CHANGES, {"from": start, "to": end})
        return table[table.workspace_slug == workspace]

    def before_changes_one_person():
        table = data.query(BEFORE_CHANGES, {"from": start, "to": end})
        return table[table.principal_name == summary.user_display_name.iloc[0]]

    cases: list[tuple[str, Callable[[], object]]] = [
        ("floor: open the file read-only and `select 1`", lambda: data.query("select 1 as one")),
        ("before: Changes, one workspace (all rows into pandas)", before_changes_one_workspace),
        ("before: Changes, one person's rows (all rows into pandas)", before_changes_one_person),
        ("after: Changes, summary by person (SQL)", lambda: data.change_summary(start, end, None)),
        ("after: Changes, one workspace's summary (SQL)", lambda: data.change_summary(start, end, workspace)),
        ("after: Changes, path-row counts (SQL)", lambda: data.change_counts(start, end, None)),
        ("after: Changes, one person's rows (SQL)", lambda: data.changes(start, end, None, person)),
        ("after: Changes, every row of the period (SQL)", lambda: data.changes(start, end, None)),
        (
            "before: Risks, every workspace (judged from the history)",
            lambda: data.query(data.RISKS, {"to": end, "ws": None}),
        ),
        (
            "before: Risks, one workspace (judged from the history)",
            lambda: data.query(data.RISKS, {"to": end, "ws": workspace}),
        ),
        ("after: Risks, every workspace, latest date (marts.risk_register)", lambda: data.risks(end, None)),
        (
            "after: Risks, one workspace, latest date (marts.risk_register)",
            lambda: data.risks(end, workspace),
        ),
        (
            "Who has access, the largest repository",
            lambda: data.who_has_access(big.workspace_slug, big.resource_type, big.resource_key, end),
        ),
        (
            "Who has access, its writers through a group",
            lambda: data.who_has_access(
                big.workspace_slug, big.resource_type, big.resource_key, end, "write", "group"
            ),
        ),
        (
            "Who has access, count per permission",
            lambda: data.access_counts(big.workspace_slug, big.resource_type, big.resource_key, end),
        ),
        ("Person, the picker (everyone with their reach)", lambda: data.people(None)),
        ("Person, the default person's access", lambda: data.person_access(chosen, None, end)),
        ("Overview, owners and admins list", lambda: data.measure_list("owners_and_admins", None, end)),
        ("Overview, users with access list", lambda: data.measure_list("users_with_access", None, end)),
    ]
    print(f"machine: {machine()}")
    print(f"warehouse: {args.warehouse}; period {start:%Y-%m-%d} to {end:%Y-%m-%d}; workspace {workspace}")
    print(f"| query | median of {args.repeat} | rows |")
    print("|---|---|---|")
    for name, run in cases:
        seconds, rows = timed(run, args.repeat)
        print(f"| {name} | {seconds * 1000:,.0f} ms | {rows:,} |")


if __name__ == "__main__":
    main()
