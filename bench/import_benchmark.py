"""How long `requests import` takes for a large file: 300,000 rows validated and inserted in one transaction.

.venv/bin/python bench/import_benchmark.py [rows]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine

from bitbucket_assets.provisioning.requests_import import import_requests

HEADER = "request_id,workspace_slug,group_slug,user_id,action,requested_by,approved_by,approved_at,reason\n"


def main(rows: int) -> None:
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "requests.csv"
        with path.open("w", encoding="utf-8") as handle:
            handle.write(HEADER)
            for i in range(rows):
                user = f"{{0b6d6d6e-1111-4222-8333-{i:012d}}}"
                handle.write(
                    f"bulk-{i:07d},acme,team-{i % 300},{user},add,lead@x,sec@x,2026-11-27T08:00:00Z,bulk\n"
                )
        with duckdb.connect(str(Path(tmp) / "w.duckdb")) as con:
            started = time.perf_counter()
            imported = import_requests(con, path)
            elapsed = time.perf_counter() - started
        size = path.stat().st_size / 1e6
    print(f"imported {imported:,} rows ({size:.1f} MB file) in {elapsed:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300_000)
