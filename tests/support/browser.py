"""The dashboard served by the installed command and a headless Chromium (Debian's) looking at it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import free_port

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def require_chromium() -> None:
    """Skip the module without a browser, except in CI, where `.ci/run` installs one."""
    if not (CHROMIUM and DRIVER):
        if os.environ.get("CI"):
            raise RuntimeError("CI needs Debian's chromium and chromium-driver: .ci/run installs them")
        pytest.skip(
            "headless Chromium is not installed (apt-get install chromium chromium-driver)",
            allow_module_level=True,
        )


@contextmanager
def dashboard_in_chromium(database: str) -> Iterator[tuple[object, str]]:
    """`bitbucket-access dashboard` over `database` on a free port, and a headless Chromium: (driver, url)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    port = free_port()
    exe = Path(sys.executable).parent / "bitbucket-access"
    proc = subprocess.Popen(
        [str(exe), "dashboard", "--port", str(port)],
        env={**os.environ, "BITBUCKET_DASHBOARD_DB": database},
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
    try:
        yield driver, f"http://127.0.0.1:{port}"
    finally:
        driver.quit()
        proc.terminate()
        proc.wait(timeout=10)
