"""The dashboard's "Overview" page: the headline measures at the chosen snapshot, one chart each over the
history (scales from zero, so a change of 5 % does not look like a cliff), changes per day, and behind each
measure the list it counts (`?page=Overview&list=owners_and_admins`)."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from bitbucket_assets.dashboard import data, rendering
from bitbucket_assets.dashboard.rendering import Link
from bitbucket_assets.dashboard.widgets import (
    View,
    download,
    headers,
    link,
    linked_table,
    param,
    person_link,
    plain,
    resource_link,
    say,
)

TITLE = "Overview"
CHART_HEIGHT = 180
# Dates on a time axis at most this many ticks, so labels do not collide in a third of 1,000 px.
AXIS = alt.Axis(format="%b %d", labelOverlap=True, tickCount=5, labelAngle=0)
# The change kinds' colours in the changes chart, and their names in its caption.
KINDS = {"added": "#1f77b4", "changed": "#9ecae9", "removed": "#e45756"}
COLOUR_NAMES = {"added": "dark blue", "changed": "light blue", "removed": "red"}


def render(view: View) -> None:
    st.title(TITLE)
    series = data.trends(view.workspace)
    shown = series[series.synced_at <= pd.Timestamp(view.as_of)]
    latest = shown.iloc[-1] if len(shown) else series.iloc[0]
    say(
        f"{view.scope}, at the last sync of {view.as_of_day:%Y-%m-%d}; {len(series)} snapshots from "
        f"{series.synced_at.min():%Y-%m-%d} to {series.synced_at.max():%Y-%m-%d}",
        css="bb-caption",
    )
    marker = (
        alt.Chart(pd.DataFrame({"as_of": [pd.Timestamp(view.as_of)]}))
        .mark_rule(strokeDash=[4, 4])
        .encode(x="as_of:T")
    )
    grid = st.columns(3)
    for i, (name, title) in enumerate(data.MEASURES.items()):
        cell = grid[i % 3]
        cell.metric(title, f"{int(latest[name]):,}")
        if name in data.MEASURE_LISTS:
            cell.html(rendering.anchor(Link(f"List the {title.lower()}", link(TITLE, list=name))))
        line = (
            alt.Chart(series)
            .mark_line(point=True)
            .encode(
                x=alt.X("synced_at:T", title=None, axis=AXIS),
                # From zero: 158 -> 166 users is a small rise, and looks it.
                y=alt.Y(
                    f"{name}:Q",
                    title=None,
                    scale=alt.Scale(zero=True),
                    axis=alt.Axis(format=",.0f", tickCount=4),
                ),
                tooltip=[alt.Tooltip("synced_at:T", title="snapshot", format="%Y-%m-%d %H:%M"), name],
            )
        )
        cell.altair_chart((line + marker).properties(title=title, height=CHART_HEIGHT), width="stretch")
    per_day = data.changes_per_day(view.workspace)  # its labels are the change kinds, never names
    bars = (
        alt.Chart(per_day)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title=None, axis=AXIS),
            y=alt.Y(
                "changes:Q", title=None, scale=alt.Scale(zero=True), axis=alt.Axis(format=",.0f", tickCount=3)
            ),
            # No legend: in a third of the page it takes the bars' height; the caption names the colours.
            color=alt.Color(
                "change:N", scale=alt.Scale(domain=list(KINDS), range=list(KINDS.values())), legend=None
            ),
            tooltip=["day:T", "change:N", "changes:Q"],
        )
    )
    cell = grid[len(data.MEASURES) % 3]
    cell.metric("Grant-path changes", f"{int(per_day.changes.sum()):,}")
    cell.html(rendering.anchor(Link("List the changes by person", link("Changes"))))
    cell.altair_chart(bars.properties(title="Changes per day", height=CHART_HEIGHT), width="stretch")
    say(", ".join(f"{kind}: {colour}" for kind, colour in COLOUR_NAMES.items()), css="bb-caption", where=cell)
    measure = param("list")
    if measure in data.MEASURE_LISTS:
        show_list(view, measure)


def show_list(view: View, measure: str) -> None:
    """The rows behind one measure, people and repositories linked to their pages."""
    title = data.MEASURES[measure]
    table = data.measure_list(measure, view.workspace, view.as_of)
    st.subheader(f"{title}: {len(table):,}")
    say(f"{view.scope}, held at the end of {view.as_of_day:%Y-%m-%d}", css="bb-caption")
    if "user_uuid" in table.columns:
        links = [person_link(n, u) for n, u in zip(table.user_display_name, table.user_uuid, strict=True)]
        shown = table.drop(columns=["user_uuid", "user_display_name"])
        linked_table(headers(shown), "Person", links)
    elif measure == "repositories":
        links = [
            resource_link(w, "repository", k)
            for w, k in zip(table.workspace_slug, table.repository_slug, strict=True)
        ]
        linked_table(headers(table.drop(columns=["repository_slug"])), "Repository", links)
    else:
        st.dataframe(plain(headers(table)), width="stretch", hide_index=True)
    download(table, f"overview-{measure}", ws=view.workspace, as_of=f"{view.as_of_day:%Y-%m-%d}")
