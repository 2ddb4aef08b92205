"""Every dashboard page with Streamlit's AppTest over the demo warehouse's read copy (three days of history);
key numbers checked against SQL, for every workspace and for one, today and on the first day."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from bitbucket_assets.dashboard.data import MEASURES
from tests.support import ROOT

APP = str(ROOT / "bitbucket_assets" / "dashboard" / "app.py")


def run(page: str, db: str, monkeypatch, **params: str) -> AppTest:
    monkeypatch.setenv("BITBUCKET_DASHBOARD_DB", db)
    app = AppTest.from_file(APP, default_timeout=90)
    app.query_params["page"] = page
    for name, value in params.items():
        app.query_params[name] = value
    app.run()
    assert not app.exception, app.exception
    return app


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


@dataclass
class Shown(HTMLParser):
    """One of the dashboard's own elements (`st.html`): its tag and class, its text, and for a linked table
    its header, rows (cell texts) and each row's link."""

    tag: str = ""
    css: str = ""
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    hrefs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(convert_charrefs=True)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if not self.tag:
            self.tag, self.css = tag, attrs.get("class", "")
        if tag == "tr" and self.header:
            self.rows.append([])
        elif tag in ("th", "td"):
            (self.rows[-1] if self.rows else self.header).append("")
        elif tag == "a":
            self.hrefs.append(attrs["href"])

    def handle_data(self, data):
        self.text += data
        if self.rows and self.rows[-1]:
            self.rows[-1][-1] += data
        elif self.header and not self.rows:
            self.header[-1] += data


def shown(app: AppTest, tag: str, css: str = "") -> list[Shown]:
    """The dashboard's own elements of `tag` (and class `css`), in page order."""
    elements = []
    for element in app.html:
        parsed = Shown()
        parsed.feed(element.value)
        if parsed.tag == tag and (not css or css in parsed.css.split()):
            elements.append(parsed)
    return elements


def table(app: AppTest) -> Shown:
    return shown(app, "table", "bb-table")[0]


def sql(db: str, statement: str, params=None):
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(statement, params or []).fetchone()[0]


def days(db: str) -> list[date]:
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute(
            "select distinct cast(synced_at as date) from marts.fct_sync_summary order by 1"
        ).fetchall()
    return [r[0] for r in rows]


def end_of(day: date) -> datetime:
    return datetime.combine(day, time.max)


@pytest.mark.parametrize("workspace", [None, "northwind-labs"])
@pytest.mark.parametrize("which_day", [0, -1])
def test_overview_follows_the_workspace_and_the_date(dashboard_db, monkeypatch, workspace, which_day) -> None:
    day = days(dashboard_db)[which_day]
    params = {"as_of": day.isoformat(), **({"ws": workspace} if workspace else {})}
    app = run("Overview", dashboard_db, monkeypatch, **params)
    assert app.title[0].value == "Overview"
    for column, title in MEASURES.items():
        expected = sql(
            dashboard_db,
            f"select arg_max({column}, synced_at) from marts.fct_workspace_trends "
            "where workspace_slug is not distinct from ? and cast(synced_at as date) <= ?",
            [workspace, day],
        )
        assert metric(app, title) == f"{expected:,}"
    assert "3 snapshots" in shown(app, "p", "bb-caption")[0].text
    # One chart per measure, each over every snapshot date, and the changes per day.
    charts = app.get("vega_lite_chart")
    assert len(charts) == len(MEASURES) + 1
    dates = sql(dashboard_db, "select list(synced_at order by synced_at) from marts.fct_sync_summary")
    by_title = {json.loads(chart.proto.spec)["title"]: chart for chart in charts}
    assert set(by_title) == {*MEASURES.values(), "Changes per day"}
    for title in MEASURES.values():
        chart = by_title[title]
        drawn = max((pa.ipc.open_stream(d.data.data).read_all() for d in chart.proto.datasets), key=len)
        drawn_dates = [pd.Timestamp(t).date() for t in drawn.column("synced_at").to_pylist()]
        assert drawn_dates == [pd.Timestamp(d).date() for d in dates]  # a point per snapshot, in order
    assert dict(app.query_params)["as_of"] == day.isoformat()


def test_the_two_workspaces_differ_and_add_up(dashboard_db, monkeypatch) -> None:
    counts = {
        ws: int(metric(run("Overview", dashboard_db, monkeypatch, ws=ws), "Repositories").replace(",", ""))
        for ws in ("northwind", "northwind-labs")
    }
    every = int(metric(run("Overview", dashboard_db, monkeypatch), "Repositories").replace(",", ""))
    assert counts["northwind"] != counts["northwind-labs"] and sum(counts.values()) == every


def test_who_has_access_links_every_person(dashboard_db, monkeypatch) -> None:
    resource = "northwind|repository|platfo1-sync-cli"
    app = run("Who has access", dashboard_db, monkeypatch, resource=resource)
    expected = sql(
        dashboard_db,
        "select count(*) from marts.fct_effective_access where resource_key = 'platfo1-sync-cli'",
    )
    assert metric(app, "Users with access") == str(expected) and expected > 0
    people = table(app)
    assert len(people.rows) == len(people.hrefs) == expected
    assert all(href.startswith("?page=Person&") and "user=%7B" in href for href in people.hrefs)
    paths = " ".join(row[people.header.index("paths")] for row in people.rows)
    assert "via group" in paths and "group via group" not in paths
    assert app.get("download_button")[0].proto.label == f"Download {expected} rows (CSV)"
    # On the first day, the people who had access then.
    first = days(dashboard_db)[0]
    earlier = run("Who has access", dashboard_db, monkeypatch, resource=resource, as_of=first.isoformat())
    then = sql(
        dashboard_db,
        "select count(*) from marts.effective_access_as_of(?) where resource_key = 'platfo1-sync-cli'",
        [end_of(first)],
    )
    assert metric(earlier, "Users with access") == str(then)


def test_person_page_of_one_user_in_one_workspace(dashboard_db, monkeypatch) -> None:
    uuid = sql(dashboard_db, "select user_uuid from marts.dim_users where display_name = 'Kalani Nakamura'")
    app = run("Person", dashboard_db, monkeypatch, user=uuid, ws="northwind")
    expected = sql(
        dashboard_db,
        "select count(*) from marts.fct_effective_access "
        "where user_uuid = ? and workspace_slug = 'northwind'",
        [uuid],
    )
    assert metric(app, "Resources reachable") == str(expected) and expected > 0
    resources = table(app)
    assert len(resources.hrefs) == expected
    assert all(href.startswith("?page=Who+has+access&") for href in resources.hrefs)
    assert shown(app, "h3")[0].text.startswith("Kalani Nakamura")


def test_changes(dashboard_db, monkeypatch) -> None:
    app = run("Changes", dashboard_db, monkeypatch, ws="northwind")
    added = sql(
        dashboard_db,
        "select count(*) from marts.fct_access_changes where change = 'added' and workspace_slug = "
        "'northwind'",
    )
    assert metric(app, "Added") == str(added) and added > 0


def guidance(seed: str = "risk_guidance") -> dict[str, dict[str, str]]:
    """A risk guidance seed: risk -> severity, why_it_matters, what_to_do."""
    with (Path(APP).parents[2] / "dbt_project" / "seeds" / f"{seed}.csv").open(encoding="utf-8") as f:
        return {row["risk"]: row for row in csv.DictReader(f)}


def test_risks_explain_themselves_by_severity_and_say_checked_none(dashboard_db, monkeypatch) -> None:
    app = run("Risks", dashboard_db, monkeypatch, ws="northwind-labs")
    expected = sql(
        dashboard_db,
        "select count(*) from marts.access_risks_as_of(current_timestamp) where workspace_slug = "
        "'northwind-labs'",
    ) + sql(
        dashboard_db,
        "select count(*) from marts.fct_change_control_risks where workspace_slug = 'northwind-labs'",
    )
    assert metric(app, "Open risks") == str(expected) and expected > 0
    # Access and change-control risks alike (the register holds both).
    guide = guidance() | guidance("change_control_risk_guidance")
    headings = [h.text for h in shown(app, "h3")]
    # Every risk the rules check is listed, the most severe first, those without a finding as "checked: none".
    assert len(headings) == len(guide)
    order = {"high": 1, "medium": 2, "low": 3}
    severities = [order[h.rsplit("; ", 1)[1].rstrip(")")] for h in headings]
    assert severities == sorted(severities)
    found = {
        r[0]
        for r in duckdb.connect(dashboard_db, read_only=True)
        .execute(
            "select distinct risk from marts.risk_register_as_of(current_timestamp, 'northwind-labs') "
            "where status <> 'checked: none'"
        )
        .fetchall()
    }
    for risk in set(guide) - found:
        assert f"{risk} (checked: none; {guide[risk]['severity']})" in headings
    assert any(h.startswith("dormant accounts unknown (") for h in headings)
    text = " ".join(e.text for e in shown(app, "p", "bb-guidance"))
    row = guide["dormant accounts unknown"]
    assert row["why_it_matters"] in text and row["what_to_do"] in text


def test_change_control_page(dashboard_db, monkeypatch) -> None:
    """Per workspace: the share protected and coverage; per repository: who can change production and how;
    the risks with what to do."""
    app = run("Change control", dashboard_db, monkeypatch, ws="northwind")
    latest = "from marts.fct_change_control_coverage where workspace_slug = 'northwind' "
    latest += "order by synced_at desc limit 1"
    share = sql(dashboard_db, f"select production_branches_push_restricted / repositories_read {latest}")
    read = sql(dashboard_db, f"select repositories_read || ' of ' || repositories {latest}")
    assert metric(app, "Production branches protected") == f"{share:.0%}"
    assert metric(app, "Repositories read") == read
    chosen = app.selectbox(key="cc_repo").value
    ws, repo = chosen.split("/", 1)
    writers = sql(
        dashboard_db,
        "select count(*) from marts.fct_change_rights where workspace_slug = ? and repository_slug = ?",
        [ws, repo],
    )
    assert len(app.dataframe[1].value) == writers > 0
    text = " ".join(e.text for e in shown(app, "p", "bb-guidance"))
    row = guidance("change_control_risk_guidance")["change possible without an enforced review"]
    assert row["why_it_matters"] in text and row["what_to_do"] in text
    # Every change-control risk, at zero too; where one could not be checked, how many workspaces, apart.
    guide = guidance("change_control_risk_guidance")
    headings = {h.text.split(" (", 1)[0]: h.text for h in shown(app, "h3")}
    assert set(headings) == set(guide)
    register = duckdb.connect(dashboard_db, read_only=True).execute(
        "select risk, count(*) filter (where is_finding), count(*) filter (where status = 'unknown') "
        "from marts.risk_register_as_of(current_timestamp, 'northwind') where area = 'change control' "
        "group by risk"
    )
    for risk, findings, unknown in register.fetchall():
        if not findings and not unknown:
            assert headings[risk] == f"{risk} (checked: none; {guide[risk]['severity']})"
        else:
            assert headings[risk].startswith(f"{risk} ({findings if findings else ''}")
            assert (f"unknown in {unknown} workspace" in headings[risk]) == bool(unknown)


def test_provisioning(dashboard_db, monkeypatch) -> None:
    app = run("Provisioning", dashboard_db, monkeypatch)
    requests = sql(dashboard_db, "select count(*) from provisioning.access_requests")
    applied = sql(dashboard_db, "select count(*) from provisioning.access_requests where status = 'applied'")
    assert metric(app, "Requests") == str(requests) and metric(app, "Applied") == str(applied)
    assert requests == 5  # the demo's three requests, its review's revocation and this test's one
    labs = run("Provisioning", dashboard_db, monkeypatch, ws="northwind-labs")
    assert metric(labs, "Requests") == "1"  # the demo's request through the Atlassian Admin API
    # The demo's signed review: its campaign's completion, and every attestation with its signer.
    assert [h.value for h in app.subheader][2:] == [
        "Access reviews: campaigns and their completion",
        "Attestations: every keep and revoke, who signed it, and the file's SHA-256",
    ]
    campaigns, attestations = app.dataframe[2].value, app.dataframe[3].value
    assert len(attestations) == 6 and set(attestations.decision) == {"keep", "revoke"}
    assert attestations.key_fingerprint.str.startswith("SHA256:").all()
    whole = campaigns[campaigns.reviewer.isna()]
    assert whole[["items_decided", "kept", "revoked"]].values.tolist() == [[6, 5, 1]]
    exported = sql(dashboard_db, "select item_count from provisioning.review_campaigns")
    assert int(whole.items_exported.iloc[0]) == exported


def test_missing_warehouse_is_a_clear_message(tmp_path, monkeypatch) -> None:
    app = run("Overview", str(tmp_path / "none.duckdb"), monkeypatch)
    assert "run `bitbucket-access sync`" in shown(app, "p", "bb-error")[0].text


def test_every_risk_the_rules_raise_is_explained() -> None:
    """The risks are dbt's (macros/access_rules.sql, macros/change_control_rules.sql) and so are their words
    (seeds/risk_guidance.csv, seeds/change_control_risk_guidance.csv): a new rule without its guidance fails
    here (and at dbt's relationships test) instead of showing an empty heading."""
    macros = Path(APP).parents[2] / "dbt_project" / "macros"
    for rules, seed, known in (
        ("access_rules.sql", "risk_guidance", "workspace owner"),
        ("change_control_rules.sql", "change_control_risk_guidance", "merge checks not enforced"),
    ):
        raised = set(re.findall(r"^select '([^']+)'", (macros / rules).read_text(), flags=re.M))
        assert len(raised) >= 9 and known in raised
        guide = guidance(seed)
        assert raised == set(guide)
        assert all(
            row["severity"] in ("high", "medium", "low") and row["why_it_matters"] for row in guide.values()
        )
