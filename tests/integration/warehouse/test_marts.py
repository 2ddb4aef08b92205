"""The dbt marts over several syncs of `tiny`: contracts, expansion rules, history, reconciliation."""

from __future__ import annotations

import duckdb
import pytest

from bitbucket_assets.warehouse.dbt_runs import run_dbt
from tests.support.warehouses import History, run_pipeline

MARTS = {
    "fct_grants": {
        "sync_id",
        "synced_at",
        "workspace_slug",
        "resource_type",
        "resource_id",
        "resource_key",
        "resource_name",
        "principal_type",
        "principal_id",
        "principal_name",
        "user_account_id",
        "permission",
        "grant_source",
        "via_group_slug",
        "via_project_key",
    },
    "fct_effective_access": {
        "workspace_slug",
        "resource_type",
        "resource_key",
        "user_uuid",
        "user_account_id",
        "permission",
        "grant_path_count",
        "grant_paths",
    },
    "fct_grant_history": {"valid_from", "valid_to", "permission", "grant_source"},
    "fct_access_changes": {"sync_id", "changed_at", "change"},
    "dim_users": {"user_uuid"},
    "dim_groups": {"group_slug"},
    "dim_projects": {"project_key"},
    "dim_repositories": {"repository_slug"},
    "dim_workspaces": {"workspace_slug"},
}


def effective(h: History, repo: str) -> dict[str, str]:
    rows = h.query(
        "select u.nickname, e.permission from marts.fct_effective_access e join marts.dim_users u using "
        "(user_uuid) where e.resource_type = 'repository' and e.resource_key = ?",
        [repo],
    )
    return dict(rows)


@pytest.mark.parametrize("mart", sorted(MARTS))
def test_contract_columns(tiny_history: History, mart: str) -> None:
    columns = {r[0] for r in tiny_history.query(f"describe marts.{mart}")}
    assert MARTS[mart] <= columns


def test_every_dbt_test_and_check_passed(tiny_history: History) -> None:
    for run in tiny_history.runs:
        assert len(run.checks) >= 30
        assert [name for name, check in run.checks.items() if not check["passed"]] == []


def test_expansion_rules_on_payments_api(tiny_history: History) -> None:
    # Day 3: ben is back in developers. ana: direct read + developers write + project PAY admin -> admin.
    got = effective(tiny_history, "payments-api")
    assert got == {
        "svc": "admin",
        "olga": "admin",
        "ana": "admin",
        "ben": "write",
        "lena": "write",
        "cleo": "write",
        "finn": "write",
        "dev": "write",
        "carl": "write",
        "deploy-bot": "write",
    }
    paths = tiny_history.query(
        "select grant_source, via_group_slug, via_project_key, permission from marts.fct_grants g "
        "join marts.dim_users u on g.principal_id = u.user_uuid "
        "where u.nickname = 'ana' and resource_key = 'payments-api' order by all"
    )
    assert paths == [
        ("direct", None, None, "read"),
        ("group", "developers", None, "write"),
        ("project", "developers", "PAY", "read"),
        ("project", None, "PAY", "admin"),
    ]
    cleo = tiny_history.query(
        "select grant_paths from marts.fct_effective_access e join marts.dim_users u using (user_uuid) "
        "where u.nickname = 'cleo' and resource_key = 'payments-api'"
    )
    assert cleo == [(["project via group leads via project PAY: write"],)]  # create-repo -> write


def test_owner_is_admin_everywhere_and_orphans_reach_only_owners(tiny_history: History) -> None:
    assert effective(tiny_history, "orphan-repo") == {"svc": "admin", "olga": "admin"}
    owners_everywhere = tiny_history.query(
        "select count(*) from marts.fct_grants where grant_source = 'workspace' and resource_type = "
        "'repository' and workspace_slug = 'tiny-co'"
    )
    assert owners_everywhere == [(2 * 5,)]


def test_history_revocation_and_regrant(tiny_history: History) -> None:
    ben = tiny_history.user("ben")
    versions = tiny_history.query(
        "select valid_from, valid_to, first_seen_sync_id, closed_by_sync_id from marts.fct_grant_history "
        "where principal_id = ? and resource_type = 'group' and resource_key = 'developers' order by "
        "valid_from",
        [ben.uuid],
    )
    s1, s2, s3 = tiny_history.sync_ids
    assert [(v[2], v[3]) for v in versions] == [(s1, s2), (s3, None)]  # closed on day 2, re-granted on day 3
    assert versions[0][1] < versions[1][0]
    # One open version per grant path, whatever happened.
    assert tiny_history.query(
        "select count(*) from (select grant_key from marts.fct_grant_history where valid_to is null "
        "group by grant_key having count(*) > 1)"
    ) == [(0,)]
    current = tiny_history.query("select count(*) from marts.fct_grant_history where is_current")[0][0]
    assert current == tiny_history.query("select count(*) from marts.fct_grants")[0][0]


def test_access_changes(tiny_history: History) -> None:
    s1, s2, s3 = tiny_history.sync_ids
    rows = tiny_history.query(
        "select c.sync_id, c.change, u.nickname, c.resource_key, c.grant_source, c.old_permission, "
        "c.new_permission from marts.fct_access_changes c join marts.dim_users u on c.principal_id = "
        "u.user_uuid where c.resource_type in ('repository', 'group') and u.nickname in ('ben', 'finn', "
        "'zoe') order by all"
    )
    assert (s2, "removed", "ben", "developers", "direct", "member", None) in rows
    assert (s2, "removed", "ben", "payments-api", "group", "write", None) in rows
    assert (s2, "added", "finn", "leads", "direct", None, "member") in rows
    assert (s2, "changed", "zoe", "runbooks", "direct", "read", "admin") in rows
    assert (s3, "added", "ben", "payments-api", "group", None, "write") in rows
    assert not [r for r in rows if r[0] == s1]  # the first sync is the baseline, not a wave of additions


def test_as_of_macros(tiny_history: History) -> None:
    ben = tiny_history.user("ben")
    day2 = tiny_history.query(
        "select finished_at from raw.syncs where sync_id = ?", [tiny_history.sync_ids[1]]
    )[0][0]
    on_day2 = tiny_history.query(
        "select permission from marts.effective_access_as_of(?) where user_uuid = ? and resource_key = "
        "'payments-api'",
        [day2, ben.uuid],
    )
    assert on_day2 == []  # out of developers that day: no path to payments-api at all
    now = tiny_history.query(
        "select permission from marts.effective_access_as_of(now()) "
        "where user_uuid = ? and resource_key = 'payments-api'",
        [ben.uuid],
    )
    assert now == [("write",)]


def test_reconciliation_compared_rows(tiny_history: History) -> None:
    check = tiny_history.runs[-1].checks["effective_access_matches_bitbucket"]
    assert check["passed"] and check["metadata"]["compared_rows"] > 100
    # The result is stored in the warehouse, one row per sync that was the latest at a build.
    stored = tiny_history.query(
        "select sync_id, compared_rows, mismatches, passed from marts.fct_reconciliations order by synced_at"
    )
    assert [row[0] for row in stored] == tiny_history.sync_ids
    assert all(compared > 100 and mismatches == 0 and passed for _, compared, mismatches, passed in stored)
    assert stored[-1][1] == check["metadata"]["compared_rows"]
    assert tiny_history.query("select count(*) from marts.fct_reconciliation_mismatches") == [(0,)]


def test_rerun_without_a_new_sync_changes_nothing(tiny_history: History, tmp_path) -> None:
    import shutil

    copy = str(tmp_path / "copy.duckdb")
    shutil.copy(tiny_history.db, copy)
    before = History(copy, tiny_history.org).query(
        "select * from marts.fct_grant_history order by grant_version_id"
    )
    result = run_pipeline(
        "http://127.0.0.1:9",
        "x@example.com",
        copy,
        selection="key:marts/* or key:staging/* or key:intermediate/*",
    )
    assert result.success
    after = History(copy, tiny_history.org).query(
        "select * from marts.fct_grant_history order by grant_version_id"
    )
    assert after == before


HISTORY_MARTS = {
    # last_sync_at says which run wrote a row, so it differs by design between the builds.
    "fct_grant_history": "* exclude (last_sync_at)",
    "fct_access_changes": "*",
    "fct_workspace_trends": "*",
    "fct_sync_summary": "*",
}


def _dbt_run(db: str, *args: str) -> None:
    """`dbt run` on `db` as the sync job runs dbt (`run_dbt`: its vars and the warehouse's own target
    directory, whose parse of the project the worker's later runs on that path reuse)."""
    done = run_dbt(db, "run", *args)
    assert done.returncode == 0, done.stdout[-2000:]


def _history_marts(db: str) -> dict[str, list[tuple]]:
    h = History(db, None)
    return {
        m: sorted(h.query(f"select {cols} from marts.{m}"), key=repr) for m, cols in HISTORY_MARTS.items()
    }


def test_incremental_history_equals_a_full_rebuild(tiny_history: History, warehouse_dir) -> None:
    """The history marts built a day at a time, rebuilt from scratch, and built with two syncs folded in one
    run (as after a missed day) hold the same rows: the incremental models skip only what cannot change. At
    the worker's warehouse paths, whose parse of the project dbt most likely has already."""
    import shutil

    full, folded = str(warehouse_dir / "w.duckdb"), str(warehouse_dir / "day1.duckdb")
    shutil.copy(tiny_history.db, full)
    shutil.copy(tiny_history.db, folded)
    _dbt_run(full, "--full-refresh", "--select", *HISTORY_MARTS)
    later = tiny_history.sync_ids[1:]
    with duckdb.connect(folded) as con:  # the history as it stood after day 1
        con.execute("update raw.syncs set status = 'held back' where sync_id in (select unnest(?))", [later])
    _dbt_run(folded, "--full-refresh", "--select", *HISTORY_MARTS)
    with duckdb.connect(folded) as con:
        con.execute("update raw.syncs set status = 'complete' where sync_id in (select unnest(?))", [later])
    _dbt_run(folded, "--select", *HISTORY_MARTS)  # days 2 and 3 in one incremental run

    daily = _history_marts(tiny_history.db)
    assert len(daily["fct_sync_summary"]) == 3 and len(daily["fct_access_changes"]) > 0
    assert _history_marts(full) == daily
    assert _history_marts(folded) == daily
