"""The names a person reads in place of ids: a user's display name (with the nickname that tells two people of
the same name apart), a group's name and a workspace's, as the newest snapshot that saw them says. Ids stay in
the provisioning log and the CSVs; these are for lines a person reads (the `provision` command's plan and
outcome). Read from the raw snapshot, so they work before any dbt build (the demo's first days)."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from ..reporting.safe_text import visible


@dataclass(frozen=True)
class Names:
    users: dict[str, str] = field(default_factory=dict)  # user {uuid} or account id -> "Name (nickname)"
    groups: dict[tuple[str, str], str] = field(default_factory=dict)  # (workspace, group slug) -> name
    workspaces: dict[str, str] = field(default_factory=dict)  # workspace slug -> name

    # Names (and the ids in their place) come from Bitbucket and the warehouse: a newline or an escape
    # sequence in one must not add or rewrite a line of the output they are put in, so each is shown escaped.
    def person(self, user_id: str | None) -> str:
        return visible(self.users.get(user_id or "", user_id or "?"))

    def group(self, workspace: str | None, slug: str | None) -> str:
        return visible(self.groups.get((workspace or "", slug or ""), slug or "?"))

    def workspace(self, slug: str | None) -> str:
        return visible(self.workspaces.get(slug or "", slug or "?"))


def names_for(con: duckdb.DuckDBPyConnection, user_ids: set[str], groups: set[tuple[str, str]]) -> Names:
    """The newest names of these users (by {uuid} or account id) and groups, and of their workspaces, from the
    snapshots in the warehouse; an id no snapshot named stays as it is (`Names.person` returns it)."""
    try:
        users = con.execute(
            """
            with seen as (
                select u.user_uuid, u.account_id, u.display_name, u.nickname, s.started_at
                from raw.users u join raw.syncs s using (sync_id)
                where u.user_uuid in (select unnest(?)) or u.account_id in (select unnest(?))
            )
            select user_uuid, arg_max(account_id, started_at), arg_max(display_name, started_at),
                   arg_max(nickname, started_at)
            from seen group by user_uuid
            """,
            [sorted(user_ids), sorted(user_ids)],
        ).fetchall()
        group_rows = con.execute(
            """
            select g.workspace_slug, g.group_slug, arg_max(g.name, s.started_at)
            from raw.groups g join raw.syncs s using (sync_id)
            group by all
            """
        ).fetchall()
        workspace_rows = con.execute(
            "select w.workspace_slug, arg_max(w.name, s.started_at) from raw.workspaces w "
            "join raw.syncs s using (sync_id) group by all"
        ).fetchall()
    except duckdb.CatalogException:  # no snapshot yet: ids it is
        return Names()
    people: dict[str, str] = {}
    for uuid, account_id, display_name, nickname in users:
        if not display_name:
            continue
        label = display_name + (f" ({nickname})" if nickname and nickname != display_name else "")
        people[uuid] = label
        if account_id:
            people[account_id] = label
    return Names(
        users=people,
        groups={(ws, slug): name for ws, slug, name in group_rows if (ws, slug) in groups and name},
        workspaces={slug: name for slug, name in workspace_rows if name},
    )
