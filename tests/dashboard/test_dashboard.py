"""Every dashboard page with Streamlit's AppTest over the demo warehouse's read copy; key numbers
checked against SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "bitbucket_assets" / "dashboard" / "app.py")


def run(page: str, db: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("BITBUCKET_DASHBOARD_DB", db)
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params["page"] = page
    app.run()
    assert not app.exception, app.exception
    return app


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def sql(db: str, statement: str, params=None):
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(statement, params or []).fetchone()[0]


def test_overview(dashboard_db, monkeypatch) -> None:
    app = run("Overview", dashboard_db, monkeypatch)
    assert app.title[0].value == "Overview"
    assert metric(app, "Users") == str(sql(dashboard_db, "select count(*) from marts.dim_users"))
    assert metric(app, "Grant paths") == str(sql(dashboard_db, "select count(*) from marts.fct_grants"))
    assert "3 snapshots" in app.caption[0].value


def test_who_has_access(dashboard_db, monkeypatch) -> None:
    app = run("Who has access", dashboard_db, monkeypatch)
    app.selectbox(key="resource").select("northwind / repository / platfo1-sync-cli").run()
    expected = sql(
        dashboard_db, "select count(*) from marts.fct_effective_access where resource_key = 'platfo1-sync-cli'"
    )
    assert metric(app, "Users with access") == str(expected) and expected > 0
    app.date_input(key="as_of").set_value((datetime.now(UTC) - timedelta(days=400)).date()).run()
    assert metric(app, "Users with access") == "0"  # before the first sync nobody is known to have access


def test_person(dashboard_db, monkeypatch) -> None:
    app = run("Person", dashboard_db, monkeypatch)
    label = next(o for o in app.selectbox(key="person").options if o.startswith("Kalani Nakamura"))
    app.selectbox(key="person").select(label).run()
    expected = sql(
        dashboard_db,
        "select count(*) from marts.fct_effective_access e join marts.dim_users u using (user_uuid) "
        "where u.display_name = 'Kalani Nakamura'",
    )
    assert metric(app, "Resources reachable now") == str(expected)
    assert len(app.dataframe) == 2


def test_changes(dashboard_db, monkeypatch) -> None:
    app = run("Changes", dashboard_db, monkeypatch)
    added = sql(dashboard_db, "select count(*) from marts.fct_access_changes where change = 'added'")
    assert metric(app, "Added") == str(added) and added > 0


def test_risks(dashboard_db, monkeypatch) -> None:
    app = run("Risks", dashboard_db, monkeypatch)
    assert int(metric(app, "Open risks")) > 0
    summary = app.dataframe[0].value
    assert "workspace owner" in set(summary["risk"])


def test_provisioning(dashboard_db, monkeypatch) -> None:
    app = run("Provisioning", dashboard_db, monkeypatch)
    requests = sql(dashboard_db, "select count(*) from provisioning.access_requests")
    applied = sql(dashboard_db, "select count(*) from provisioning.access_requests where status = 'applied'")
    assert metric(app, "Requests") == str(requests) and metric(app, "Applied") == str(applied)
    assert requests == 4  # the demo's three requests and this test's one


def test_missing_warehouse_is_a_clear_message(tmp_path, monkeypatch) -> None:
    app = run("Overview", str(tmp_path / "none.duckdb"), monkeypatch)
    assert "run `bitbucket-access sync`" in app.error[0].value
