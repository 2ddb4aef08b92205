"""Every dashboard page loaded in a real headless Chromium (Debian's), its key numbers checked against SQL."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

import duckdb
import pytest

from tests.support.browser import dashboard_in_chromium, require_chromium

require_chromium()

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from bitbucket_assets.dashboard.data import MEASURES  # noqa: E402


@pytest.fixture(scope="module")
def served(dashboard_db):
    with dashboard_in_chromium(dashboard_db) as served:
        yield served


def metrics(driver, url: str, page: str, needs: tuple[str, ...] = (), **params: str) -> dict[str, str]:
    """The page's metrics, label -> value, once those named in `needs` have rendered (a page draws its
    metrics one after another)."""
    driver.get(f"{url}/?{urlencode({'page': page, **params})}")
    WebDriverWait(driver, 60).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')
            and d.find_elements(By.CSS_SELECTOR, "h1")
            and page in d.find_element(By.CSS_SELECTOR, "h1").text
        )
    )

    # Labels and values read together, in one script.
    def pairs(d):
        labels, values = d.execute_script(
            'const texts = id => [...document.querySelectorAll(`[data-testid="${id}"]`)]'
            ".map(e => e.innerText.trim());"
            "return [texts('stMetricLabel'), texts('stMetricValue')];"
        )
        if not labels or len(labels) != len(values) or not set(needs) <= set(labels):
            return None
        return dict(zip(labels, values, strict=True))

    return WebDriverWait(driver, 60).until(pairs)


def sql(db: str, statement: str, params=None):
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(statement, params or []).fetchone()[0]


def sql_row(db: str, statement: str, params=None) -> tuple:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(statement, params or []).fetchone()


LATEST_ALL = "select arg_max({}, synced_at) from marts.fct_workspace_trends where workspace_slug is null"


@pytest.mark.parametrize(
    ("page", "label", "statement"),
    [
        ("Overview", "Users with access", LATEST_ALL.format("users_with_access")),
        ("Overview", "Grant paths", LATEST_ALL.format("grant_paths")),
        # The first resource in the picker is shown by default, and the person who reaches most without
        # owning a workspace (not the sync's own account, an owner).
        (
            "Who has access",
            "Users with access",
            "select count(*) from marts.effective_access_as_of(now()) e join (select workspace_slug, "
            "resource_type, resource_key from marts.fct_grant_history where resource_type in ('repository', "
            "'project') order by all limit 1) f using (workspace_slug, resource_type, resource_key)",
        ),
        (
            "Person",
            "Resources reachable",
            "select max(n) from (select count(*) n from marts.fct_effective_access e join marts.dim_users u "
            "using (user_uuid) where not u.is_workspace_owner group by user_uuid)",
        ),
        ("Changes", "Paths added", "select count(*) from marts.fct_access_changes where change = 'added'"),
        (
            "Risks",
            "Open risks",
            "select count(*) from marts.risk_register_as_of(current_timestamp, null) where is_finding",
        ),
        ("Provisioning", "Requests", "select count(*) from provisioning.access_requests"),
    ],
)
def test_page_in_chromium(served, dashboard_db, page: str, label: str, statement: str) -> None:
    driver, url = served
    shown = metrics(driver, url, page, needs=(label,))
    assert label in shown
    value = int(shown[label].replace(",", ""))
    assert value == sql(dashboard_db, statement)
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAppDeployButton"]')  # no deploy menu


def test_overview_draws_one_chart_per_measure_and_follows_the_url(served, dashboard_db) -> None:
    driver, url = served
    first = sql(dashboard_db, "select min(cast(synced_at as date)) from marts.fct_sync_summary")
    shown = metrics(
        driver, url, "Overview", needs=tuple(MEASURES.values()), ws="northwind-labs", as_of=first.isoformat()
    )
    WebDriverWait(driver, 60).until(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')) == len(MEASURES) + 1
        )
    )
    for column, title in MEASURES.items():
        expected = sql(
            dashboard_db,
            f"select arg_max({column}, synced_at) from marts.fct_workspace_trends "
            "where workspace_slug = 'northwind-labs' and cast(synced_at as date) = ?",
            [first],
        )
        assert shown[title] == f"{expected:,}"
    snapshots = sql(dashboard_db, "select count(*) from marts.fct_sync_summary")
    assert f"{snapshots} snapshots" in driver.find_element(By.CSS_SELECTOR, "main").text


def person_links(driver) -> list:
    anchors = driver.find_elements(By.CSS_SELECTOR, "main a")
    return [a for a in anchors if "page=Person" in (a.get_attribute("href") or "")]


def test_a_person_link_opens_their_page(served, dashboard_db) -> None:
    driver, url = served
    metrics(driver, url, "Who has access", resource="northwind|repository|platfo1-sync-cli")
    # The table renders after the metrics: wait for its links rather than count on a fast machine.
    WebDriverWait(driver, 60).until(lambda d: person_links(d))
    links = person_links(driver)
    name, target = links[0].text, links[0].get_attribute("href")
    params = dict(parse_qsl(target.split("?", 1)[1]))
    assert params.pop("page") == "Person"
    shown = metrics(driver, target.split("/?", 1)[0], "Person", needs=("Resources reachable",), **params)
    heading = driver.find_element(By.CSS_SELECTOR, "main h3").text
    assert heading.startswith(name)
    uuid = params["user"]
    assert int(shown["Resources reachable"]) == sql(
        dashboard_db, "select count(*) from marts.fct_effective_access where user_uuid = ?", [uuid]
    )


def test_a_download_returns_the_tables_rows(served, dashboard_db, tmp_path) -> None:
    driver, url = served
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    metrics(driver, url, "Who has access", resource="northwind|repository|platfo1-sync-cli")
    button = '[data-testid="stDownloadButton"] button'
    # renders after the metrics
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, button))
    driver.find_element(By.CSS_SELECTOR, button).click()
    WebDriverWait(driver, 60).until(lambda d: [p for p in tmp_path.iterdir() if p.suffix == ".csv"])
    [csv] = [p for p in tmp_path.iterdir() if p.suffix == ".csv"]
    assert csv.name.startswith("who-has-access_northwind_repository_platfo1-sync-cli_")
    with duckdb.connect() as con:
        rows = con.execute("select user_uuid from read_csv(?)", [str(csv)]).fetchall()
    expected = sql(
        dashboard_db,
        "select list(user_uuid order by user_uuid) from marts.fct_effective_access "
        "where resource_key = 'platfo1-sync-cli'",
    )
    assert sorted(r[0] for r in rows) == expected


def wait_for(driver, css: str):
    """Elements that render after the metrics (tables, links): waited for, never counted on being there."""
    return WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))


def table_rows(driver) -> tuple[list[str], list[list[str]]]:
    """The first linked table's header and cell texts, read in one script (not a WebDriver call per cell)."""
    wait_for(driver, "table.bb-table")
    return driver.execute_script(
        "const t = document.querySelector('table.bb-table');"
        "const cells = row => [...row.querySelectorAll('th, td')].map(c => c.innerText.trim());"
        "return [cells(t.querySelector('thead tr')), [...t.querySelectorAll('tbody tr')].map(cells)];"
    )


def test_who_has_access_counts_per_permission_and_filters_from_the_url(served, dashboard_db) -> None:
    driver, url = served
    ws, key = sql_row(
        dashboard_db,
        "select workspace_slug, resource_key from marts.fct_effective_access where resource_type = "
        "'repository' group by all having count(distinct permission) = 3 "
        "order by count(*) desc, 1, 2 limit 1",
    )
    where = f"from marts.fct_effective_access where workspace_slug = '{ws}' and resource_key = '{key}'"
    with duckdb.connect(dashboard_db, read_only=True) as con:
        counts = dict(con.execute(f"select permission, count(*) {where} group by all").fetchall())
    shown = metrics(
        driver,
        url,
        "Who has access",
        needs=("Users with access", *counts),
        resource=f"{ws}|repository|{key}",
        permission="write",
    )
    assert {k: int(v) for k, v in shown.items() if k != "Users with access"} == counts
    assert list(shown)[1:] == [p for p in ("admin", "write", "read") if p in counts]  # by rank
    header, rows = table_rows(driver)
    assert header[0] == "Person" and len(rows) == counts["write"]
    assert {row[header.index("Permission")] for row in rows} == {"write"}
    assert f"{counts['write']} users match the filters" in driver.find_element(By.CSS_SELECTOR, "main").text


def test_changes_by_person_with_the_rows_one_click_away(served, dashboard_db) -> None:
    driver, url = served
    first = sql(dashboard_db, "select min(cast(synced_at as date)) from marts.fct_sync_summary")
    last = sql(dashboard_db, "select max(cast(synced_at as date)) from marts.fct_sync_summary")
    period = {"from": first.isoformat(), "to": last.isoformat()}
    metrics(driver, url, "Changes", **period)
    header, rows = table_rows(driver)
    assert header[:3] == ["Person", "Workspace", "What"]
    when = [row[header.index("Last change")] for row in rows]
    assert when == sorted(when, reverse=True)
    # The dates are the URL's, shown in the date inputs.
    inputs = [
        e.get_attribute("value")
        for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDateInput"] input')
    ]
    assert inputs[:2] == list(period.values())
    # One click from a person's row count to their rows.
    person = rows[0][0]
    driver.find_element(By.CSS_SELECTOR, "table.bb-table a[href*='page=Changes']").click()
    WebDriverWait(driver, 60).until(
        lambda d: any(
            h.text == f"Grant-path rows of {person}" for h in d.find_elements(By.CSS_SELECTOR, "main h3")
        )
    )
    params = dict(parse_qsl(driver.current_url.split("?", 1)[1]))
    assert (
        params["from"] == period["from"] and params["to"] == period["to"] and params["user"].startswith("{")
    )
    header, rows = table_rows(driver)
    assert header[:2] == ["Who", "Changed at"] and rows and {row[0] for row in rows} == {person}


def test_risks_by_severity_named_and_linked(served, dashboard_db) -> None:
    driver, url = served
    shown = metrics(driver, url, "Risks", needs=("Open risks",))
    findings = sql(dashboard_db, "select count(*) from marts.access_risks_as_of(current_timestamp)")
    findings += sql(dashboard_db, "select count(*) from marts.fct_change_control_risks")
    assert int(shown["Open risks"]) == findings
    # access and change control: both seeds' risks are listed
    risks = sql(dashboard_db, "select count(*) from marts.risk_guidance")
    risks += sql(dashboard_db, "select count(*) from marts.change_control_risk_guidance")
    headings = WebDriverWait(driver, 60).until(
        lambda d: (
            len(d.find_elements(By.CSS_SELECTOR, "main h4")) == risks
            and d.find_elements(By.CSS_SELECTOR, "main h4")
        )
    )
    texts = [h.text for h in headings]
    assert any(t.endswith(": checked, none") for t in texts) or all(
        "finding" in t or "unknown in" in t for t in texts
    )
    assert not any(re.search(r"\b1 findings\b", t) for t in texts)
    tables = driver.find_elements(By.CSS_SELECTOR, "table.bb-table")
    headers = {th.text for t in tables for th in t.find_elements(By.CSS_SELECTOR, "thead th")}
    assert headers <= {"Person", "Resource", "Workspace", "Detail"}
    people = [a for t in tables for a in t.find_elements(By.CSS_SELECTOR, "a[href*='page=Person']")]
    assert people and all(a.text and not a.text.startswith("{") for a in people)
    # Detail cells wrap rather than cut: no cell is wider than what it shows.
    cut = driver.execute_script(
        "return [...document.querySelectorAll('table.bb-table td')]"
        ".filter(td => td.scrollWidth > td.clientWidth + 1).length"
    )
    assert cut == 0


def test_the_overview_at_1000_px_fits_and_drills_down(served, dashboard_db) -> None:
    driver, url = served
    driver.set_window_size(1000, 1000)
    try:
        shown = metrics(driver, url, "Overview", needs=("Owners and admins",))
        WebDriverWait(driver, 60).until(
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"]')) == len(MEASURES) + 1
            )
        )
        # Headline labels whole: no label is cut to an ellipsis.
        cut = driver.execute_script(
            "return [...document.querySelectorAll('[data-testid=\"stMetricLabel\"] *')]"
            ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"
        )
        assert cut == []
        # Owners and admins: one click to the people it counts.
        driver.find_element(By.CSS_SELECTOR, "main a[href*='list=owners_and_admins']").click()
        WebDriverWait(driver, 60).until(
            lambda d: any("Owners and admins:" in h.text for h in d.find_elements(By.CSS_SELECTOR, "main h3"))
        )
        header, rows = table_rows(driver)
        assert header[0] == "Person" and len(rows) == int(shown["Owners and admins"].replace(",", ""))
    finally:
        driver.set_window_size(1400, 1000)
