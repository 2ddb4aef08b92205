"""Fresh after every change: a review's revocation, imported and applied after the last sync, shows on the
dashboard's Provisioning page and in a new evidence pack with no sync in between (the provisioning copy,
warehouse/provisioning_copy.py), and both say the time of their data."""

from __future__ import annotations

import csv
import os
import subprocess
from datetime import UTC, datetime

import duckdb

from bitbucket_assets.warehouse.files import publish_read_copy
from bitbucket_assets.warehouse.provisioning_copy import when
from bitbucket_simulator import SIM_API_TOKEN
from tests.support import CLI
from tests.support.browser import dashboard_in_chromium, require_chromium

require_chromium()

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
    return done


def test_a_revocation_shows_on_the_dashboard_and_in_a_new_pack_before_any_sync(
    make_sim, warehouse, tmp_path
) -> None:
    sim = make_sim()
    env = {
        **os.environ,
        "BITBUCKET_API_URL": sim.url,
        "BITBUCKET_EMAIL": sim.email,
        "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
        "BITBUCKET_REQUESTS_PER_HOUR": "1000000",
        "DUCKDB_PATH": warehouse,
    }
    read_copy = str(publish_read_copy(warehouse))  # what the last sync published: no request yet
    review = tmp_path / "review.csv"
    export = ("--as-of", "2099-01-01", "--workspace", "tiny-co", "--format", "csv", "--out", str(review))
    cli(env, "review", "export", *export)
    with review.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["user_display_name"] == "Ben Okafor" and row["resource_key"] == "payments-api":
            row.update(decision="revoke", reviewer="olga@tiny.example")
    with review.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cli(env, "review", "import", str(review))
    assert "-> applied" in cli(env, "provision").stdout
    assert sim.user("ben").uuid not in sim.org.workspaces["tiny-co"].groups["developers"].members
    with duckdb.connect(warehouse, read_only=True) as con:
        request_id, newest = con.execute(
            "select request_id, attempted_at from provisioning.provisioning_log where outcome = 'applied'"
        ).fetchone()
        synced = con.execute("select max(synced_at) from marts.fct_sync_summary").fetchone()[0]

    # A new evidence pack, no sync in between: the removal, and the time of its data on every row.
    pack = tmp_path / "pack"
    today = datetime.now(UTC).date().isoformat()
    cli(env, "evidence", "--from", today, "--to", today, "--out", str(pack))
    with (pack / "provisioning.csv").open(encoding="utf-8", newline="") as handle:
        actions = list(csv.DictReader(handle))
    assert [(a["request_id"], a["outcome"]) for a in actions] == [(request_id, "applied")]
    # the person and the group by name beside their ids
    assert (actions[0]["user_display_name"], actions[0]["group_name"]) == ("Ben Okafor", "Developers")
    assert actions[0]["provisioning_log_at"] == newest.astimezone(UTC).isoformat(timespec="seconds")
    assert actions[0]["snapshot_at"] == synced.astimezone(UTC).isoformat(timespec="seconds")
    with (pack / "attestations.csv").open(encoding="utf-8", newline="") as handle:
        decided = [(a["user_display_name"], a["resource_key"], a["decision"]) for a in csv.DictReader(handle)]
    assert decided == [("Ben Okafor", "payments-api", "revoke")]  # the decided item, from the copy
    report = " ".join((pack / "evidence.html").read_text(encoding="utf-8").split())
    assert f"the provisioning log to <strong>{when(newest)}</strong>" in report

    # The dashboard over the read copy the sync published: the request applied, and the times said.
    with dashboard_in_chromium(read_copy) as (driver, url):
        driver.get(f"{url}/?page=Provisioning")
        WebDriverWait(driver, 60).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')) == 3
        )
        labels = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricLabel"]')]
        values = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetricValue"]')]
        shown = dict(zip(labels, values, strict=True))
        assert (shown["Requests"], shown["Applied"]) == ("1", "1")  # the sync's read copy holds none
        said = driver.find_element(By.CSS_SELECTOR, ".bb-data-times").text
        assert f"snapshot of {when(synced)}" in said and f"provisioning log to {when(newest)}" in said
