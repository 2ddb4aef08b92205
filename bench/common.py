"""What the benchmarks share: the machine they ran on and a simulator in its own pinned process."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    return f"{platform.node()} · {cpu} · {os.cpu_count()} cores · Python {platform.python_version()}"


def start_simulator(org: str, rate_limit: str = "off") -> tuple[subprocess.Popen, str, str]:
    """`bitbucket-access simulator` pinned to CPU 0; returns the process, its URL and the operator's email."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bitbucket_assets.cli",
            "simulator",
            "--org",
            org,
            "--port",
            "0",
            "--rate-limit",
            rate_limit,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = re.search(r"on (http://\S+)", proc.stdout.readline()).group(1)
    email = re.search(r"BITBUCKET_EMAIL=(\S+)", proc.stdout.readline() + proc.stdout.readline()).group(1)
    return proc, url, email
