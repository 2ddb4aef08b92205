"""A warehouse built before the history marts had `permission_rank`, `user_display_name` and `access_path`
(and the changes their ranks) gains them on the next build, filled on the rows already there: the columns
are extended, never renamed, and an analyst's old warehouse is not rebuilt from scratch."""

from __future__ import annotations

import shutil
import subprocess

import duckdb

from bitbucket_assets.warehouse.dbt_runs import dbt_vars
from bitbucket_assets.warehouse.files import DBT_PROJECT_DIR, dbt_executable
from tests.support.warehouses import History

ADDED = {
    "fct_grant_history": ("permission_rank", "user_display_name", "access_path"),
    "fct_access_changes": ("old_permission_rank", "new_permission_rank", "user_display_name"),
}


def test_an_older_warehouse_gains_the_new_history_columns_filled(tiny_history: History, tmp_path) -> None:
    db = str(tmp_path / "old.duckdb")
    shutil.copy(tiny_history.db, db)
    with duckdb.connect(db) as con:
        expected = con.execute(
            "select grant_version_id, permission_rank, user_display_name, access_path "
            "from marts.fct_grant_history order by 1"
        ).fetchall()
        for table, columns in ADDED.items():  # as a warehouse built before them holds the table
            for column in columns:
                con.execute(f"alter table marts.{table} drop column {column}")
    command = [dbt_executable(), "build", "--profiles-dir", ".", "--target-path", str(tmp_path / "target")]
    command += ["--select", "fct_grant_history", "fct_access_changes", "--vars", dbt_vars(db)]
    done = subprocess.run(command, cwd=DBT_PROJECT_DIR, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    with duckdb.connect(db, read_only=True) as con:
        rebuilt = con.execute(
            "select grant_version_id, permission_rank, user_display_name, access_path "
            "from marts.fct_grant_history order by 1"
        ).fetchall()
        empty = con.execute(
            "select count(*) filter (where old_permission_rank is null or new_permission_rank is null), "
            "count(*) filter (where principal_type = 'user' and user_display_name is null), count(*) "
            "from marts.fct_access_changes"
        ).fetchone()
    assert rebuilt == expected and len(expected) > 100
    assert empty[:2] == (0, 0) and empty[2] > 0
