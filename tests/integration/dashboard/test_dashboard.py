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
from bitbucket_assets.dashboard.widgets import TABLE_ROWS
from tests.support import ROOT
from tests.support.apptest import run_page

APP = str(ROOT / "bitbucket_assets" / "dashboard" / "app.py")


def run(page: str, db: str, monkeypatch, **params: str) -> AppTest:
    monkeypatch.setenv("BITBUCKET_DASHBOARD_DB", db)
    app = AppTest.from_file(APP, default_timeout=90)
    app.query_params["page"] = page
    for name, value in params.items():
        app.query_params[name] = value
    run_page(app)
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


def test_overview_drills_down_to_the_list_behind_each_measure(dashboard_db, monkeypatch) -> None:
    """ "Owners and admins" links to the people it counts, as many as it says; every chart's scale starts at
    zero."""
    app = run("Overview", dashboard_db, monkeypatch, list="owners_and_admins")
    links = [e.hrefs[0] for e in shown(app, "p") if e.hrefs]
    assert any("list=owners_and_admins" in h for h in links) and any("page=Changes" in h for h in links)
    count = int(metric(app, "Owners and admins").replace(",", ""))
    people = table(app)
    assert len(people.rows) == count and all(h.startswith("?page=Person&") for h in people.hrefs)
    assert app.subheader[0].value == f"Owners and admins: {count:,}"
    for measure in ("users_with_access", "groups_with_members", "repositories"):
        listed = run("Overview", dashboard_db, monkeypatch, list=measure)
        shown_count = int(metric(listed, MEASURES[measure]).replace(",", ""))
        assert listed.subheader[0].value == f"{MEASURES[measure]}: {shown_count:,}"
    for chart in app.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        layers = spec.get("layer", [spec])
        assert all(
            layer["encoding"]["y"]["scale"]["zero"] is True for layer in layers if "y" in layer["encoding"]
        )


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
    paths = " ".join(row[people.header.index("Paths")] for row in people.rows)
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


def mixed_repository(db: str) -> tuple[str, str]:
    """The repository with admins, writers and readers that most people reach (which repository has all three
    depends on the day the demo ran)."""
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(
            "select workspace_slug, resource_key from marts.fct_effective_access where resource_type = "
            "'repository' group by all having count(distinct permission) = 3 "
            "order by count(*) desc, 1, 2 limit 1"
        ).fetchone()


def test_who_has_access_counts_per_permission_sorts_by_rank_and_filters_in_the_url(
    dashboard_db, monkeypatch
) -> None:
    """An auditor's "who can write to X, and why": a count per permission, admins first (not `write` before
    `admin` as text sorts), and filters by permission and by path kind kept in the URL."""
    ws, key = mixed_repository(dashboard_db)
    resource = f"{ws}|repository|{key}"
    where = f"from marts.fct_effective_access where workspace_slug = '{ws}' and resource_key = '{key}'"
    with duckdb.connect(dashboard_db, read_only=True) as con:
        per_permission = dict(con.execute(f"select permission, count(*) {where} group by all").fetchall())
        permission, path = con.execute(
            "select permission, path, count(*) from (select permission, unnest(grant_sources) as path "
            f"{where} and permission <> 'read') group by all order by 3 desc, 1, 2 limit 1"
        ).fetchone()[:2]
    app = run("Who has access", dashboard_db, monkeypatch, resource=resource)
    for permission, count in per_permission.items():
        assert metric(app, permission) == str(count)
    labels = [m.label for m in app.metric][1:]
    assert labels == sorted(labels, key=["admin", "write", "read"].index)  # by rank, not alphabetically
    ranks = {"admin": 4, "write": 2, "read": 1}
    people = table(app)
    column = people.header.index("Permission")
    held = [ranks[row[column]] for row in people.rows]
    assert held == sorted(held, reverse=True)
    # Writers only, then admins through a project: SQL's answer, and the choices stay in the URL.
    writers = run("Who has access", dashboard_db, monkeypatch, resource=resource, permission="write")
    assert len(table(writers).rows) == per_permission["write"]
    assert {row[column] for row in table(writers).rows} == {"write"}
    assert dict(writers.query_params)["permission"] == "write"
    assert shown(writers, "p", "bb-caption")[0].text.startswith(f"{per_permission['write']} users match")
    through = run(
        "Who has access", dashboard_db, monkeypatch, resource=resource, permission=permission, path=path
    )
    expected = sql(
        dashboard_db,
        f"select count(*) {where} and permission = ? and list_contains(grant_sources, ?)",
        [permission, path],
    )
    rows = table(through)
    assert len(rows.rows) == expected > 0
    words = {
        "direct": "direct (",
        "group": "via group",
        "project": "via project",
        "workspace": "workspace owner",
    }
    assert all(words[path] in row[rows.header.index("Paths")] for row in rows.rows)
    assert dict(through.query_params)["path"] == path


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
    linked = sql(
        dashboard_db,
        "select count(*) from marts.fct_effective_access where user_uuid = ? "
        "and workspace_slug = 'northwind' and resource_type in ('repository', 'project')",
        [uuid],
    )
    assert len(resources.rows) == expected and len(resources.hrefs) == linked
    assert all(href.startswith("?page=Who+has+access&") for href in resources.hrefs)
    assert shown(app, "h3")[0].text.startswith("Kalani Nakamura (@")


def test_the_person_page_opens_on_the_non_owner_who_reaches_most_and_tells_namesakes_apart(
    dashboard_db, monkeypatch
) -> None:
    """Not on the sync's own account (a workspace owner: "workspace owner" on every row); people of the same
    first name are told apart by nickname, workspaces and reach in the picker and the heading."""
    app = run("Person", dashboard_db, monkeypatch)
    operator = sql(dashboard_db, "select user_uuid from marts.dim_users where nickname = 'svc-access-sync'")
    expected = sql(
        dashboard_db,
        "select arg_max(user_uuid, n) from (select e.user_uuid, count(*) n from marts.fct_effective_access e "
        "join marts.dim_users u using (user_uuid) where not u.is_workspace_owner group by all)",
    )
    chosen = dict(app.query_params)["user"]
    assert chosen == expected != operator
    heading = shown(app, "h3")[0].text
    reach = sql(dashboard_db, "select count(*) from marts.fct_effective_access where user_uuid = ?", [chosen])
    assert f"; {reach} resources; " in heading and metric(app, "Resources reachable") == str(reach)
    picker = app.selectbox(key="pick_user")
    kalanis = [label for label in picker.options if label.startswith("Kalani ")]
    assert len(kalanis) >= 2 and len(set(kalanis)) == len(kalanis)
    assert all("(@kalani" in label for label in kalanis)


def test_changes(dashboard_db, monkeypatch) -> None:
    app = run("Changes", dashboard_db, monkeypatch, ws="northwind")
    added = sql(
        dashboard_db,
        "select count(*) from marts.fct_access_changes where change = 'added' and workspace_slug = "
        "'northwind'",
    )
    assert metric(app, "Paths added") == f"{added:,}" and added > 0


def test_changes_by_person_newest_first_with_their_rows_one_click_away(dashboard_db, monkeypatch) -> None:
    """Joined, left and moved people with what they gained and lost, names first, the latest first; the period
    in the URL; each person's grant-path rows behind a link; a group's own grant reads as one."""
    first, last = days(dashboard_db)[0], days(dashboard_db)[-1]
    period = {"from": first.isoformat(), "to": last.isoformat()}
    since = datetime.combine(first, time.min)
    app = run("Changes", dashboard_db, monkeypatch, **period)
    assert {k: dict(app.query_params)[k] for k in period} == period
    people = table(app)
    assert people.header[:3] == ["Person", "Workspace", "What"]
    assert not {"Sync id", "User uuid", "Principal id"} & set(people.header)
    when = [row[people.header.index("Last change")] for row in people.rows]
    assert len(when) > 0 and when == sorted(when, reverse=True)
    what = [row[people.header.index("What")] for row in people.rows]
    joined = sql(
        dashboard_db,
        "select count(distinct principal_id || workspace_slug) from marts.fct_access_changes "
        "where resource_type = 'workspace' and change = 'added' and changed_at >= ?",
        [since],
    )
    assert what.count("joined") == joined == int(metric(app, "Joined")) > 0
    # A joiner gained what they reach now in that workspace (nothing before the period).
    at = what.index("joined")
    row = people.rows[at]
    person_href, rows_href = people.hrefs[2 * at], people.hrefs[2 * at + 1]
    uuid = "{" + re.search(r"user=%7B([^&%]+)%7D", person_href).group(1) + "}"
    reach = sql(
        dashboard_db,
        "select count(*) from marts.fct_effective_access where user_uuid = ? and workspace_slug = ? "
        "and resource_type in ('repository', 'project')",
        [uuid, row[people.header.index("Workspace")]],
    )
    assert int(row[people.header.index("Gained")]) == reach
    # Their rows, one click away: the link keeps the period and names the person.
    params = dict(p.split("=", 1) for p in rows_href[1:].split("&"))
    assert (params["page"], params["from"], params["to"]) == ("Changes", period["from"], period["to"])
    assert params["user"] == f"%7B{uuid[1:-1]}%7D"
    theirs = table(run("Changes", dashboard_db, monkeypatch, user=uuid, **period))
    count = sql(
        dashboard_db,
        "select count(*) from marts.fct_access_changes where principal_id = ? and changed_at >= ? "
        "and workspace_slug = ?",
        [uuid, since, row[people.header.index("Workspace")]],
    )
    assert len(theirs.rows) >= count == int(row[people.header.index("Path rows")].split()[0])
    assert "workspace role" in [r[theirs.header.index("Path")] for r in theirs.rows]
    changed_at = [r[theirs.header.index("Changed at")] for r in theirs.rows]
    assert changed_at == sorted(changed_at, reverse=True)
    # Every row of the period: a group's own grant says so, not `direct`, and comes before the people's rows
    # of its sync (the page shows the first TABLE_ROWS rows): on the UTC day and in the workspace of the
    # latest group change (the demo's scripted day grants a team write), the group leads.
    with duckdb.connect(dashboard_db, read_only=True) as con:
        ws, day, name = con.execute(
            "select workspace_slug, cast(timezone('UTC', changed_at) as date), principal_name "
            "from marts.fct_access_changes where principal_type = 'group' "
            "order by changed_at desc, principal_name limit 1"
        ).fetchone()
    one_day = {"from": day.isoformat(), "to": day.isoformat()}
    every = table(run("Changes", dashboard_db, monkeypatch, user="all", ws=ws, **one_day))
    is_group = [r[0].startswith("group ") for r in every.rows]
    assert every.rows[0][0] == f"group {name}" and is_group == sorted(is_group, reverse=True)
    groups = [r for r, group in zip(every.rows, is_group, strict=True) if group]
    assert {r[every.header.index("Path")] for r in groups} == {"group grant"}


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
    risk_of = {risk.lower(): risk for risk in guide}  # a heading capitalises its first letter
    headings = [h.text for h in shown(app, "h4")]
    # Every risk the rules check is listed, by severity, those without a finding as "checked, none".
    assert len(headings) == len(guide)
    assert [h.value for h in app.subheader] == ["High severity", "Medium severity", "Low severity"]
    order = {"high": 1, "medium": 2, "low": 3}
    named = {risk_of[h.split(": ", 1)[0].lower()]: h for h in headings}
    severities = [order[guide[risk_of[h.split(": ", 1)[0].lower()]]["severity"]] for h in headings]
    assert severities == sorted(severities)
    with duckdb.connect(dashboard_db, read_only=True) as con:
        counts = con.execute(
            "select risk, count(*) filter (where status = 'open'), "
            "count(*) filter (where status = 'unknown') "
            "from marts.risk_register_as_of(current_timestamp, 'northwind-labs') group by risk"
        ).fetchall()
    found = {risk: (open_, unknown) for risk, open_, unknown in counts}
    for risk in guide:
        n, unknown = found.get(risk, (0, 0))
        said = ["1 finding" if n == 1 else f"{n} findings"] if n else []
        said += [f"unknown in {unknown} workspace" + ("s" if unknown > 1 else "")] if unknown else []
        assert named[risk] == f"{risk[:1].upper()}{risk[1:]}: {'; '.join(said) or 'checked, none'}"
    text = " ".join(e.text for e in shown(app, "p", "bb-guidance"))
    row = guide["dormant accounts unknown"]
    assert row["why_it_matters"] in text and row["what_to_do"] in text


def test_risk_tables_link_names_show_the_whole_detail_and_no_ids(dashboard_db, monkeypatch) -> None:
    app = run("Risks", dashboard_db, monkeypatch, ws="northwind")
    tables = shown(app, "table", "bb-table")
    with duckdb.connect(dashboard_db, read_only=True) as con:
        register = con.execute(
            "select area, detail from marts.risk_register_as_of(current_timestamp, 'northwind') "
            "where is_finding"
        ).fetchall()
    cells = []
    for t in tables:
        assert all("_" not in h and h[:1].isupper() for h in t.header)  # words, not snake_case
        assert not any("uuid" in h.lower() or h.lower().split()[-1] == "id" for h in t.header)
        assert not any("{" in cell for row in t.rows for cell in row)  # no `{uuid}` shown
        assert len(t.rows) <= TABLE_ROWS  # a longer list says so, and the CSV holds it whole
        cells += [row[t.header.index("Detail")] for row in t.rows]
    # Every access finding, its detail whole; change control's long lists are cut at TABLE_ROWS a risk.
    access = sorted(detail for area, detail in register if area == "access")
    assert access and sorted(c for c in cells if c in set(access)) == access
    assert set(cells) <= {detail for _, detail in register}
    hrefs = [h for t in tables for h in t.hrefs]
    assert any(h.startswith("?page=Person&") for h in hrefs)
    assert any(h.startswith("?page=Who+has+access&") for h in hrefs)
    assert not any(re.search(r"\b1 (resources|members)\b", cell) for cell in cells)
    assert any(re.search(r"\d+ resources?\b", cell) for cell in cells)


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
    # The history: a point per sync for the share protected and the coverage, and every weakening observed.
    [chart] = app.get("vega_lite_chart")
    drawn = max((pa.ipc.open_stream(d.data.data).read_all() for d in chart.proto.datasets), key=len)
    by_measure: dict[str, list] = {}
    columns = (drawn.column(c).to_pylist() for c in ("measure", "synced_at", "share"))
    for measure, at, share in zip(*columns, strict=True):
        by_measure.setdefault(measure, []).append((pd.Timestamp(at).date(), round(share, 6)))
    with duckdb.connect(dashboard_db, read_only=True) as con:
        rows = con.execute(
            "select synced_at::date, "
            "round(sum(production_branches_push_restricted) / sum(repositories_read), 6), "
            "round(sum(repositories_read) / sum(repositories), 6) from marts.fct_change_control_coverage "
            "where workspace_slug = 'northwind' group by synced_at order by synced_at"
        ).fetchall()
    assert len(rows) == len(days(dashboard_db)) == 3  # the demo's three syncs
    assert by_measure["share_protected"] == [(d, share) for d, share, _ in rows]
    assert by_measure["coverage"] == [(d, covered) for d, _, covered in rows]
    weakened = sql(
        dashboard_db,
        "select count(*) from marts.fct_branch_restriction_changes "
        "where weakens_control and workspace_slug = 'northwind'",
    )
    assert len(app.dataframe[2].value) == weakened
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
    # People and groups by name, not by id (the ids stay in the CSV); an unknown account keeps its id.
    shown_requests, shown_log = app.dataframe[0].value, app.dataframe[1].value
    for frame in (shown_requests, shown_log):
        assert list(frame.columns[:2]) == ["person", "group_name"]
        assert not {"user_id", "user_uuid", "group_slug"} & set(frame.columns)
    known = sql(
        dashboard_db,
        "select count(*) from provisioning.access_requests r join marts.dim_users u "
        "on r.user_id in (u.user_uuid, u.account_id)",
    )
    assert known == 4 and int((~shown_requests.person.str.startswith("{")).sum()) == known
    assert "{u}" in set(shown_requests.person)  # this test's request, for nobody the snapshot knows
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


@pytest.mark.parametrize("workspace", [None, "northwind"])
def test_the_latest_risks_read_from_the_marts_are_the_history_judged_at_the_latest_sync(
    dashboard_db, monkeypatch, workspace
) -> None:
    """The Risks page reads `marts.risk_register` (from fct_access_risks, fast) at the latest snapshot date:
    the same rows as judging the history then (`marts.risk_register_as_of`)."""
    from bitbucket_assets.dashboard import data

    monkeypatch.setenv("BITBUCKET_DASHBOARD_DB", dashboard_db)
    latest = end_of(days(dashboard_db)[-1])
    fast = data.query(data.LATEST_RISKS, {"ws": workspace, "area": None})
    judged = data.query(data.RISKS, {"to": latest, "ws": workspace, "area": None})
    assert len(fast) > 0 and fast.equals(judged)
    assert data.risks(latest, workspace).equals(fast)
