"""Bitbucket access dashboard: overview, who has access (a resource), a person, changes, risks, change
control, provisioning.

Run with `bitbucket-access dashboard` (or `streamlit run bitbucket_assets/dashboard/app.py`). The page, the
workspace, the snapshot date and each page's choices live in the URL, so any view can be linked; tables
download as CSV named after the view and its parameters; people and resources link to their pages. Each page
is a module of its own (`overview.py`, `who_has_access.py`, `person.py`, `changes.py`, `risks.py`,
`change_control.py`, `provisioning_page.py`), built from `widgets.py`.

Names come from Bitbucket, where anyone types them: none is ever interpreted (`rendering.py`). Text holding
one is shown by `say` and `linked_table`, HTML-escaped into elements of the dashboard's own, never through
Streamlit's Markdown; data frames, pickers and charts get `visible` text. The only links are the dashboard's,
built by `link`.
"""

from __future__ import annotations

import streamlit as st

from bitbucket_assets.dashboard import (
    change_control,
    changes,
    data,
    freshness,
    overview,
    person,
    provisioning_page,
    rendering,
    risks,
    who_has_access,
)
from bitbucket_assets.dashboard.widgets import View, choose, download, end_of, param, plain, say

PAGES = ("Overview", "Who has access", "Person", "Changes", "Risks", "Change control", "Provisioning")
ALL = "All workspaces"

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
    view = View(workspace, as_of_day, end_of(as_of_day))
    st.sidebar.caption(f"As of the end of {as_of_day:%Y-%m-%d} (UTC): what the last sync that day saw.")
    say(f"Warehouse (read copy): {data.warehouse_path()}", css="bb-caption", where=st.sidebar)
    freshness.render(st.sidebar)

    if page == overview.TITLE:
        overview.render(view)
    elif page == who_has_access.TITLE:
        who_has_access.render(view)
    elif page == person.TITLE:
        person.render(view)
    elif page == changes.TITLE:
        changes.render(view)
    elif page == risks.TITLE:
        risks.render(view)
    elif page == change_control.TITLE:
        change_control.render(view.workspace, view.scope, plain, download)
    elif page == provisioning_page.TITLE:
        provisioning_page.render(view)
except FileNotFoundError as exc:
    say(str(exc), css="bb-error")
