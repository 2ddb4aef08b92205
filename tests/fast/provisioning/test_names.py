"""Names for the lines a person reads: the newest snapshot's, by {uuid} or account id; ids where none."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from bitbucket_assets.extraction.raw_schema import create_raw_schema
from bitbucket_assets.provisioning.names import names_for


def test_the_newest_snapshot_names_people_groups_and_workspaces(tmp_path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        assert names_for(con, {"{u1}"}, {("acme", "devs")}).person("{u1}") == "{u1}"  # no snapshot yet
        create_raw_schema(con)
        for sync_id, day, name in (("s1", 1, "Ana Old"), ("s2", 2, "Ana Silva")):
            con.execute(
                "insert into raw.syncs (sync_id, started_at, status) values (?, ?, 'complete')",
                [sync_id, datetime(2026, 11, day, tzinfo=UTC)],
            )
            con.execute(
                "insert into raw.users (sync_id, user_uuid, account_id, display_name, nickname) "
                "values (?, '{u1}', '557058:a', ?, 'ana')",
                [sync_id, name],
            )
            con.execute(
                "insert into raw.groups (sync_id, workspace_uuid, workspace_slug, group_slug, name) "
                "values (?, '{w}', 'acme', 'devs', ?)",
                [sync_id, f"Developers {day}"],
            )
            con.execute(
                "insert into raw.workspaces (sync_id, workspace_uuid, workspace_slug, name) "
                "values (?, '{w}', 'acme', 'Acme Corp')",
                [sync_id],
            )
        names = names_for(con, {"{u1}", "557058:a", "{nobody}"}, {("acme", "devs")})
    assert names.person("{u1}") == names.person("557058:a") == "Ana Silva (ana)"
    assert names.person("{nobody}") == "{nobody}"
    assert names.group("acme", "devs") == "Developers 2" and names.group("acme", "ops") == "ops"
    assert names.workspace("acme") == "Acme Corp" and names.workspace("other") == "other"
