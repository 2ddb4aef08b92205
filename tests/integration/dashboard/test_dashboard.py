"""Every dashboard page with Streamlit's AppTest over the demo warehouse's read copy (three days of history);
key numbers checked against SQL, for every workspace and for one, today and on the first day."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from bitbucket_assets.dashboard.data import MEASURES, RISK_GUIDE
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
    assert "3 snapshots" in app.caption[0].value
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
    table = app.table[0].value
    assert len(table) == expected
    assert all("](?page=Person&" in cell and "user=%7B" in cell for cell in table["person"])
    assert "via group" in " ".join(table["paths"]) and "group via group" not in " ".join(table["paths"])
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
    assert all("](?page=Who+has+access&" in cell for cell in app.table[0].value["resource"])
    assert app.subheader[0].value.startswith("Kalani Nakamura")


def test_changes(dashboard_db, monkeypatch) -> None:
    app = run("Changes", dashboard_db, monkeypatch, ws="northwind")
    added = sql(
        dashboard_db,
        "select count(*) from marts.fct_access_changes where change = 'added' and workspace_slug = "
        "'northwind'",
    )
    assert metric(app, "Added") == str(added) and added > 0


def test_risks_explain_themselves(dashboard_db, monkeypatch) -> None:
    app = run("Risks", dashboard_db, monkeypatch, ws="northwind-labs")
    expected = sql(
        dashboard_db,
        "select count(*) from marts.access_risks_as_of(current_timestamp) where workspace_slug = "
        "'northwind-labs'",
    )
    assert metric(app, "Open risks") == str(expected) and expected > 0
    headings = [h.value for h in app.subheader]
    assert any(h.startswith("dormant accounts unknown") for h in headings)
    text = " ".join(m.value for m in app.markdown)
    why, what = RISK_GUIDE["dormant accounts unknown"]
    assert why in text and what in text


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
    text = " ".join(m.value for m in app.markdown)
    why, what = RISK_GUIDE["change possible without an enforced review"]
    assert why in text and what in text


def test_provisioning(dashboard_db, monkeypatch) -> None:
    app = run("Provisioning", dashboard_db, monkeypatch)
    requests = sql(dashboard_db, "select count(*) from provisioning.access_requests")
    applied = sql(dashboard_db, "select count(*) from provisioning.access_requests where status = 'applied'")
    assert metric(app, "Requests") == str(requests) and metric(app, "Applied") == str(applied)
    assert requests == 4  # the demo's three requests and this test's one
    labs = run("Provisioning", dashboard_db, monkeypatch, ws="northwind-labs")
    assert metric(labs, "Requests") == "1"  # the demo's request through the Atlassian Admin API


def test_missing_warehouse_is_a_clear_message(tmp_path, monkeypatch) -> None:
    app = run("Overview", str(tmp_path / "none.duckdb"), monkeypatch)
    assert "run `bitbucket-access sync`" in app.error[0].value


def test_every_risk_the_rules_raise_is_explained() -> None:
    """The risks are dbt's (macros/access_rules.sql); the dashboard explains each: a new one without its
    explanation fails here instead of showing an empty heading."""
    macros = Path(APP).parents[2] / "dbt_project" / "macros"
    rules = "\n".join(
        (macros / name).read_text() for name in ("access_rules.sql", "change_control_rules.sql")
    )
    raised = set(re.findall(r"^select '([^']+)'", rules, flags=re.M))
    assert len(raised) >= 18 and "workspace owner" in raised and "merge checks not enforced" in raised
    assert raised == set(RISK_GUIDE)
