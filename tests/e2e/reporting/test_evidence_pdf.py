"""The evidence report an auditor prints: Chromium renders it to PDF on A4 or Letter pages, and nothing in it
is wider than the page (tables wrap, charts shrink), with every section on a page of its own."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from bitbucket_assets.reporting.evidence import SECTIONS, build_evidence_pack
from tests.support.browser import CHROMIUM, DRIVER, require_chromium

require_chromium()

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

# The printable width in CSS pixels (96 per inch) of A4, the narrower of the two, inside the report's
# @page margins of 12 mm each side: 186 mm.
A4_CONTENT_PX = (210 - 2 * 12) / 25.4 * 96
PAGE_POINTS = {"A4": (595, 842), "Letter": (612, 792)}


@pytest.fixture(scope="module")
def report(demo_warehouse, tmp_path_factory) -> Path:
    """The demo's whole history as one pack: 30 syncs, every change of the month (thousands of rows)."""
    out = tmp_path_factory.mktemp("pack")
    with duckdb.connect(str(demo_warehouse.read_copy), read_only=True) as con:
        first = con.execute("select min(synced_at) from marts.fct_sync_summary").fetchone()[0]
        pack = build_evidence_pack(con, first - timedelta(days=1), datetime.now(UTC), out)
    return pack.report


def test_nothing_is_wider_than_a_printed_page(report: Path) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        width = int(A4_CONTENT_PX)
        metrics = {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        driver.get(report.as_uri())
        assert driver.execute_script("return document.documentElement.scrollWidth") <= width
        wider = driver.execute_script(
            "return [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > arguments[0] + 0.5)"
            ".map(e => e.tagName + ' ' + e.textContent.slice(0, 60))",
            width,
        )
        assert wider == []
        # Each section starts a page of its own when printed.
        breaks = dict(
            driver.execute_script(
                "return [...document.querySelectorAll('h2[id]')]"
                ".map(h => [h.id, getComputedStyle(h).breakBefore])"
            )
        )
        assert all(breaks[name] == "page" for _, name in SECTIONS) and breaks["syncs"] == "page", breaks
    finally:
        driver.quit()


def test_chromium_prints_it_on_sane_pages(report: Path, tmp_path) -> None:
    pdf = tmp_path / "evidence.pdf"
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0 and pdf.exists(), done.stderr[-800:]
    raw = pdf.read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", raw)
    sizes = {(round(float(w)), round(float(h))) for w, h in boxes}
    assert len(sizes) == 1 and sizes <= set(PAGE_POINTS.values()), sizes  # one paper size, A4 or Letter
    # Every section on pages of its own, 200 rows at most per table: more than the sections, not hundreds.
    assert len(SECTIONS) + 3 <= len(boxes) <= 80
