"""Every dashboard page loaded in a real headless Chromium (Debian's), its key numbers checked against SQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium and chromium-driver: .ci/run installs them")
    pytest.skip(
        "headless Chromium is not installed (apt-get install chromium chromium-driver)", allow_module_level=True
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from ..support import free_port  # noqa: E402


@pytest.fixture(scope="module")
def served(dashboard_db):
    port = free_port()
    exe = Path(sys.executable).parent / "bitbucket-access"
    proc = subprocess.Popen(
        [str(exe), "dashboard", "--port", str(port)],
        env={**os.environ, "BITBUCKET_DASHBOARD_DB": dashboard_db},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver, f"http://127.0.0.1:{port}"
    driver.quit()
    proc.terminate()
    proc.wait(timeout=10)


def metrics(driver, url: str, page: str) -> dict[str, str]:
    driver.get(f"{url}/?page={page.replace(' ', '+')}")
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


def sql(db: str, statement: str) -> int:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(statement).fetchone()[0]


@pytest.mark.parametrize(
    ("page", "label", "statement"),
    [
        ("Overview", "Users", "select count(*) from marts.dim_users"),
        ("Overview", "Grant paths", "select count(*) from marts.fct_grants"),
        # The first resource and the first person in the pickers are shown by default.
        (
            "Who has access",
            "Users with access",
            "select count(*) from marts.effective_access_as_of(now()) e join (select workspace_slug, resource_type, "
            "resource_key from marts.fct_grant_history where resource_type in ('repository', 'project') "
            "order by all limit 1) f using (workspace_slug, resource_type, resource_key)",
        ),
        (
            "Person",
            "Resources reachable now",
            "select count(*) from marts.fct_effective_access where user_uuid = "
            "(select user_uuid from marts.dim_users order by display_name limit 1)",
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
