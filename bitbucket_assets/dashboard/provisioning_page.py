"""The dashboard's "Provisioning" page: the approver policy, requests and every attempt, and access reviews
with their attestations."""

from __future__ import annotations

import streamlit as st

from bitbucket_assets.dashboard import data
from bitbucket_assets.dashboard.widgets import View, download, plain, say

TITLE = "Provisioning"


def render(view: View) -> None:
    st.title(TITLE)
    workspace = view.workspace
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
