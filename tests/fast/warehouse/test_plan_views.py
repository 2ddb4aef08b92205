"""The plan views' fingerprint (warehouse/plan_views.py): what makes a sync rebuild them, what does not."""

from __future__ import annotations

import copy
import json

import duckdb
import pytest

from bitbucket_assets.defs.dbt_models.project import dbt_project
from bitbucket_assets.extraction.raw_schema import create_raw_schema
from bitbucket_assets.warehouse import plan_views

PLAN_MODEL = "model.bitbucket_access.repository_refresh_plan"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(dbt_project.manifest_path.read_text())


def test_the_plan_layer_is_its_two_views(manifest):
    assert plan_views.plan_views(manifest) == [
        plan_views.PlanView("plan", "repository_list_freshness"),
        plan_views.PlanView("plan", "repository_refresh_plan"),
    ]


def test_a_macro_the_plan_calls_through_another_changes_the_fingerprint(manifest):
    # a macro the plan does not call itself, only through another (grant_paths calls one of its own)
    called = manifest["nodes"][PLAN_MODEL]["depends_on"]["macros"]
    deep = [
        m
        for c in called
        for m in manifest["macros"][c]["depends_on"]["macros"]
        if m.startswith("macro.bitbucket") and m not in called
    ]
    assert deep, "the plan calls a project macro through another"
    deep = deep[0]
    changed = copy.deepcopy(manifest)
    changed["macros"][deep]["macro_sql"] += "\n-- changed"
    assert plan_views.fingerprint(changed, "w") != plan_views.fingerprint(manifest, "w")


def test_the_catalog_and_the_model_code_change_it_and_an_unrelated_model_does_not(manifest):
    before = plan_views.fingerprint(manifest, "warehouse")
    assert plan_views.fingerprint(manifest, "copy") != before

    code = copy.deepcopy(manifest)
    code["nodes"][PLAN_MODEL]["checksum"]["checksum"] = "0" * 64
    assert plan_views.fingerprint(code, "warehouse") != before

    unrelated = copy.deepcopy(manifest)
    mart = next(n for n in unrelated["nodes"].values() if n["fqn"][1:2] == ["marts"])
    mart["checksum"]["checksum"] = "0" * 64
    assert plan_views.fingerprint(unrelated, "warehouse") == before


def test_views_are_current_only_when_each_carries_this_warehouses_fingerprint(manifest, tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert not plan_views.are_current(con, manifest)  # no views yet
        con.execute("create schema plan")
        for view in ("repository_list_freshness", "repository_refresh_plan"):
            con.execute(f"create view plan.{view} as select 1 as x")
        assert not plan_views.are_current(con, manifest)  # built, never marked

        plan_views.mark_current(con, manifest)
        assert plan_views.are_current(con, manifest)

        con.execute("comment on view plan.repository_list_freshness is 'stale'")
        assert not plan_views.are_current(con, manifest)
        plan_views.mark_current(con, manifest)
        con.execute("create or replace view plan.repository_refresh_plan as select 2 as x")  # dbt replaced it
        assert not plan_views.are_current(con, manifest)


def test_a_copied_warehouse_file_is_not_current(manifest, tmp_path):
    # dbt's views name their sources by catalog, and a copy's catalog is its new file name.
    original = tmp_path / "original.duckdb"
    with duckdb.connect(str(original)) as con:
        con.execute("create schema plan")
        for view in ("repository_list_freshness", "repository_refresh_plan"):
            con.execute(f"create view plan.{view} as select 1 as x")
        plan_views.mark_current(con, manifest)
    copied = tmp_path / "copied.duckdb"
    copied.write_bytes(original.read_bytes())
    with duckdb.connect(str(copied)) as con:
        assert not plan_views.are_current(con, manifest)


def test_the_views_are_needed_once_a_sync_is_complete(tmp_path):
    """Only an incremental sync reads the plan views, and a workspace syncs incrementally only from a complete
    snapshot: before the warehouse has one (no raw schema yet, or syncs that did not complete), dbt is not run
    for them."""
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert not plan_views.needed(con)  # an empty file
        create_raw_schema(con)
        assert not plan_views.needed(con)
        for n, status in enumerate(["running", "interrupted", "suspect", "failed"]):
            con.execute(
                "INSERT INTO raw.syncs (sync_id, started_at, status) VALUES (?, now(), ?)", [f"s{n}", status]
            )
        assert not plan_views.needed(con)
        con.execute("INSERT INTO raw.syncs (sync_id, started_at, status) VALUES ('done', now(), 'complete')")
        assert plan_views.needed(con)
