"""The dashboard's "Changes" page: over a period (From/To in the URL), what happened to each person, the
latest first: joined, left, moved, groups joined and left, repositories and projects gained and lost; each
person's grant-path rows one click away (`user=` in the URL), every row of the period with `user=all`.
Filtered and aggregated in SQL (data.CHANGE_SUMMARY)."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from bitbucket_assets.dashboard import data, rendering
from bitbucket_assets.dashboard.rendering import Link
from bitbucket_assets.dashboard.widgets import (
    View,
    choose,
    choose_date,
    counted,
    download,
    end_of,
    headers,
    link,
    linked_table,
    param,
    person_link,
    resource_link,
    say,
    start_of,
)

TITLE = "Changes"
EVERYONE = "everyone"


def render(view: View) -> None:
    st.title(TITLE)
    dates = st.columns(3)
    start = choose_date("From", "from", view.as_of_day - timedelta(days=6), where=dates[0])
    end = choose_date("To", "to", view.as_of_day, where=dates[1])
    what = choose("What happened", [EVERYONE, *data.WHAT], "what", where=dates[2])
    since, until = start_of(start), end_of(end)
    period = {"from": start.isoformat(), "to": end.isoformat()}
    counts = data.change_counts(since, until, view.workspace)
    everyone = data.change_summary(since, until, view.workspace)
    summary = everyone if what == EVERYONE else everyone[everyone.what == what].reset_index(drop=True)
    cols = st.columns(6)
    for col, kind in zip(cols, data.WHAT, strict=False):
        col.metric(kind.capitalize(), int((everyone.what == kind).sum()))
    for col, kind in zip(cols[4:], ("added", "removed"), strict=True):
        col.metric(f"Paths {kind}", f"{counts.get(kind, 0):,}")
    say(
        f"{view.scope}, from {start:%Y-%m-%d} to the end of {end:%Y-%m-%d} (UTC): "
        f"{counted(len(everyone), 'person', 'people')} whose access changed, the latest first; "
        f"{counts.get('added', 0):,} grant paths added, {counts.get('removed', 0):,} removed, "
        f"{counts.get('changed', 0):,} changed permission.",
        css="bb-caption",
    )
    user = param("user")
    if user:
        person_rows(view, user, since, until, period)
        return
    st.subheader("By person")
    links = [
        person_link(name, uuid)
        for name, uuid in zip(summary.user_display_name, summary.user_uuid, strict=True)
    ]
    rows = [
        Link(counted(int(n), "row"), link(TITLE, user=uuid, **period))
        for n, uuid in zip(summary.path_rows, summary.user_uuid, strict=True)
    ]
    shown = summary.drop(columns=["user_display_name", "user_uuid", "user_account_id"]).rename(
        columns={"workspace_slug": "workspace", "last_changed_at": "last_change"}
    )
    linked_table(headers(shown), "Person", links, more={"Path rows": rows})
    download(summary, "changes-by-person", ws=view.workspace, start=period["from"], end=period["to"])
    every = sum(counts.values())
    st.html(
        rendering.anchor(
            Link(
                f"Every grant-path row of the period ({every:,}), groups' own grants included",
                link(TITLE, user="all", **period),
            )
        )
    )


def person_rows(view: View, user: str, since, until, period: dict[str, str]) -> None:
    """One person's grant-path rows over the period (`user=all`: everyone's), newest first."""
    table = data.changes(since, until, view.workspace, None if user == "all" else user)
    if user == "all":
        say("Every grant-path row", tag="h3")
    else:
        name = table.name.iloc[0] if len(table) else user
        say(f"Grant-path rows of {name}", tag="h3")
        st.html(rendering.anchor(Link("Their Person page", link("Person", user=user))))
    st.html(rendering.anchor(Link("Back to everyone", link(TITLE, **period))))
    links = [
        person_link(n, u) if t == "user" else f"group {n}"
        for n, u, t in zip(table.name, table.principal_id, table.principal_type, strict=True)
    ]
    resources = [
        resource_link(w, t, k)
        for w, t, k in zip(table.workspace_slug, table.resource_type, table.resource_key, strict=True)
    ]
    shown = table[["changed_at", "change", "resource_key", "path", "old_permission", "new_permission"]]
    shown = shown.rename(columns={"resource_key": "resource"})
    linked_table(headers(shown), "Who", links, more={"Resource": resources})
    download(
        table,
        "changes",
        ws=view.workspace,
        user=None if user == "all" else user.strip("{}"),
        start=period["from"],
        end=period["to"],
    )
