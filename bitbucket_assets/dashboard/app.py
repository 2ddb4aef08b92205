"""Bitbucket access dashboard: overview, who has access, a person, changes, risks, provisioning.

Run with `bitbucket-access dashboard` (or `streamlit run bitbucket_assets/dashboard/app.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import altair as alt
import streamlit as st

from bitbucket_assets.dashboard import data

PAGES = ("Overview", "Who has access", "Person", "Changes", "Risks", "Provisioning")

st.set_page_config(page_title="Bitbucket access", layout="wide")
if data.sign_in_required():
    # Nothing below runs, and no query is made, until the identity provider has signed the user in.
    if not st.user.get("is_logged_in", False):
        st.title("Bitbucket access")
        st.write("Sign in to see who can reach what.")
        if st.button("Sign in"):
            st.login()
        st.stop()
    st.sidebar.caption(f"Signed in as {st.user.get('email') or st.user.get('name') or 'you'}")
    if st.sidebar.button("Sign out"):
        st.logout()
requested = st.query_params.get("page", "Overview")
page = st.sidebar.radio("Page", PAGES, index=PAGES.index(requested) if requested in PAGES else 0, key="page")
st.sidebar.caption(f"Warehouse (read copy): `{data.warehouse_path()}`")


def end_of(day) -> datetime:
    return datetime.combine(day, time.max).replace(tzinfo=UTC)


try:
    if page == "Overview":
        st.title("Overview")
        series = data.snapshots_over_time()
        latest = series.iloc[-1]
        cols = st.columns(5)
        for col, name in zip(
            cols, ("users", "groups", "repositories", "owners_and_admins", "grant_paths"), strict=True
        ):
            col.metric(name.replace("_", " ").capitalize(), int(latest[name]))
        long = series.melt("synced_at", var_name="measure", value_name="count")
        chart = alt.Chart(long).mark_line(point=True).encode(x="synced_at:T", y="count:Q", color="measure:N")
        st.altair_chart(chart, use_container_width=True)
        first, last = series.synced_at.min(), series.synced_at.max()
        st.caption(f"{len(series)} snapshots, from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC")

    elif page == "Who has access":
        st.title("Who has access")
        options = data.resources()
        labels = [f"{r.workspace_slug} / {r.resource_type} / {r.resource_key}" for r in options.itertuples()]
        choice = st.selectbox("Repository or project", labels, key="resource")
        day = st.date_input("As of", datetime.now(UTC).date(), key="as_of")
        ws, kind, key = choice.split(" / ")
        table = data.who_has_access(ws, kind, key, end_of(day))
        st.metric("Users with access", len(table))
        st.dataframe(table, use_container_width=True, hide_index=True)

    elif page == "Person":
        st.title("Person")
        users = data.people()
        labels = [f"{r.display_name} ({r.account_id})" for r in users.itertuples()]
        choice = st.selectbox("User", labels, key="person")
        user_uuid = users.iloc[labels.index(choice)].user_uuid
        access = data.person_access(user_uuid)
        st.metric("Resources reachable now", len(access))
        st.dataframe(access, use_container_width=True, hide_index=True)
        st.subheader("History")
        st.dataframe(data.person_history(user_uuid), use_container_width=True, hide_index=True)

    elif page == "Changes":
        st.title("Changes")
        today = datetime.now(UTC).date()
        start = st.date_input("From", today - timedelta(days=7), key="from")
        end = st.date_input("To", today, key="to")
        table = data.changes(datetime.combine(start, time.min).replace(tzinfo=UTC), end_of(end))
        counts = table.groupby("change").size().to_dict() if len(table) else {}
        cols = st.columns(3)
        for col, kind in zip(cols, ("added", "removed", "changed"), strict=True):
            col.metric(kind.capitalize(), int(counts.get(kind, 0)))
        st.dataframe(table, use_container_width=True, hide_index=True)

    elif page == "Risks":
        st.title("Risks")
        table = data.risks(datetime.now(UTC))
        summary = table.groupby("risk").size().reset_index(name="count") if len(table) else table
        st.metric("Open risks", len(table))
        st.dataframe(summary, use_container_width=True, hide_index=True)
        st.dataframe(table, use_container_width=True, hide_index=True)

    elif page == "Provisioning":
        st.title("Provisioning")
        configured, policy = data.approver_policy()
        (st.caption if configured else st.warning)(policy)
        requests, log = data.provisioning()
        cols = st.columns(3)
        cols[0].metric("Requests", len(requests))
        cols[1].metric("Applied", int((requests.status == "applied").sum()) if len(requests) else 0)
        cols[2].metric("Just-in-time expiries", int((log.outcome == "expired").sum()) if len(log) else 0)
        st.subheader("Requests and approvals")
        st.dataframe(requests, use_container_width=True, hide_index=True)
        st.subheader("Every attempt")
        st.dataframe(log, use_container_width=True, hide_index=True)
except FileNotFoundError as exc:
    st.error(str(exc))
