"""Regenerate the README's screenshots: the dashboard's overview and the evidence report of a fresh demo.

    .venv/bin/python docs/screenshots.py          # needs Debian's chromium and chromium-driver

Runs `bitbucket-access demo` into a temporary directory, serves the dashboard over its read copy, and saves
`docs/images/overview.png` and `docs/images/evidence.png` from headless Chromium. Nothing is drawn by hand.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
EXE = Path(sys.executable).parent / "bitbucket-access"


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1500,1100",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "demo.duckdb"
        env = {**os.environ, "DUCKDB_PATH": str(database)}
        subprocess.run([str(EXE), "demo"], env=env, check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        server = subprocess.Popen(
            [str(EXE), "dashboard", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        driver = browser()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.2)
            driver.get(f"http://127.0.0.1:{port}/?page=Overview")
            WebDriverWait(driver, 120).until(
                lambda d: (
                    len(
                        d.find_elements(
                            By.CSS_SELECTOR,
                            '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg',
                        )
                    )
                    >= 6
                )
            )
            time.sleep(2)  # let the charts finish drawing
            driver.save_screenshot(str(IMAGES / "overview.png"))
            driver.get((database.with_name("demo-evidence") / "evidence.html").as_uri())
            WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "h1"))
            driver.save_screenshot(str(IMAGES / "evidence.png"))
        finally:
            driver.quit()
            server.terminate()
            server.wait(timeout=10)
    print(f"wrote {IMAGES / 'overview.png'} and {IMAGES / 'evidence.png'}")


if __name__ == "__main__":
    main()
