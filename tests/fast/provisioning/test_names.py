"""Names for the lines a person reads: the newest snapshot's, by {uuid} or account id; ids where none."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from bitbucket_assets.extraction.raw_schema import create_raw_schema
from bitbucket_assets.provisioning.names import Names, names_for
from bitbucket_assets.services import Attempt


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


def test_a_name_cannot_add_or_rewrite_a_line_of_the_provision_output() -> None:
    """A display name with a newline would print a line of its own (a forged "log head" line); with an escape
    sequence it would rewrite the terminal. Both are shown escaped, as is a planted id."""
    forged = "Ana\n  log head: deadbeef (row 9; signed with the service's key)"
    names = Names(
        users={"{u1}": forged}, groups={("acme", "devs"): "Devs\x1b[2K"}, workspaces={"acme": "Acme\u202e"}
    )
    attempt = Attempt(
        "r1",
        "add",
        "planned",
        None,
        "",
        None,
        person=names.person("{u1}"),
        group=names.group("acme", "devs"),
        workspace=names.workspace("acme"),
    )
    line = attempt.line()
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert line == (
        "  r1: add Ana\\x0a  log head: deadbeef (row 9; signed with the service's key) to Devs\\x1b[2K in "
        "Acme\\u202e -> planned"
    )
    assert names.person("{planted}\n") == "{planted}\\x0a"
