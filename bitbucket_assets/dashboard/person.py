"""The dashboard's "Person" page: everything one person can reach at the snapshot, the highest permission
first, and the history of their grant paths. People of the same name are told apart in the picker by nickname,
workspaces and how much they reach; the page opens on the person who reaches the most without owning a
workspace (`data.default_person`), not on the sync's own account."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bitbucket_assets.dashboard import data
from bitbucket_assets.dashboard.widgets import (
    View,
    choose,
    counted,
    download,
    headers,
    linked_table,
    plain,
    resource_link,
    say,
)

TITLE = "Person"


def label(row) -> str:
    """How a person is named in the picker and the heading: enough to tell two Kalani Nakamuras apart."""
    handle = f"@{row.nickname}" if isinstance(row.nickname, str) and row.nickname else "no nickname"
    account = row.account_id if isinstance(row.account_id, str) and row.account_id else "no account id"
    where = row.workspaces or "no workspace"
    owner = ", workspace owner" if row.is_workspace_owner else ""
    return (
        f"{row.display_name} ({handle}; {where}; {counted(int(row.resources), 'resource')}{owner}; {account})"
    )


def render(view: View) -> None:
    st.title(TITLE)
    users = data.people(view.workspace)
    if users.empty:
        say(f"Nobody in {view.scope}.", css="bb-note")
        return
    labels = {row.user_uuid: label(row) for row in users.itertuples()}
    user_uuid = choose(
        "User", list(labels), "user", fmt=lambda u: labels.get(u, u), default=data.default_person(users)
    )
    say(labels[user_uuid], tag="h3")
    access = data.person_access(user_uuid, view.workspace, view.as_of)
    st.metric("Resources reachable", len(access))
    resource_links = [
        resource_link(w, t, k)
        for w, t, k in zip(access.workspace_slug, access.resource_type, access.resource_key, strict=True)
    ]
    shown = access.drop(columns=["workspace_slug", "resource_key", "permission_rank"], errors="ignore")
    linked_table(headers(shown), "Resource", resource_links)
    download(
        access, "person", user=user_uuid.strip("{}"), ws=view.workspace, as_of=f"{view.as_of_day:%Y-%m-%d}"
    )
    st.subheader("History")
    history: pd.DataFrame = data.person_history(user_uuid, view.workspace)
    st.dataframe(plain(headers(history)), width="stretch", hide_index=True)
