"""Each warehouse's dbt target directory says which warehouse it belongs to (dbt_runs.target_for), and the
test session removes only its own by that file (tests/support/warehouses.remove_dbt_targets_under)."""

from __future__ import annotations

from bitbucket_assets.warehouse.dbt_runs import WAREHOUSE_NAME_FILE, target_for, warehouse_target
from bitbucket_assets.warehouse.files import DBT_PROJECT_DIR
from tests.support.warehouses import remove_dbt_targets_under


def test_a_target_directory_names_its_warehouse_and_only_the_sessions_own_are_removed(tmp_path) -> None:
    ours, theirs = tmp_path / "session" / "w.duckdb", tmp_path / "elsewhere" / "w.duckdb"
    for database in (ours, theirs):
        with target_for(str(database)) as target:
            assert target == warehouse_target(str(database))
    named = {
        database: DBT_PROJECT_DIR / warehouse_target(str(database)) / WAREHOUSE_NAME_FILE
        for database in (ours, theirs)
    }
    try:
        assert {d: n.read_text() for d, n in named.items()} == {ours: f"{ours}\n", theirs: f"{theirs}\n"}
        remove_dbt_targets_under(tmp_path / "session")
        assert not named[ours].parent.exists() and named[theirs].exists()
    finally:
        remove_dbt_targets_under(tmp_path)
    assert not named[theirs].parent.exists()


def test_a_motherduck_warehouse_is_named_without_its_query_string(tmp_path) -> None:
    name = f"md:bitbucket_access_{tmp_path.name}"  # a session's own: another may run on this checkout
    database = f"{name}?motherduck_token=ATATT3xNotForAFile"
    with target_for(database) as target:
        named = DBT_PROJECT_DIR / target / WAREHOUSE_NAME_FILE
    try:
        assert named.read_text() == f"{name}\n"
    finally:
        named.unlink()
        (named.parent / ".lock").unlink()
        named.parent.rmdir()
