"""The dashboard's "Change control" page: per repository, who can change the production branch and how; per
workspace, the share of production branches protected by a push restriction over time, the coverage of the
rolling reads, the rule changes that weakened control, and the change-control risks with what to do.

Reads the marts (docs/design.md, "Change control") through `data.query`, like every other page; registered in
app.py with one line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import altair as alt
import pandas as pd
import streamlit as st

from bitbucket_assets.dashboard import data, rendering
from bitbucket_assets.reporting.safe_text import visible

TITLE = "Change control"
RIGHTS = ("can_push", "can_merge", "can_merge_without_review", "can_force_push", "can_delete")


def coverage(workspace: str | None) -> pd.DataFrame:
    """Per sync: repositories whose change control is known, and the share of production branches with a push
    restriction (every workspace together, or one)."""
    return data.query(
        "select synced_at, sum(repositories) as repositories, sum(repositories_read) as read, "
        "sum(production_branches_push_restricted) as protected, "
        "sum(production_branches_push_restricted) / nullif(sum(repositories_read), 0) as share_protected, "
        "sum(repositories_read) / sum(repositories) as coverage "
        "from marts.fct_change_control_coverage where $ws is null or workspace_slug = $ws "
        "group by synced_at order by synced_at",
        {"ws": workspace},
    )


def repositories(workspace: str | None) -> pd.DataFrame:
    """Repositories with how many people can change production alone, most first."""
    return data.query(
        "select workspace_slug, repository_slug, any_value(production_branch) as production_branch, "
        "bool_and(rules_fully_readable) as rules_fully_readable, count(*) as writers, "
        "count(*) filter (where can_change_alone) as can_change_alone "
        "from marts.fct_change_rights where $ws is null or workspace_slug = $ws "
        "group by all order by can_change_alone desc, repository_slug",
        {"ws": workspace},
    )


def rights(workspace: str, repository: str) -> pd.DataFrame:
    """Everyone who can change one repository's production branch, each right with its path."""
    return data.query(
        "select user_display_name, permission, production_branch, production_branch_source, "
        f"{', '.join(RIGHTS)}, can_change_alone, has_2fa_enabled, push_path, merge_path, review_path, "
        "force_push_path, delete_path, rules_fully_readable, rules_unreadable_reason, assumptions, "
        "rules_read_at from marts.fct_change_rights where workspace_slug = $ws and repository_slug = $repo "
        "order by can_change_alone desc nulls first, user_display_name",
        {"ws": workspace, "repo": repository},
    )


def weakened(workspace: str | None) -> pd.DataFrame:
    """Rule changes that weakened change control, newest first."""
    return data.query(
        "select observed_at, workspace_slug, repository_slug, change, kind, matcher, old_value, new_value, "
        "exemptions_added from marts.fct_branch_restriction_changes "
        "where weakens_control and ($ws is null or workspace_slug = $ws) order by observed_at desc",
        {"ws": workspace},
    )


def risks(workspace: str | None) -> pd.DataFrame:
    """Every change-control risk at the latest sync, from the risk register: findings, `checked: none` for a
    risk without one, and `unknown` rows where it could not be checked (rules not fully readable)."""
    return data.risks(datetime.now(UTC), workspace, area="change control")


def render(
    workspace: str | None,
    scope: str,
    plain: Callable[[pd.DataFrame], pd.DataFrame],
    download: Callable[..., None],
) -> None:
    """The page. `plain` makes a frame safe to show (app.plain); names and branch names, which anyone can
    type, go into elements of the dashboard's own (rendering.py), never through Markdown."""
    st.title(TITLE)
    series = coverage(workspace)
    if series.empty:
        st.info("No change control read yet: the next sync reads it (it needs admin:repository).")
        return
    latest = series.iloc[-1]
    cols = st.columns(3)
    cols[0].metric("Production branches protected", f"{(latest.share_protected or 0):.0%}")
    cols[1].metric("Repositories read", f"{int(latest.read)} of {int(latest.repositories)}")
    table = repositories(workspace)
    cols[2].metric("Repositories one person can change alone", int((table.can_change_alone > 0).sum()))
    _say(
        f"{scope}, at the latest sync. Rights are unknown (empty) where a repository's rules cannot be read "
        "in full: a project may enforce restrictions no API serves (provisioning.project_branch_rules).",
        css="bb-caption",
    )
    long = series.melt("synced_at", ["share_protected", "coverage"], "measure", "share")
    st.altair_chart(
        alt.Chart(long)
        .mark_line(point=True)
        .encode(x="synced_at:T", y=alt.Y("share:Q", axis=alt.Axis(format="%")), color="measure:N"),
        width="stretch",
    )
    st.subheader("Who can change production, per repository")
    st.dataframe(plain(table), width="stretch", hide_index=True)
    download(table, "change-control", ws=workspace)
    if len(table):
        options = [f"{r.workspace_slug}/{r.repository_slug}" for r in table.itertuples()]
        chosen = st.selectbox("Repository", options, key="cc_repo", format_func=visible)
        ws, repo = chosen.split("/", 1)
        people = rights(ws, repo)
        _say(f"{chosen}: production branch {people.production_branch.iloc[0]}", tag="h4")
        st.dataframe(plain(people), width="stretch", hide_index=True)
        download(people, "change-rights", ws=ws, repository=repo)
    st.subheader("Changes that weakened control")
    changes = weakened(workspace)
    st.dataframe(plain(changes), width="stretch", hide_index=True)
    st.subheader("Risks")
    for risk, rows in risks(workspace).groupby("risk", sort=False):  # the most severe first
        first = rows.iloc[0]
        _say(f"{risk} ({risk_count(rows)}; {first.severity})", tag="h3")
        # The guidance is read from the warehouse like everything else: shown as text, never as Markdown.
        _say(f"Why it matters: {first.why_it_matters}", css="bb-guidance")
        _say(f"What to do: {first.what_to_do}", css="bb-guidance")
        shown = rows[rows.status != "checked: none"].drop(
            columns=["risk", "severity", "why_it_matters", "what_to_do", "is_finding", "area"]
        )
        if len(shown):
            st.dataframe(plain(shown), width="stretch", hide_index=True)


def risk_count(rows: pd.DataFrame) -> str:
    """A risk's heading count: its findings, `checked: none`, and apart from them where it is unknown."""
    findings = int(rows.is_finding.sum())
    unknown = int((rows.status == "unknown").sum())
    if not findings and not unknown:
        return "checked: none"
    said = [f"{findings}"] if findings else []
    if unknown:
        said.append(f"unknown in {unknown} workspace{'s' if unknown > 1 else ''}")
    return ", ".join(said)


def _say(text: str, tag: str = "p", css: str = "") -> None:
    """Text that may hold names, shown as typed (app.say)."""
    st.html(rendering.element(text, tag, css))
