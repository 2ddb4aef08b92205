"""The dashboard's "Provisioning" page: the approver policy, requests and every attempt, and access reviews
with their attestations."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bitbucket_assets.dashboard import data
from bitbucket_assets.dashboard.widgets import View, download, plain, say

TITLE = "Provisioning"
IDS = ("user_id", "user_uuid", "group_slug")  # shown by name; the CSV keeps them


def without_ids(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in IDS if c in frame.columns])


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
    st.dataframe(plain(without_ids(requests)), width="stretch", hide_index=True)
    download(requests, "requests", ws=workspace)
    st.subheader("Every attempt")
    st.dataframe(plain(without_ids(log)), width="stretch", hide_index=True)
    download(log, "provisioning-log", ws=workspace)
    campaigns, attestations = data.reviews(workspace)
    st.subheader("Access reviews: campaigns and their completion")
    st.caption("Items decided of items exported, by reviewer (reviewer empty: the whole campaign).")
    st.dataframe(plain(campaigns), width="stretch", hide_index=True)
    download(campaigns, "review-campaigns", ws=workspace)
    st.subheader("Attestations: every keep and revoke, who signed it, and the file's SHA-256")
    st.dataframe(plain(attestations), width="stretch", hide_index=True)
    download(attestations, "attestations", ws=workspace)
