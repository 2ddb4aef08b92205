"""Benchmark: a full sync of the `large` organisation — API calls, concurrency, pacing, memory.

Run: `.venv/bin/python bench/sync_benchmark.py` (about 10 minutes on 2 cores). Parts can be chosen with
`--parts calls,latency,ratelimit`. The simulator runs in its own process (pinned to CPU 0); each sync
runs in a fresh process (pinned to CPU 1) so its peak RSS is its own. Figures and the machine are printed;
docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import machine, start_simulator  # noqa: E402

from bitbucket_simulator import SIM_API_TOKEN  # noqa: E402

SYNC = """
import json, resource, sys, time, duckdb
from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.sync import run_sync
url, email, token, db, workers, budget, window, effective, limit = sys.argv[1:10]
client = BitbucketClient(Credentials.api_token(email, token), url, max_workers=int(workers),
                         requests_per_hour=float(budget), window_seconds=float(window))
started = time.perf_counter()
with duckdb.connect(db) as con:
    from bitbucket_assets.extraction import extract
    options = ExtractionOptions(effective_permissions=effective == "1")
    if limit != "0":  # a slice: only the first N repository pages of the main workspace (sequential baseline)
        real_pages = client.pages
        def pages(path, params=None, *, workspace=None, _n=[0]):
            for page in real_pages(path, params, workspace=workspace):
                yield page
                if "/2.0/repositories/" in path:
                    _n[0] += 1
                    if _n[0] >= int(limit):
                        raise KeyboardInterrupt
        client.pages = pages
    try:
        result = run_sync(client, con, options)
        counts = result.counts
    except KeyboardInterrupt:
        counts = {}
elapsed = time.perf_counter() - started
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
stats = client.stats.as_dict()
print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak_mb, "stats": stats, "counts": counts}))
"""


def run_sync(
    url: str,
    email: str,
    workers: int,
    budget: float = 1e9,
    window: float = 3600,
    effective: bool = True,
    limit_pages: int = 0,
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            url,
            email,
            SIM_API_TOKEN,
            f"{tmp}/w.duckdb",
            str(workers),
            str(budget),
            str(window),
            "1" if effective else "0",
            str(limit_pages),
        ]
        out = subprocess.run(
            [sys.executable, "-c", SYNC, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {1}),
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def per_bucket(stats: dict) -> str:
    """Calls per Bitbucket rate-limit bucket, and the hours the busiest takes at 1,000 requests an hour: the
    sync's duration if both buckets were paced at once (its stages run one after another today)."""
    repositories = sum(v for k, v in stats["calls_by_family"].items() if k.startswith("2.0/repositories"))
    other = stats["calls"] - repositories
    return (
        f"calls per bucket: /2.0/repositories/* {repositories:,}, other {other:,}; "
        f"at 1,000/h: {stats['calls'] / 1000:.1f} h with the buckets taking turns, "
        f"{max(repositories, other) / 1000:.1f} h if paced at once"
    )


def minimum_calls(url: str, email: str) -> dict[str, int]:
    """What the API allows at best: every list at pagelen 100, one call per project permission list and per
    repository users list, and each workspace's repository group grants in one `/1.0/group-privileges`
    call."""
    s = requests.Session()
    s.auth = (email, SIM_API_TOKEN)
    out = {"pages": 0, "permission_lists": 0, "groups": 0, "workspace_gets": 0}
    workspaces = s.get(f"{url}/2.0/user/workspaces?pagelen=100").json()["values"]
    out["pages"] += 1
    peer = 1
    for access in workspaces:
        slug = access["workspace"]["slug"]
        sizes = {}
        for name, path in (
            ("members", f"/2.0/workspaces/{slug}/permissions"),
            ("projects", f"/2.0/workspaces/{slug}/projects"),
            ("repositories", f"/2.0/repositories/{slug}"),
        ):
            sizes[name] = s.get(f"{url}{path}?pagelen=1").json()["size"]
            out["pages"] += max(1, math.ceil(sizes[name] / 100))
        out["workspace_gets"] += 1
        out["groups"] += 2  # /1.0/groups and /1.0/group-privileges
        out["permission_lists"] += 2 * sizes["projects"] + sizes["repositories"]
        # The peer pattern: members at pagelen 50, 3-4 calls per project, 2 per repository.
        peer += (
            math.ceil(sizes["members"] / 50)
            + math.ceil(sizes["projects"] / 50)
            + math.ceil(sizes["repositories"] / 50)
        )
        peer += 4 * sizes["projects"] + 2 * sizes["repositories"]
    out["total_without_effective"] = (
        out["pages"] + out["permission_lists"] + out["groups"] + out["workspace_gets"]
    )
    out["peer_pattern"] = peer
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parts", default="calls,latency,ratelimit")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"machine: {machine()}")
    results: dict[str, object] = {}

    if parts & {"calls", "latency"}:
        proc, url, email = start_simulator("large")
        try:
            if "calls" in parts:
                minimum = minimum_calls(url, email)
                run = run_sync(url, email, args.workers, effective=False)
                calls = run["stats"]["calls"]
                print(
                    f"large, no latency, {args.workers} workers, grants only: "
                    f"{calls:,} calls in {run['seconds']:.0f} s, "
                    f"peak RSS {run['peak_rss_mb']:.0f} MB, {run['counts'].get('repositories')} repositories"
                )
                print(
                    f"  minimum the API allows: {minimum['total_without_effective']:,} "
                    f"(ratio {calls / minimum['total_without_effective']:.3f}); "
                    f"peer pattern: {minimum['peer_pattern']:,}"
                )
                print("  " + per_bucket(run["stats"]))
                full = run_sync(url, email, args.workers, effective=True)
                print("  with effective permissions: " + per_bucket(full["stats"]))
                effective_pages = full["stats"]["calls"] - calls
                print(
                    f"  with Bitbucket's effective permissions too: {full['stats']['calls']:,} calls "
                    f"({effective_pages:,} pages, "
                    f"{full['counts'].get('effective_repository_permissions'):,} rows) in "
                    f"{full['seconds']:.0f} s, peak RSS {full['peak_rss_mb']:.0f} MB"
                )
                results["calls"] = {
                    "calls": calls,
                    "minimum": minimum,
                    "seconds": run["seconds"],
                    "peak_rss_mb": run["peak_rss_mb"],
                    "full": full,
                }
            if "latency" in parts:
                requests.post(f"{url}/_sim/faults", json={"latency_ms": 50}, timeout=10)
                concurrent = run_sync(url, email, args.workers, effective=False)
                sequential = run_sync(url, email, 1, effective=False, limit_pages=3)
                per_call_seq = sequential["seconds"] / sequential["stats"]["calls"]
                projected = per_call_seq * concurrent["stats"]["calls"]
                print(
                    f"large, 50 ms latency: {args.workers} workers {concurrent['seconds']:.0f} s for "
                    f"{concurrent['stats']['calls']:,} calls; sequential {per_call_seq * 1000:.1f} ms/call "
                    f"measured on {sequential['stats']['calls']} calls -> {projected:.0f} s projected; "
                    f"speed-up {projected / concurrent['seconds']:.1f}x"
                )
                results["latency"] = {
                    "concurrent_s": concurrent["seconds"],
                    "sequential_ms_per_call": per_call_seq * 1000,
                    "projected_sequential_s": projected,
                }
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    if "ratelimit" in parts:
        limit, window = 200, 2.0
        proc, url, email = start_simulator("demo", rate_limit=f"{limit}/{window}")
        try:
            # The client's budget sits 5 % under the server's limit; its burst (budget / 20) fills the rest.
            run = run_sync(url, email, 8, budget=limit * 0.95, window=window, effective=False)
            calls, seconds = run["stats"]["calls"], run["seconds"]
            by_group = run["stats"]["calls_by_family"]
            repo_calls = sum(v for k, v in by_group.items() if k.startswith("2.0/repositories"))
            busiest = max(repo_calls, calls - repo_calls)
            windows_needed = busiest / limit
            print(
                f"demo under {limit} requests/{window:g} s per bucket: {calls} calls in {seconds:.1f} s = "
                f"{seconds / window:.2f} windows; bound (busiest bucket {busiest} calls / {limit}) "
                f"= {windows_needed:.2f} windows -> ratio {seconds / window / windows_needed:.2f}; "
                f"429s: {run['stats']['rate_limited']}"
            )
            results["ratelimit"] = {
                "calls": calls,
                "seconds": seconds,
                "windows_needed": windows_needed,
                "rate_limited": run["stats"]["rate_limited"],
            }
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
