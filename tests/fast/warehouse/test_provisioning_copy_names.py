"""The provisioning copy is published whatever the warehouse file is called (provisioning_copy.py)."""

from __future__ import annotations

import duckdb
import pytest

from bitbucket_assets.provisioning.tables import create_provisioning_tables
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
