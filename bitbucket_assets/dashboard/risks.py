"""The dashboard's "Risks" page: every risk the rules check, by severity, each with its findings or "checked:
none", why it matters and what to do (dbt's seed, shown as text); people and resources linked to their pages,
the detail in full, ids only in the CSV; "unknown" where change-control rules could not be read. Read from
`marts.risk_register` (the latest sync) or `marts.risk_register_as_of`, filtered in SQL."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bitbucket_assets.dashboard import data
from bitbucket_assets.dashboard.rendering import Link
from bitbucket_assets.dashboard.widgets import (
    View,
    counted,
    download,
    headers,
    linked_table,
    person_link,
    resource_link,
    say,
)

TITLE = "Risks"
SEVERITIES = ("high", "medium", "low")


def heading(risk: str, findings: int, unknown: int = 0) -> str:
    """`Public repository: 1 finding`, `Dormant account: checked, none`, and where the rules could not be read
    (change control), `...: unknown in 2 workspaces`: never "checked, none" for what was not checked."""
    said = [counted(findings, "finding")] if findings else []
    if unknown:
        said.append(f"unknown in {counted(unknown, 'workspace')}")
    return f"{risk[:1].upper()}{risk[1:]}: {'; '.join(said) or 'checked, none'}"


def render(view: View) -> None:
    st.title(TITLE)
    table = data.risks(view.as_of, view.workspace)
    findings = table[table.is_finding]
    cols = st.columns(1 + len(SEVERITIES))
    cols[0].metric("Open risks", len(findings))
    for col, severity in zip(cols[1:], SEVERITIES, strict=True):
        col.metric(f"{severity.capitalize()} severity", int((findings.severity == severity).sum()))
    say(
        f"{view.scope}, as of the end of {view.as_of_day:%Y-%m-%d}: every risk the rules check, the most "
        'severe first; "checked, none" where a risk found nothing (checked, not skipped).',
        css="bb-caption",
    )
    download(table, "risks", ws=view.workspace, as_of=f"{view.as_of_day:%Y-%m-%d}")
    for severity, group in table.groupby("severity", sort=False):  # the most severe first
        st.subheader(f"{str(severity).capitalize()} severity")
        for risk, rows in group.groupby("risk", sort=False):
            show_risk(str(risk), rows)


def show_risk(risk: str, rows: pd.DataFrame) -> None:
    first = rows.iloc[0]
    found = rows[rows.is_finding]
    unknown = rows[rows.status == "unknown"]
    say(heading(risk, len(found), len(unknown)), tag="h4")
    # The guidance is read from the warehouse like everything else: shown as text, never as Markdown.
    say(f"Why it matters: {first.why_it_matters}", css="bb-guidance")
    say(f"What to do: {first.what_to_do}", css="bb-guidance")
    for workspace, detail in zip(unknown.workspace_slug, unknown.detail, strict=True):
        say(f"Unknown in {workspace}: {detail}", css="bb-note")
    if found.empty:
        return
    people = [
        person_link(name, uuid) if isinstance(uuid, str) and uuid else (name or "")
        for name, uuid in zip(found.user_display_name, found.user_uuid, strict=True)
    ]
    resources = [
        resource_link(w, t, k) if t in ("repository", "project") else (w if t == "workspace" else "")
        for w, t, k in zip(found.workspace_slug, found.resource_type, found.resource_key, strict=True)
    ]
    shown = pd.DataFrame(
        {"resource": found.resource_key, "workspace": found.workspace_slug, "detail": found.detail}
    )
    if not any(isinstance(p, Link) or p for p in people):  # a risk about resources names nobody
        linked_table(headers(shown.drop(columns=["resource"])), "Resource", resources)
    elif not any(isinstance(r, Link) or r for r in resources):  # a risk about people names no resource
        linked_table(headers(shown.drop(columns=["resource"])), "Person", people)
    else:
        linked_table(headers(shown), "Person", people, more={"Resource": resources})
