"""Benchmark: how fast the simulator builds `large` and serves paginated requests on one core.

Run: `make bench` or `.venv/bin/python bench/simulator_throughput.py [--seconds 10] [--threads 8]`.
The server runs in its own process pinned to CPU 0 (`bitbucket-access simulator --org large`); the load
comes from this process, pinned to CPU 1, over keep-alive HTTP connections on loopback. Figures and the
machine they ran on are printed; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, start_simulator  # noqa: E402

from bitbucket_simulator import SIM_API_TOKEN, load_organisation  # noqa: E402


def build_large() -> tuple[float, float]:
    """Seconds and peak-RSS MB to build `large`, measured in a fresh interpreter."""
    code = (
        "import resource,time;from bitbucket_simulator import load_organisation;"
        "t=time.perf_counter();org=load_organisation('large');d=time.perf_counter()-t;"
        "print(d, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    seconds, mb = out.split()
    return float(seconds), float(mb)


def load(url: str, email: str, paths: list[str], seconds: float, threads: int) -> tuple[int, int, float]:
    """Issue GETs round-robin over `paths` for `seconds`; returns (requests, non-200, elapsed)."""
    host = urlparse(url)
    auth = "Basic " + base64.b64encode(f"{email}:{SIM_API_TOKEN}".encode()).decode()
    counts, errors, stop = [0] * threads, [0] * threads, time.perf_counter() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(host.hostname, host.port)
        n = i
        while time.perf_counter() < stop:
            conn.request("GET", paths[n % len(paths)], headers={"Authorization": auth})
            response = conn.getresponse()
            response.read()
            counts[i] += 1
            errors[i] += response.status != 200
            n += threads

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts), sum(errors), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    print(f"machine: {machine()}")
    seconds, mb = build_large()
    print(f"build large: {seconds:.2f} s, peak RSS {mb:.0f} MB (targets: < 10 s, < 1024 MB)")

    org = load_organisation("large")
    ws = org.workspaces["megacorp"]
    repos = list(ws.repositories.values())[:2000]
    # The mix a full sync sends: one permissions-config page per repository and kind, plus list pages.
    sync_mix = [
        f"/2.0/repositories/megacorp/{r.slug}/permissions-config/{k}?pagelen=100"
        for r in repos
        for k in ("users", "groups")
    ]
    sync_mix += [
        f"/2.0/workspaces/megacorp/projects/{quote(p)}/permissions-config/groups?pagelen=100"
        for p in list(ws.projects)[:200]
    ]
    sync_mix += [f"/2.0/repositories/megacorp?pagelen=100&page={i}" for i in range(1, 21)]
    sync_mix += [f"/2.0/workspaces/megacorp/members?pagelen=100&page={i}" for i in range(1, 21)]
    scenarios = {
        "sync mix (permission lists + list pages)": sync_mix,
        "repositories pages (pagelen 100)": [
            f"/2.0/repositories/megacorp?pagelen=100&page={i}" for i in range(1, 160)
        ],
        "workspace members pages (pagelen 100)": [
            f"/2.0/workspaces/megacorp/members?pagelen=100&page={i}" for i in range(1, 40)
        ],
        "repository permissions-config users": [
            f"/2.0/repositories/megacorp/{r.slug}/permissions-config/users" for r in repos
        ],
    }
    proc, url, email = start_simulator("large")
    try:
        load(url, email, sync_mix[:200], 1.0, args.threads)  # warm-up (caches, connections)
        results = {}
        for name, paths in scenarios.items():
            n, bad, elapsed = load(url, email, paths, args.seconds, args.threads)
            results[name] = n / elapsed
            print(f"{name}: {n / elapsed:,.0f} requests/s over {elapsed:.1f} s ({n} requests, {bad} not 200)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(
        json.dumps(
            {
                "build_seconds": round(seconds, 2),
                "build_peak_mb": round(mb),
                **{k: round(v) for k, v in results.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
