"""Every dashboard page loaded in a real headless Chromium (Debian's), its key numbers checked against SQL."""

from __future__ import annotations

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


def metrics(driver, url: str, page: str, **params: str) -> dict[str, str]:
    driver.get(f"{url}/?{urlencode({'page': page, **params})}")
    WebDriverWait(driver, 60).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')
            and d.find_elements(By.CSS_SELECTOR, "h1")
            and page in d.find_element(By.CSS_SELECTOR, "h1").text
        )
    )
    labels = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]')]
    values = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')]
    return dict(zip(labels, values, strict=True))


def sql(db: str, statement: str, params=None):
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(statement, params or []).fetchone()[0]


LATEST_ALL = "select arg_max({}, synced_at) from marts.fct_workspace_trends where workspace_slug is null"


@pytest.mark.parametrize(
    ("page", "label", "statement"),
    [
        ("Overview", "Users with access", LATEST_ALL.format("users_with_access")),
        ("Overview", "Grant paths", LATEST_ALL.format("grant_paths")),
        # The first resource and the first person in the pickers are shown by default.
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
            "select count(*) from marts.fct_effective_access where user_uuid = "
            "(select user_uuid from marts.dim_users order by display_name, user_uuid limit 1)",
        ),
        ("Changes", "Added", "select count(*) from marts.fct_access_changes where change = 'added'"),
        ("Risks", "Open risks", "select count(*) from marts.access_risks_as_of(current_timestamp)"),
        ("Provisioning", "Requests", "select count(*) from provisioning.access_requests"),
    ],
)
def test_page_in_chromium(served, dashboard_db, page: str, label: str, statement: str) -> None:
    driver, url = served
    shown = metrics(driver, url, page)
    assert label in shown
    value = int(shown[label].replace(",", ""))
    assert value == sql(dashboard_db, statement)
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAppDeployButton"]')  # no deploy menu


def test_overview_draws_one_chart_per_measure_and_follows_the_url(served, dashboard_db) -> None:
    driver, url = served
    first = sql(dashboard_db, "select min(cast(synced_at as date)) from marts.fct_sync_summary")
    shown = metrics(driver, url, "Overview", ws="northwind-labs", as_of=first.isoformat())
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
    shown = metrics(driver, target.split("/?", 1)[0], "Person", **params)
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
