"""Regenerate the README's screenshots: the dashboard's pages and the evidence report of a fresh demo.

    .venv/bin/python docs/screenshots.py                       # runs `bitbucket-access demo` first (minutes)
    .venv/bin/python docs/screenshots.py --demo-dir data       # or reuse a demo's files (demo.duckdb beside)

Needs Debian's chromium and chromium-driver. Serves the dashboard over the demo's read copy and saves, from
headless Chromium at 1,280 px wide, `docs/images/overview.png`, `who-has-access.png`, `changes.png`,
`risks.png`, `change-control.png` and `evidence.png`. Nothing is drawn by hand.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
EXE = Path(sys.executable).parent / "bitbucket-access"
WIDTH = 1280


@dataclass(frozen=True)
class Shot:
    """One screenshot: the page's URL query, what must be drawn before it is taken, the window's height."""

    name: str
    query: str
    ready: str  # a CSS selector
    count: int = 1
    height: int = 1000


SHOTS = (
    Shot(
        "overview",
        "page=Overview",
        '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg',
        6,
        1100,
    ),
    Shot(
        "who-has-access",
        "page=Who+has+access&resource=northwind%7Crepository%7Cplatfo1-sync-cli&permission=write",
        "table.bb-table",
    ),
    Shot("changes", "page=Changes", "table.bb-table"),
    Shot("risks", "page=Risks&ws=northwind", "table.bb-table", height=1300),
    Shot(
        "change-control",
        "page=Change+control&ws=northwind",
        '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg',
        height=1300,
    ),
)


def browser(height: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={WIDTH},{height}",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"the dashboard did not listen on port {port}")


def shoot(database: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(EXE), "dashboard", "--port", str(port)],
        env={**os.environ, "DUCKDB_PATH": str(database)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    driver = browser(1000)
    try:
        wait_for_port(port)
        for shot in SHOTS:
            driver.set_window_size(WIDTH, shot.height)
            driver.get(f"http://127.0.0.1:{port}/?{shot.query}")
            WebDriverWait(driver, 120).until(
                lambda d, s=shot: len(d.find_elements(By.CSS_SELECTOR, s.ready)) >= s.count
            )
            time.sleep(2)  # let the charts finish drawing
            driver.save_screenshot(str(IMAGES / f"{shot.name}.png"))
        driver.set_window_size(WIDTH, 1100)
        driver.get((database.with_name("demo-evidence") / "evidence.html").as_uri())
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "h1"))
        driver.save_screenshot(str(IMAGES / "evidence.png"))
    finally:
        driver.quit()
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-dir", type=Path, help="a directory holding demo.duckdb and demo-evidence/")
    args = parser.parse_args()
    IMAGES.mkdir(parents=True, exist_ok=True)
    if args.demo_dir:
        shoot(args.demo_dir.resolve() / "demo.duckdb")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            database = Path(tmp) / "demo.duckdb"
            env = {**os.environ, "DUCKDB_PATH": str(database)}
            subprocess.run([str(EXE), "demo"], env=env, check=True, stdout=subprocess.DEVNULL)
            shoot(database)
    print(f"wrote {', '.join(f'{s.name}.png' for s in SHOTS)} and evidence.png in {IMAGES}")


if __name__ == "__main__":
    main()
