"""Small helpers several test packages share: a free loopback port, and waiting for something to happen."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 480.0, tolerate: tuple = ()) -> Any:
    """Poll `condition` every two seconds until it gives something truthy, and return that; fail naming `what`
    after `timeout` seconds (generous: the tests assert on what happened, never on how long it took).
    Exceptions in `tolerate` (e.g. a server not listening yet) count as not yet."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except tolerate:
            value = None
        if value:
            return value
        time.sleep(2)
    pytest.fail(f"gave up waiting for {what} after {timeout:.0f} s")


ROOT = Path(__file__).resolve().parents[2]  # the repository
CLI = str(Path(sys.executable).parent / "bitbucket-access")  # the installed command, beside this Python
