"""The provisioning copy is published whatever the warehouse file and its tables are called, and nobody else
reads it while it is written (provisioning_copy.py, files.private_staging)."""

from __future__ import annotations

import duckdb
import pytest

from bitbucket_assets.provisioning.tables import create_provisioning_tables
from bitbucket_assets.warehouse.files import private_staging, publish_read_copy
from bitbucket_assets.warehouse.provisioning_copy import publish_provisioning_copy


@pytest.mark.parametrize("name", ["warehouse.duckdb", "bitbucket_access.duckdb", "publishing.duckdb"])
def test_a_warehouse_named_like_the_publishers_alias_is_published(tmp_path, name) -> None:
    # `warehouse.duckdb` is what the deployment tests (and anyone) may call it: its staging file's catalog
    # was `warehouse`, the alias the warehouse itself is attached under.
    db = tmp_path / name
    with duckdb.connect(str(db)) as con:
        create_provisioning_tables(con)
        con.execute("insert into provisioning.leavers (user_id, left_on) values ('{u}', current_date)")
    published = publish_provisioning_copy(str(db))
    assert published is not None and published.exists()
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("select user_id from provisioning.leavers").fetchall() == [("{u}",)]
    assert not list(tmp_path.glob("*.tmp"))
    assert not list(tmp_path.glob(".publishing-*"))


def test_a_table_whose_name_has_a_quote_is_copied_as_named(tmp_path) -> None:
    # Whoever can write the warehouse can name a table so; it must neither break the publish nor inject SQL.
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        create_provisioning_tables(con)
        con.execute('create table provisioning."odd"" name" as select 1 as x')
    published = publish_provisioning_copy(str(db))
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute('select x from provisioning."odd"" name"').fetchall() == [(1,)]


def test_copies_are_written_where_only_their_user_can_look_and_get_the_warehouses_bits(tmp_path) -> None:
    left = tmp_path / ".publishing-w.read.duckdb-killed"  # what a publisher killed mid-copy leaves
    left.mkdir()
    (left / "w.read.duckdb.tmp").write_bytes(b"a whole copy")
    with private_staging(tmp_path / "w.read.duckdb", "w.read.duckdb.tmp") as staging:
        assert staging.parent.parent == tmp_path and staging.parent.stat().st_mode & 0o777 == 0o700
        assert not left.exists()
    assert not staging.parent.exists()
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as con:
        create_provisioning_tables(con)
    db.chmod(0o640)
    read_copy = publish_read_copy(str(db))
    side = read_copy.with_name("w.read.provisioning.duckdb")
    assert read_copy.stat().st_mode & 0o777 == side.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
