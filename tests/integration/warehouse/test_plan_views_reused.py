"""A sync runs dbt for the refresh plan's views only when it may read them and they are not this project's
(plan_views.py)."""

from __future__ import annotations

import json

import duckdb

from bitbucket_assets.warehouse import plan_views
from bitbucket_assets.warehouse.dbt_runs import PROJECT_MANIFEST, warehouse_target
from bitbucket_assets.warehouse.files import DBT_PROJECT_DIR

PLAN = "plan/repository_refresh_plan"


def test_the_second_sync_builds_the_plan_views_and_later_syncs_reuse_them(tiny_history):
    """The first sync of a warehouse reads every list and no plan: dbt is not run for the views. The second
    builds them, the third reuses them."""
    first, second, *later = (run.materializations[PLAN] for run in tiny_history.runs)
    assert first["rebuilt"] is False and first["why"].startswith("not read by this sync: ")
    assert (
        "rebuilt" not in second
        and second.get("unique_id") == "model.bitbucket_access.repository_refresh_plan"
    )
    assert later and all(m == {"rebuilt": False, "why": "this project's already"} for m in later)

    manifest = json.loads(PROJECT_MANIFEST.read_text())
    with duckdb.connect(tiny_history.db, read_only=True) as con:
        assert plan_views.are_current(con, manifest)
        # the reused views still bind to this warehouse's raw tables (no sync is in progress: nothing is due)
        assert con.execute("select count(*) from plan.repository_list_freshness").fetchone() == (0,)


def test_dbt_parses_the_project_once_per_warehouse(tiny_history):
    """Every dbt run on one warehouse shares its target directory (dbt_runs.warehouse_target), so only the
    first parses the whole project; the rest reuse that parse (dbt's events in its log say which)."""
    target = DBT_PROJECT_DIR / warehouse_target(tiny_history.db)
    lines = [line for log in target.glob("dbt.log*") for line in log.read_text().splitlines()]  # rotated too
    events = [json.loads(line) for line in lines if line.startswith("{")]
    runs = {e["info"]["invocation_id"] for e in events}
    full = {e["info"]["invocation_id"] for e in events if e["info"]["name"] == "UnableToPartialParse"}
    reused = {e["info"]["invocation_id"] for e in events if e["info"]["name"] == "PartialParsingSkipParsing"}
    # day 1: the build (no plan is read); day 2: the plan views and the build; day 3: the build (they are
    # current)
    assert len(runs) == 4 and len(full) == 1 and reused == runs - full
