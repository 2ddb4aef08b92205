"""A sync runs dbt for the refresh plan's views only when they are not this project's (plan_views.py)."""

from __future__ import annotations

import json

import duckdb

from bitbucket_assets.defs.dbt_models.project import dbt_project
from bitbucket_assets.warehouse import plan_views

PLAN = "plan/repository_refresh_plan"


def test_the_first_sync_builds_the_plan_views_and_later_syncs_reuse_them(tiny_history):
    first, *later = (run.materializations[PLAN] for run in tiny_history.runs)
    assert (
        "rebuilt" not in first and first.get("unique_id") == "model.bitbucket_access.repository_refresh_plan"
    )
    assert later and all(m == {"rebuilt": False} for m in later)

    manifest = json.loads(dbt_project.manifest_path.read_text())
    with duckdb.connect(tiny_history.db, read_only=True) as con:
        assert plan_views.are_current(con, manifest)
        # the reused views still bind to this warehouse's raw tables (no sync is in progress: nothing is due)
        assert con.execute("select count(*) from plan.repository_list_freshness").fetchone() == (0,)
