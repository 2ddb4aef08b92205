"""Writing one sync's rows into the raw tables, and making them visible only when the sync completed."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from .raw_schema import TABLES, column_names, create_raw_schema

FLUSH_ROWS = 5000


class SnapshotWriter:
    """Buffers rows per table and appends them in batches, all tagged with this sync's id."""

    def __init__(self, con: duckdb.DuckDBPyConnection, sync_id: str):
        self.con, self.sync_id = con, sync_id
        self.buffers: dict[str, list[tuple]] = defaultdict(list)
        self.counts: Counter = Counter()
        create_raw_schema(con)

    def begin(self, api_url: str, credential_kind: str) -> list[str]:
        """Register the sync as running, after removing what earlier killed or failed syncs left behind."""
        abandoned = [
            r[0] for r in self.con.execute("SELECT sync_id FROM raw.syncs WHERE status <> 'complete'").fetchall()
        ]
        for sync_id in abandoned:
            self._delete_rows(sync_id)
        self.con.execute("UPDATE raw.syncs SET status = 'abandoned' WHERE status = 'running'")
        self.con.execute(
            "INSERT INTO raw.syncs (sync_id, started_at, status, api_url, credential_kind) "
            "VALUES (?, ?, 'running', ?, ?)",
            [self.sync_id, datetime.now(UTC), api_url, credential_kind],
        )
        return abandoned

    def add(self, table: str, row: dict[str, Any]) -> None:
        values = tuple(self.sync_id if c == "sync_id" else _cell(row.get(c)) for c in column_names(table))
        self.buffers[table].append(values)
        self.counts[table] += 1
        if len(self.buffers[table]) >= FLUSH_ROWS:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.buffers):
            rows = self.buffers.pop(name, [])
            if rows:
                frame = pd.DataFrame(rows, columns=column_names(name), dtype=object)  # noqa: F841 - read by SQL
                self.con.execute(f"INSERT INTO raw.{name} SELECT * FROM frame")

    def complete(self, workspaces: list[str], stats: dict[str, Any]) -> None:
        """Flush and publish: from this statement on, the snapshot is visible, all of it at once."""
        self.flush()
        counts = {t: self.counts.get(t, 0) for t in TABLES if t != "fetch_log"}
        self.con.execute(
            "UPDATE raw.syncs SET status = 'complete', finished_at = ?, workspaces = ?, entity_counts = ?, "
            "api_calls = ?, retries = ?, rate_limited = ? WHERE sync_id = ?",
            [
                datetime.now(UTC),
                workspaces,
                json.dumps(counts),
                json.dumps(stats["calls_by_family"]),
                stats["retries"],
                stats["rate_limited"],
                self.sync_id,
            ],
        )

    def fail(self, error: str, stats: dict[str, Any] | None) -> None:
        """Drop this sync's rows and record why it failed."""
        self.buffers.clear()
        self._delete_rows(self.sync_id)
        self.con.execute(
            "UPDATE raw.syncs SET status = 'failed', finished_at = ?, error = ?, api_calls = ?, retries = ?, "
            "rate_limited = ? WHERE sync_id = ?",
            [
                datetime.now(UTC),
                error[:2000],
                json.dumps((stats or {}).get("calls_by_family", {})),
                (stats or {}).get("retries"),
                (stats or {}).get("rate_limited"),
                self.sync_id,
            ],
        )

    def _delete_rows(self, sync_id: str) -> None:
        for name in TABLES:
            self.con.execute(f"DELETE FROM raw.{name} WHERE sync_id = ?", [sync_id])


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value
