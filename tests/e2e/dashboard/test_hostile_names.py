"""Names are never interpreted on any dashboard page: an organisation whose display names hold Markdown,
HTML, Streamlit's own shortcodes and bidi controls, shown in a real Chromium. Every heading, table
cell and link text reads as the name itself (bidi controls shown as escapes), every link is the dashboard's
own, and nothing reaches the host the names point at (a `Listener` records what would)."""

from __future__ import annotations

from urllib.parse import urlencode

import duckdb
import pytest

from tests.support.browser import dashboard_in_chromium, require_chromium

require_chromium()

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from bitbucket_assets.provisioning.tables import create_provisioning_tables  # noqa: E402
from bitbucket_assets.reporting.safe_text import visible  # noqa: E402
from bitbucket_simulator import Simulator, SimulatorServer, load_organisation  # noqa: E402
from tests.support.listener import Listener  # noqa: E402
from tests.support.warehouses import built_in_the_workers_dir, run_pipeline  # noqa: E402

NAMES = {
    "ana": "![pixel]({host}/md.png) Ana",
    "ben": '[Ben]({host}/link) <img src="{host}/html.png"> **bold** _it_ `code`',
    "carl": "Carl :smile: :material/home: :red[alert] $x^2$ A&amp;B &lt;i&gt; # not a heading",
    "dev": "Dev \u202eliveE\u202c \u2067RTL\u2069 www.evil.example",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    with Listener() as elsewhere:
        org = load_organisation("tiny")
        users = {u.nickname: u for u in org.users.values()}
        names = {nick: name.format(host=elsewhere.url) for nick, name in NAMES.items()}
        for nick, name in names.items():
            users[nick].display_name = name
        keep = tmp_path_factory.mktemp("hostile-dashboard") / "w.duckdb"
        with (
            SimulatorServer(Simulator(org)) as server,
            built_in_the_workers_dir(tmp_path_factory, keep) as built,
        ):
            assert run_pipeline(server.url, org.users[org.operator_uuid].email, built).success
        db = str(keep)
        with duckdb.connect(db) as con:
            create_provisioning_tables(con)
            con.execute(
                "insert into provisioning.access_requests (request_id, workspace_slug, group_slug, user_id, "
                "action, requested_by, approved_by, approved_at, status) values "
                "('r1', 'tiny-co', 'leads', ?, 'add', ?, ?, now(), 'pending')",
                [users["ana"].uuid, names["ana"], f"![x]({elsewhere.url}/approver.png)"],
            )
        with dashboard_in_chromium(db) as (driver, url):
            yield driver, url, elsewhere, users, names


def show(driver, url: str, page: str, **params: str) -> None:
    driver.get(f"{url}/?{urlencode({'page': page, **params})}")
    WebDriverWait(driver, 60).until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "h1")
            and page in d.find_element(By.CSS_SELECTOR, "h1").text
            and d.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')
        )
    )


def foreign(driver, elsewhere: Listener) -> list[str]:
    """Elements that would reach the names' host: images, links, frames, anything with a src or href."""
    return [
        e.get_attribute("outerHTML")[:120]
        for e in driver.find_elements(By.CSS_SELECTOR, "[src], [href]")
        if str(elsewhere.port) in (e.get_attribute("src") or "") + (e.get_attribute("href") or "")
    ]


@pytest.mark.parametrize("nick", list(NAMES))
def test_a_persons_heading_is_their_name_as_typed(hostile, nick: str) -> None:
    driver, url, elsewhere, users, names = hostile
    user = users[nick]
    show(driver, url, "Person", user=user.uuid)
    heading = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.CSS_SELECTOR, "main h3"))
    # The name as typed, then what tells namesakes apart (nickname, workspaces, reach, account id).
    assert heading.text.startswith(f"{visible(names[nick])} (@{user.nickname}; tiny-co")
    assert heading.text.endswith(f"; {user.account_id})")
    assert not heading.find_elements(By.XPATH, "./*")  # text only: no image, link, emphasis or icon
    pickers = driver.find_elements(
        By.CSS_SELECTOR, '[data-testid="stSidebar"] [data-testid="stSelectbox"] input'
    )
    assert heading.text in [picker.get_attribute("value") for picker in pickers]  # the picker shows it so too
    assert foreign(driver, elsewhere) == [] and elsewhere.received == []


def test_the_who_has_access_table_links_every_name_with_the_dashboards_own_link(hostile) -> None:
    driver, url, elsewhere, users, names = hostile
    show(driver, url, "Who has access", resource="tiny-co|repository|payments-api")
    rows = WebDriverWait(driver, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "table.bb-table tbody tr")
    )
    links = {a.text: a.get_attribute("href") for row in rows for a in row.find_elements(By.CSS_SELECTOR, "a")}
    for nick in ("ana", "ben", "carl", "dev"):
        target = links[visible(names[nick])]
        assert target.startswith(f"{url}/?page=Person") and f"user=%7B{users[nick].uuid[1:-1]}%7D" in target
    assert len(links) == len(rows)  # one link per row: the person's, nothing a name made
    assert foreign(driver, elsewhere) == [] and elsewhere.received == []


@pytest.mark.parametrize(
    ("page", "params"),
    [
        ("Overview", {"list": "users_with_access"}),
        ("Changes", {"user": "all"}),
        ("Risks", {}),
        ("Provisioning", {}),
        ("Change control", {}),
    ],
)
def test_no_other_page_interprets_a_name(hostile, page: str, params: dict) -> None:
    driver, url, elsewhere, _, names = hostile
    show(driver, url, page, **params)
    if page in ("Overview", "Changes", "Risks"):  # their tables render after the metrics
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.bb-table"))
    main = driver.find_element(By.CSS_SELECTOR, "main")
    assert not main.find_elements(By.CSS_SELECTOR, "main img")
    anchors = main.find_elements(By.CSS_SELECTOR, "table.bb-table a, p.bb-text a")
    assert all(a.get_attribute("href").startswith(f"{url}/?page=") for a in anchors)  # the dashboard's own
    if page == "Overview":  # the list behind "Users with access" links every name, shown as typed
        texts = {a.text for a in anchors}
        assert {visible(name) for name in names.values()} <= texts
    assert foreign(driver, elsewhere) == [] and elsewhere.received == []
