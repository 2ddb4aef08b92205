"""Bitbucket access dashboard: overview, who has access (a resource), a person, changes, risks, provisioning.

Run with `bitbucket-access dashboard` (or `streamlit run bitbucket_assets/dashboard/app.py`). The page, the
workspace, the snapshot date and each page's choice live in the URL, so any view can be linked; tables
download as CSV named after the view and its parameters; people and resources link to their pages.

Names come from Bitbucket, where anyone types them: none is ever interpreted (`rendering.py`). Text holding
one is shown by `say` and `linked_table`, HTML-escaped into elements of the dashboard's own, never through
Streamlit's Markdown; data frames, pickers and charts get `visible` text. The only links are the dashboard's,
built by `link`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

import altair as alt
import pandas as pd
import streamlit as st

from bitbucket_assets.dashboard import change_control, data, freshness, rendering
from bitbucket_assets.dashboard.rendering import Link
from bitbucket_assets.reporting.safe_text import spreadsheet_cell, visible

PAGES = ("Overview", "Who has access", "Person", "Changes", "Risks", "Change control", "Provisioning")
ALL = "All workspaces"
TABLE_ROWS = 300  # rows shown as a linked table; the download holds them all


def say(text, tag: str = "p", css: str = "", where=st) -> None:
    """Text that may hold names, in one element of the dashboard's own: shown as typed, never as Markdown."""
    where.html(rendering.element(text, tag, css))


st.set_page_config(page_title="Bitbucket access", layout="wide")
st.html(rendering.CSS)
if data.sign_in_required():
    # Nothing below runs, and no query is made, until the identity provider has signed the user in.
    if not st.user.get("is_logged_in", False):
        st.title("Bitbucket access")
        st.write("Sign in to see who can reach what.")
        if st.button("Sign in"):
            st.login()
        st.stop()
    say(
        f"Signed in as {st.user.get('email') or st.user.get('name') or 'you'}",
        css="bb-caption",
        where=st.sidebar,
    )
    if st.sidebar.button("Sign out"):
        st.logout()


# ---- the view's state, kept in the URL ----


def param(name: str, default: str | None = None) -> str | None:
    return st.query_params.get(name, default)


def choose(label: str, options: list, name: str, fmt=str):
    """A select box whose choice is the URL parameter `name` (kept when the URL names an option)."""
    wanted = param(name)
    keys = [str(o) for o in options]
    index = keys.index(wanted) if wanted in keys else 0
    shown = lambda option: visible(fmt(option))  # noqa: E731 - a picker shows names as typed
    choice = st.sidebar.selectbox(label, options, index=index, format_func=shown, key=f"pick_{name}")
    st.query_params[name] = str(choice)
    return choice


def link(page: str, **extra: str) -> str:
    """A relative link to `page` with the current workspace and date, plus `extra` parameters."""
    keep = {k: st.query_params[k] for k in ("ws", "as_of") if k in st.query_params}
    return "?" + urlencode({"page": page, **keep, **extra})


def end_of(day: date) -> datetime:
    return datetime.combine(day, time.max).replace(tzinfo=UTC)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame for `st.dataframe` and charts (plain text): readable timestamps, and every text cell with its
    control and bidi characters shown as escapes."""
    return readable(frame).map(lambda v: visible(v) if isinstance(v, str) else v)


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps as `YYYY-MM-DD HH:MM UTC`, not ISO strings with microseconds."""
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M UTC").fillna("")
    return out


def download(frame: pd.DataFrame, view: str, **parameters) -> None:
    """The whole table as CSV (cells made inert for spreadsheets), named after the view and its parameters."""
    parts = [view, *(str(v) for v in parameters.values() if v)]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts)).strip("-") + ".csv"
    safe = readable(freshness.stamped(frame)).map(lambda v: spreadsheet_cell(v) if isinstance(v, str) else v)
    st.download_button(
        f"Download {len(frame)} rows (CSV)",
        safe.to_csv(index=False),
        file_name=name,
        mime="text/csv",
        key=f"download_{view}",
    )


def linked_table(frame: pd.DataFrame, column: str, links: Sequence[Link]) -> None:
    """A static table whose first column, `column`, holds the dashboard's `links` (the first TABLE_ROWS rows;
    the download has them all)."""
    shown = readable(frame).head(TABLE_ROWS)
    rows = list(shown.itertuples(index=False, name=None))
    st.html(rendering.linked_table(column, links[:TABLE_ROWS], list(shown.columns), rows))
    if len(frame) > TABLE_ROWS:
        st.caption(f"First {TABLE_ROWS} of {len(frame)} rows: download the CSV for all of them.")


requested = param("page", "Overview")
page = st.sidebar.radio("Page", PAGES, index=PAGES.index(requested) if requested in PAGES else 0, key="page")
st.query_params["page"] = page

try:
    spaces = data.workspaces()
    chosen_ws = choose("Workspace", [ALL, *spaces], "ws")
    workspace = None if chosen_ws == ALL else chosen_ws
    days = data.snapshot_dates()
    if not days:
        raise FileNotFoundError("the warehouse holds no complete sync yet: run `bitbucket-access sync` first")
    as_of_day = choose("Snapshot date", days, "as_of", fmt=lambda d: f"{d:%Y-%m-%d}")
    as_of = end_of(as_of_day)
    st.sidebar.caption(f"As of the end of {as_of_day:%Y-%m-%d} (UTC): what the last sync that day saw.")
    say(f"Warehouse (read copy): {data.warehouse_path()}", css="bb-caption", where=st.sidebar)
    freshness.render(st.sidebar)
    scope = workspace or "every workspace"

    if page == "Overview":
        st.title("Overview")
        series = data.trends(workspace)
        shown = series[series.synced_at <= pd.Timestamp(as_of)]
        latest = shown.iloc[-1] if len(shown) else series.iloc[0]
        cols = st.columns(len(data.MEASURES))
        for col, (name, title) in zip(cols, data.MEASURES.items(), strict=True):
            col.metric(title, f"{int(latest[name]):,}")
        say(
            f"{scope}, at the last sync of {as_of_day:%Y-%m-%d}; {len(series)} snapshots from "
            f"{series.synced_at.min():%Y-%m-%d} to {series.synced_at.max():%Y-%m-%d}",
            css="bb-caption",
        )
        marker = (
            alt.Chart(pd.DataFrame({"as_of": [pd.Timestamp(as_of)]}))
            .mark_rule(strokeDash=[4, 4])
            .encode(x="as_of:T")
        )
        grid = st.columns(3)
        for i, (name, title) in enumerate(data.MEASURES.items()):
            line = (
                alt.Chart(series)
                .mark_line(point=True)
                .encode(
                    x=alt.X("synced_at:T", title=None, axis=alt.Axis(format="%b %d")),
                    y=alt.Y(
                        f"{name}:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(format=",.0f")
                    ),
                    tooltip=[alt.Tooltip("synced_at:T", title="snapshot", format="%Y-%m-%d %H:%M"), name],
                )
            )
            grid[i % 3].altair_chart((line + marker).properties(title=title, height=180), width="stretch")
        per_day = data.changes_per_day(workspace)  # its labels are the change kinds, never names
        bars = (
            alt.Chart(per_day)
            .mark_bar()
            .encode(
                x=alt.X("day:T", title=None, axis=alt.Axis(format="%b %d")),
                y=alt.Y("changes:Q", title=None),
                color=alt.Color("change:N", title="kind"),
                tooltip=["day:T", "change:N", "changes:Q"],
            )
        )
        grid[len(data.MEASURES) % 3].altair_chart(
            bars.properties(title="Changes per day", height=180), width="stretch"
        )

    elif page == "Who has access":
        st.title("Who has access")
        options = data.resources(workspace)
        keys = [f"{r.workspace_slug}|{r.resource_type}|{r.resource_key}" for r in options.itertuples()]
        if not keys:
            say(f"No repository or project in {scope}.", css="bb-note")
            st.stop()
        resource = choose("Repository or project", keys, "resource", fmt=lambda k: " / ".join(k.split("|")))
        ws, kind, key = resource.split("|")
        say(f"{kind} {ws}/{key}", tag="h3")
        table = data.who_has_access(ws, kind, key, as_of)
        st.metric("Users with access", len(table))
        people_links = [
            Link(name, link("Person", user=uuid))
            for name, uuid in zip(table.user_display_name, table.user_uuid, strict=True)
        ]
        linked_table(table.drop(columns=["user_uuid", "user_display_name"]), "person", people_links)
        download(table, "who-has-access", ws=ws, kind=kind, key=key, as_of=f"{as_of_day:%Y-%m-%d}")
        st.subheader("History")
        history = data.resource_history(ws, kind, key)
        st.dataframe(plain(history), width="stretch", hide_index=True)

    elif page == "Person":
        st.title("Person")
        users = data.people(workspace)
        if users.empty:
            say(f"Nobody in {scope}.", css="bb-note")
            st.stop()
        labels = dict(
            zip(
                users.user_uuid,
                [
                    f"{n} ({a or 'no account id'})"
                    for n, a in zip(users.display_name, users.account_id, strict=True)
                ],
                strict=True,
            )
        )
        user_uuid = choose("User", list(labels), "user", fmt=lambda u: labels.get(u, u))
        say(labels[user_uuid], tag="h3")
        access = data.person_access(user_uuid, workspace, as_of)
        st.metric("Resources reachable", len(access))
        resource_links = [
            Link(f"{w}/{k}", link("Who has access", resource=f"{w}|{t}|{k}"))
            for w, t, k in zip(access.workspace_slug, access.resource_type, access.resource_key, strict=True)
        ]
        linked_table(access.drop(columns=["workspace_slug", "resource_key"]), "resource", resource_links)
        download(access, "person", user=user_uuid.strip("{}"), ws=workspace, as_of=f"{as_of_day:%Y-%m-%d}")
        st.subheader("History")
        st.dataframe(plain(data.person_history(user_uuid, workspace)), width="stretch", hide_index=True)

    elif page == "Changes":
        st.title("Changes")
        start = st.date_input("From", as_of_day - timedelta(days=6), key="from")
        end = st.date_input("To", as_of_day, key="to")
        table = data.changes(datetime.combine(start, time.min).replace(tzinfo=UTC), end_of(end), workspace)
        counts = table.groupby("change").size().to_dict() if len(table) else {}
        cols = st.columns(3)
        for col, kind in zip(cols, ("added", "removed", "changed"), strict=True):
            col.metric(kind.capitalize(), int(counts.get(kind, 0)))
        say(f"{scope}, from {start:%Y-%m-%d} to the end of {end:%Y-%m-%d} (UTC)", css="bb-caption")
        st.dataframe(plain(table), width="stretch", hide_index=True)
        download(table, "changes", ws=workspace, start=f"{start:%Y-%m-%d}", end=f"{end:%Y-%m-%d}")

    elif page == "Risks":
        st.title("Risks")
        table = data.risks(as_of, workspace)
        st.metric("Open risks", int(table.is_finding.sum()) if len(table) else 0)
        say(f"{scope}, as of the end of {as_of_day:%Y-%m-%d}", css="bb-caption")
        download(table, "risks", ws=workspace, as_of=f"{as_of_day:%Y-%m-%d}")
        for risk, rows in table.groupby("risk", sort=False):  # the most severe first
            first = rows.iloc[0]
            findings = rows[rows.is_finding]
            count = len(findings) if len(findings) else "checked: none"
            say(f"{risk} ({count}; {first.severity})", tag="h3")
            # The guidance is read from the warehouse like everything else: shown as text, never as Markdown.
            say(f"Why it matters: {first.why_it_matters}", css="bb-guidance")
            say(f"What to do: {first.what_to_do}", css="bb-guidance")
            if len(findings):
                shown = findings.drop(
                    columns=["risk", "severity", "why_it_matters", "what_to_do", "is_finding"]
                )
                st.dataframe(plain(shown), width="stretch", hide_index=True)

    elif page == change_control.TITLE:
        change_control.render(workspace, scope, plain, download)

    elif page == "Provisioning":
        st.title("Provisioning")
        configured, policy = data.approver_policy()
        say(policy, css="bb-caption" if configured else "bb-warning")
        requests, log = data.provisioning(workspace)
        cols = st.columns(3)
        cols[0].metric("Requests", len(requests))
        cols[1].metric("Applied", int((requests.status == "applied").sum()) if len(requests) else 0)
        cols[2].metric("Just-in-time expiries", int((log.outcome == "expired").sum()) if len(log) else 0)
        st.subheader("Requests and approvals")
        st.dataframe(plain(requests), width="stretch", hide_index=True)
        download(requests, "requests", ws=workspace)
        st.subheader("Every attempt")
        st.dataframe(plain(log), width="stretch", hide_index=True)
        campaigns, attestations = data.reviews(workspace)
        st.subheader("Access reviews: campaigns and their completion")
        st.caption("Items decided of items exported, by reviewer (reviewer empty: the whole campaign).")
        st.dataframe(plain(campaigns), width="stretch", hide_index=True)
        download(campaigns, "review-campaigns", ws=workspace)
        st.subheader("Attestations: every keep and revoke, who signed it, and the file's SHA-256")
        st.dataframe(plain(attestations), width="stretch", hide_index=True)
        download(attestations, "attestations", ws=workspace)
except FileNotFoundError as exc:
    say(str(exc), css="bb-error")
