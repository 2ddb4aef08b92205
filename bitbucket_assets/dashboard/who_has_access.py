"""The dashboard's "Who has access" page: one repository or project, everyone who can reach it at the
snapshot, the highest permission first, with a count per permission and filters by permission and by the kind
of path (direct grant, group, project, workspace owner), all in the URL and run in SQL."""

from __future__ import annotations

import streamlit as st

from bitbucket_assets.dashboard import data
from bitbucket_assets.dashboard.widgets import (
    View,
    choose,
    counted,
    download,
    headers,
    linked_table,
    person_link,
    plain,
    say,
)

TITLE = "Who has access"
ANY = "any"
KNOWN_PERMISSIONS = ("read", "write", "admin", "create-repo", "owner", "member", "none")


def render(view: View) -> None:
    st.title(TITLE)
    options = data.resources(view.workspace)
    keys = [f"{r.workspace_slug}|{r.resource_type}|{r.resource_key}" for r in options.itertuples()]
    if not keys:
        say(f"No repository or project in {view.scope}.", css="bb-note")
        return
    resource = choose("Repository or project", keys, "resource", fmt=lambda k: " / ".join(k.split("|")))
    ws, kind, key = resource.split("|")
    say(f"{kind} {ws}/{key}", tag="h3")
    counts = data.access_counts(ws, kind, key, view.as_of)
    total = int(counts.users.sum())
    cols = st.columns(1 + max(len(counts), 1))
    cols[0].metric("Users with access", total)
    for col, row in zip(cols[1:], counts.itertuples(), strict=False):
        # A metric's label is Markdown: only the permissions Bitbucket documents are shown as they are.
        label = row.permission if row.permission in KNOWN_PERMISSIONS else "other permission"
        col.metric(label, int(row.users))
    filters = st.columns(2)
    permission = choose(
        "Permission", [ANY, *counts.permission], "permission", where=filters[0], fmt=_permission_label(counts)
    )
    path_kind = choose(
        "Through", [ANY, *data.PATH_KINDS], "path", where=filters[1], fmt=lambda k: data.PATH_KINDS.get(k, k)
    )
    table = data.who_has_access(
        ws,
        kind,
        key,
        view.as_of,
        permission=None if permission == ANY else permission,
        path_kind=None if path_kind == ANY else path_kind,
    )
    filtered = permission != ANY or path_kind != ANY
    matching = "match the filters" if filtered else "in all"
    say(f"{counted(len(table), 'user')} {matching}, the highest permission first.", css="bb-caption")
    people_links = [
        person_link(name, uuid) for name, uuid in zip(table.user_display_name, table.user_uuid, strict=True)
    ]
    shown = table.drop(columns=["user_uuid", "user_display_name", "permission_rank"])
    linked_table(headers(shown), "Person", people_links)
    download(
        table,
        "who-has-access",
        ws=ws,
        kind=kind,
        key=key,
        as_of=f"{view.as_of_day:%Y-%m-%d}",
        permission=None if permission == ANY else permission,
        path=None if path_kind == ANY else path_kind,
    )
    st.subheader("History")
    history = data.resource_history(ws, kind, key)
    st.dataframe(plain(headers(history)), width="stretch", hide_index=True)


def _permission_label(counts):
    users = dict(zip(counts.permission, counts.users, strict=True))
    return lambda p: p if p == ANY else f"{p} ({counted(int(users[p]), 'user')})"
