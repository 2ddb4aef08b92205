"""The dashboard listens on loopback by default, and with sign-in required it shows nothing before sign-in."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.support import ROOT
from tests.support.apptest import run_page

APP = str(ROOT / "bitbucket_assets" / "dashboard" / "app.py")
EXE = Path(sys.executable).parent / "bitbucket-access"


def test_with_sign_in_required_no_data_is_rendered_before_login(dashboard_db, monkeypatch) -> None:
    monkeypatch.setenv("BITBUCKET_DASHBOARD_DB", dashboard_db)
    monkeypatch.setenv("BITBUCKET_DASHBOARD_SIGN_IN", "true")
    for page in ("Overview", "Who has access", "Risks", "Provisioning"):
        app = AppTest.from_file(APP, default_timeout=60)
        app.query_params["page"] = page
        run_page(app)
        assert not app.exception, app.exception
        assert [b.label for b in app.button] == ["Sign in"]
        assert not app.metric and not app.dataframe and not app.sidebar.radio
        assert dashboard_db not in str(app)  # not even where the warehouse is


def test_without_sign_in_the_pages_render(dashboard_db, monkeypatch) -> None:
    monkeypatch.setenv("BITBUCKET_DASHBOARD_DB", dashboard_db)
    monkeypatch.delenv("BITBUCKET_DASHBOARD_SIGN_IN", raising=False)
    app = AppTest.from_file(APP, default_timeout=60)
    run_page(app)
    assert not app.exception and app.metric and not app.button


def _listening(port: int) -> set[str]:
    """Local addresses with a socket listening on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.add(address)
    return found


def test_the_command_listens_on_loopback_only(dashboard_db) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "BITBUCKET_DASHBOARD_DB": dashboard_db}
    proc = subprocess.Popen(
        [str(EXE), "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # generous: a busy machine only starts it later
        while not _listening(port) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and no wildcard or IPv6 listener
        assert proc.stdout.readline().strip() == f"dashboard on http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=120)  # a busy machine stops it late, too
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=60)
