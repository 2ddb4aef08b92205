"""Writing one sync's rows into the raw tables, in checkpoints, visible only when the sync completed.

Rows are buffered and written inside a DuckDB transaction that commits together with a checkpoint
row (`raw.sync_checkpoints`: where each workspace's stage stopped). A kill therefore loses at most the
work since the last checkpoint, and never leaves rows without the checkpoint that accounts for them.
The effective list is written between the other stages' pages (it is fetched beside them), so its rows are
buffered apart and committed only with its own checkpoints; rows any stage may add (users, anomalies) go with
whichever checkpoint comes first, which is harmless: a user is written once per sync, however often seen.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import duckdb
import pandas as pd

from ..client.api import SkippedEntry, User
from ..client.client import endpoint_family
from ..clock import Clock, SystemClock
from .gone import Gone
from .identities import build_directory
from .raw_schema import TABLES, column_names, create_raw_schema
from .refresh import WorkspaceRefresh, carry_forward

# Tables a checkpoint of the `effective` stage commits, and those any checkpoint commits.
EFFECTIVE = "effective_repository_permissions"
EFFECTIVE_TABLES = frozenset({EFFECTIVE})
SHARED_TABLES = frozenset({"user_sightings", "anomalies"})
_EFFECTIVE_REPOSITORY = column_names(EFFECTIVE).index("repository_uuid")
# A resource's rows in a snapshot, and the column naming it (`drop_resource`). A new per-resource table joins
# its kind here, so that a resource that is gone takes its rows with it.
RESOURCE_ROWS: dict[str, dict[str, str]] = {
    "repository": {
        "repositories": "repository_uuid",
        "repository_user_permissions": "repository_uuid",
        "repository_group_permissions": "repository_uuid",
        "fetch_log": "resource_id",
        EFFECTIVE: "repository_uuid",
        "branch_restrictions": "repository_uuid",
        "branch_restriction_exemptions": "repository_uuid",
        "branching_models": "repository_uuid",
        "deploy_keys": "resource_id",
        "change_control_reads": "resource_id",
    },
    "project": {
        "projects": "project_uuid",
        "project_user_permissions": "project_uuid",
        "project_group_permissions": "project_uuid",
        "fetch_log": "resource_id",
        "deploy_keys": "resource_id",
        "change_control_reads": "resource_id",
    },
}


class SnapshotWriter:
    """Buffers rows per table and appends them in batches, all tagged with this sync's id."""

    def __init__(self, con: duckdb.DuckDBPyConnection, sync_id: str, clock: Clock | None = None):
        self.con, self.sync_id = con, sync_id
        self.clock = clock or SystemClock()  # the client's: a simulated one only ever talks to the simulator
        self.buffers: dict[str, list[tuple]] = defaultdict(list)
        self.counts: Counter = Counter()
        self.in_transaction = False
        self.resumed = False
        self._skipped: list[dict[str, Any]] = []  # from worker threads; written at the next checkpoint
        self._skipped_lock = threading.Lock()
        # (user, source, workspace, account id, display name, nickname, type) written: every distinct sighting
        self._sightings: set[tuple] = set()
        self._directory_built = False  # raw.users of this sync written from its sightings (finish_rows)
        # Pages stream through; DuckDB's cache would otherwise grow towards 80 % of RAM on a large sync.
        con.execute("SET memory_limit = '384MB'")
        create_raw_schema(con)

    @staticmethod
    def _key(api_url: str, options: dict[str, Any]) -> str:
        return json.dumps({"api_url": api_url, **options}, sort_keys=True)

    def held(self, api_url: str, options: dict[str, Any]) -> str | None:
        """The snapshot held back as `suspect` that `accept_vanished` may publish: the newest sync of all,
        made with the same settings (an older one is stale: a later sync saw Bitbucket since)."""
        row = self.con.execute(
            "SELECT sync_id, status, options FROM raw.syncs WHERE status NOT IN ('failed') "
            "ORDER BY started_at DESC LIMIT 1"
        ).fetchone()
        return row[0] if row and row[1] == "suspect" and row[2] == self._key(api_url, options) else None

    def publish_held(self, sync_id: str) -> None:
        """Publish a held snapshot as it was read: the change it shows was accepted (`accept_vanished`)."""
        self.sync_id = sync_id
        self.con.execute(
            "UPDATE raw.syncs SET status = 'complete', vanished_accepted = true, error = NULL "
            "WHERE sync_id = ?",
            [sync_id],
        )
        for table in TABLES:
            self.counts[table] = self.con.execute(
                f"SELECT count(*) FROM raw.{table} WHERE sync_id = ?", [sync_id]
            ).fetchone()[0]

    def begin(self, api_url: str, credential_kind: str, options: dict[str, Any]) -> list[str]:
        """Resume an unfinished sync made with the same settings, or start a new one.

        Returns the ids of unfinished syncs that were abandoned (their rows deleted): those made with other
        settings, and snapshots held back as `suspect` (never resumed; their manifest stays)."""
        key = self._key(api_url, options)
        unfinished = self.con.execute(
            # Failed syncs hold no rows, and pruned ones are history: only unfinished and held ones are
            # resumed or abandoned.
            "SELECT sync_id, status, options FROM raw.syncs WHERE status IN ('running', 'interrupted', "
            "'suspect') ORDER BY started_at DESC"
        ).fetchall()
        resume = next((r[0] for r in unfinished if r[2] == key and r[1] != "suspect"), None)
        abandoned = [r[0] for r in unfinished if r[0] != resume]
        for sync_id in abandoned:
            self._delete_rows(sync_id)
            self.con.execute("UPDATE raw.syncs SET status = 'abandoned' WHERE sync_id = ?", [sync_id])
        if resume is not None:
            self.sync_id, self.resumed = resume, True
            self.con.execute(
                "UPDATE raw.syncs SET status = 'running', resumes = coalesce(resumes, 0) + 1 WHERE sync_id = "
                "?",
                [resume],
            )
            self._load_sightings()
            for table in TABLES:
                self.counts[table] = self.con.execute(
                    f"SELECT count(*) FROM raw.{table} WHERE sync_id = ?", [resume]
                ).fetchone()[0]
        else:
            self.con.execute(
                "INSERT INTO raw.syncs (sync_id, started_at, status, api_url, credential_kind, options) "
                "VALUES (?, ?, 'running', ?, ?, ?)",
                [self.sync_id, self.clock.now(), api_url, credential_kind, key],
            )
        return abandoned

    # ---- rows ----

    def add(self, table: str, row: dict[str, Any]) -> None:
        values = tuple(self.sync_id if c == "sync_id" else _cell(row.get(c)) for c in column_names(table))
        self.buffers[table].append(values)  # at most one checkpoint's rows: a page and its lists
        self.counts[table] += 1

    def note_skipped(self, entry: SkippedEntry) -> None:
        """A list entry the API layer skipped (thread-safe): recorded in `raw.anomalies` with the next
        checkpoint."""
        row = {
            "workspace_slug": entry.workspace,
            "endpoint_family": endpoint_family(entry.endpoint),
            "endpoint": entry.endpoint,
            "page": entry.page,
            "reason": entry.reason,
            "raw": entry.raw,
        }
        with self._skipped_lock:
            self._skipped.append(row)

    def saw(self, user: User, source: str, workspace: str | None) -> None:
        """A payload showed `user`: kept once per distinct (user, source, workspace, fields), merged into
        `raw.users` when the snapshot is finished (identities.py)."""
        key = (user.uuid, source, workspace, user.account_id, user.display_name, user.nickname, user.type)
        if key in self._sightings:
            return
        self._sightings.add(key)
        self.add(
            "user_sightings",
            {
                "user_uuid": user.uuid,
                "source": source,
                "workspace_slug": workspace,
                "account_id": user.account_id,
                "display_name": user.display_name,
                "nickname": user.nickname,
                "user_type": user.type,
                "raw": user.raw,
            },
        )

    def _load_sightings(self) -> None:
        self._sightings = {
            tuple(r)
            for r in self.con.execute(
                "SELECT user_uuid, source, workspace_slug, account_id, display_name, nickname, user_type "
                "FROM raw.user_sightings WHERE sync_id = ?",
                [self.sync_id],
            ).fetchall()
        }

    def _flush(self, stage: str | None = None) -> None:
        """Write the buffered rows a checkpoint of `stage` accounts for (None: every buffered row)."""
        with self._skipped_lock:
            skipped, self._skipped = self._skipped, []
        for row in skipped:
            self.add("anomalies", row)
        for name in list(self.buffers):
            if (
                stage is not None
                and name not in SHARED_TABLES
                and (name in EFFECTIVE_TABLES) != (stage == "effective")
            ):
                continue
            rows = self.buffers.pop(name, [])
            if not rows:
                continue
            self._begin()
            # DuckDB reads the frame by its variable name (a replacement scan).
            frame = pd.DataFrame(rows, columns=list(column_names(name)), dtype=object)  # noqa: F841
            self.con.execute(f"INSERT INTO raw.{name} BY NAME SELECT * FROM frame")

    # ---- checkpoints ----

    def checkpoint(self, workspace: str, stage: str, next_url: str | None) -> None:
        """Commit what `stage` buffered with where `stage` of `workspace` continues (None: it is done)."""
        self._flush(stage)
        self._begin()
        self.con.execute(
            "INSERT OR REPLACE INTO raw.sync_checkpoints VALUES (?, ?, ?, ?, ?, ?)",
            [self.sync_id, workspace, stage, next_url, next_url is None, self.clock.now()],
        )
        self.con.execute("COMMIT")
        self.in_transaction = False

    def _begin(self) -> None:
        if not self.in_transaction:
            self.con.execute("BEGIN TRANSACTION")
            self.in_transaction = True

    def set_workspace_field(self, slug: str, column: str, value: Any) -> None:
        """Set a column of this sync's committed row for the workspace; committed with the next checkpoint."""
        self._begin()
        self.con.execute(
            f"UPDATE raw.workspaces SET {column} = ? WHERE sync_id = ? AND workspace_slug = ?",
            [value, self.sync_id, slug],
        )

    def carry_forward(self, refresh: WorkspaceRefresh) -> int:
        """Copy the lists of the workspace's repositories not read today from the sync that last read them
        (extraction/refresh.py); committed with the next checkpoint."""
        self._flush()
        self._begin()
        carried = carry_forward(self.con, self.sync_id, refresh)
        carried_tables = ("repository_user_permissions", "repository_group_permissions", "fetch_log")
        for table in (*carried_tables, "user_sightings"):
            self.counts[table] = self.con.execute(
                f"SELECT count(*) FROM raw.{table} WHERE sync_id = ?", [self.sync_id]
            ).fetchone()[0]
        self._load_sightings()
        return carried

    def in_snapshot(self, write: Callable[[duckdb.DuckDBPyConnection], None], tables: Iterable[str]) -> None:
        """Run SQL that writes this sync's rows directly (carrying rows forward), after every buffered row and
        in the open transaction: committed with the next checkpoint. `tables`: those it writes, recounted."""
        self._flush()
        self._begin()
        write(self.con)
        for table in tables:
            self.counts[table] = self.con.execute(
                f"SELECT count(*) FROM raw.{table} WHERE sync_id = ?", [self.sync_id]
            ).fetchone()[0]

    def discard_buffered(self, tables: Iterable[str]) -> None:
        """Forget rows of `tables` buffered since the last checkpoint (a stage that stopped half way)."""
        for table in tables:
            self.counts[table] -= len(self.buffers.pop(table, []))

    def drop_resource(self, kind: str, workspace: str, uuid: str) -> None:
        """Leave a project or repository listed earlier in this sync out of it: its row, its lists and (for
        a repository) its effective-list rows, buffered or written; the deletion commits with the next
        checkpoint (a resumed sync does it again)."""
        self._flush(kind + "s")  # every buffered row but the effective list's, which is filtered instead
        if kind == "repository":
            buffered = self.buffers[EFFECTIVE]
            kept = [row for row in buffered if row[_EFFECTIVE_REPOSITORY] != uuid]
            self.buffers[EFFECTIVE], self.counts[EFFECTIVE] = (
                kept,
                self.counts[EFFECTIVE] - (len(buffered) - len(kept)),
            )
        self._begin()
        for table, column in RESOURCE_ROWS[kind].items():
            (deleted,) = self.con.execute(
                f"DELETE FROM raw.{table} WHERE sync_id = ? AND workspace_slug = ? AND {column} = ?",
                [self.sync_id, workspace, uuid],
            ).fetchone()
            self.counts[table] -= deleted

    def note_gone(self, gone: Gone) -> None:
        """Record a resource left out because Bitbucket says it is gone (`raw.anomalies`, next checkpoint)."""
        resource = gone.resource
        self.note_skipped(
            SkippedEntry(
                resource.workspace,
                gone.endpoint,
                1,
                gone.reason,
                {f"{resource.kind}_uuid": resource.uuid, resource.kind: resource.key},
            )
        )

    def counted(self, table: str, workspace: str) -> int:
        """Rows of the workspace in this sync's table, as committed (call it after the stage's last
        checkpoint)."""
        return self.con.execute(
            f"SELECT count(*) FROM raw.{table} WHERE sync_id = ? AND workspace_slug = ?",
            [self.sync_id, workspace],
        ).fetchone()[0]

    def workspace_uuid(self, slug: str) -> str:
        row = self.con.execute(
            "SELECT workspace_uuid FROM raw.workspaces WHERE sync_id = ? AND workspace_slug = ?",
            [self.sync_id, slug],
        ).fetchone()
        return row[0]

    def resume_urls(self) -> list[tuple[str, str, str]]:
        """(workspace, stage, next URL) of every stage this sync will continue from a stored link."""
        return self.con.execute(
            "SELECT workspace_slug, stage, next_url FROM raw.sync_checkpoints WHERE sync_id = ? AND NOT done "
            "AND next_url IS NOT NULL ORDER BY ALL",
            [self.sync_id],
        ).fetchall()

    def resume_description(self) -> str:
        """Where a resumed sync starts again, in words: when it began, and each workspace's stages done or the
        page it continues from."""
        started = self.con.execute(
            "SELECT started_at FROM raw.syncs WHERE sync_id = ?", [self.sync_id]
        ).fetchone()
        rows = self.con.execute(
            "SELECT workspace_slug, stage, done FROM raw.sync_checkpoints WHERE sync_id = ? "
            "ORDER BY workspace_slug, done DESC, stage",
            [self.sync_id],
        ).fetchall()
        began = f"started {started[0]:%Y-%m-%d %H:%M} UTC" if started and started[0] else "started earlier"
        by_workspace: dict[str, list[str]] = {}
        for workspace, stage, done in rows:
            by_workspace.setdefault(workspace, []).append(stage if done else f"{stage} (part read)")
        where = "; ".join(f"{ws}: {', '.join(stages)}" for ws, stages in by_workspace.items())
        return f"{self.sync_id} ({began}) from its checkpoints" + (f": {where}" if where else "")

    def checkpoint_done(self, workspace: str, stage: str) -> bool:
        return self.resume_point(workspace, stage) == ""

    def resume_point(self, workspace: str, stage: str) -> str | None:
        """None: not started; "": finished; else the `next` URL to continue from."""
        row = self.con.execute(
            "SELECT next_url, done FROM raw.sync_checkpoints WHERE sync_id = ? AND workspace_slug = ? AND "
            "stage = ?",
            [self.sync_id, workspace, stage],
        ).fetchone()
        if row is None:
            return None
        return "" if row[1] else row[0]

    # ---- endings ----

    def finish_rows(self) -> None:
        """Write every buffered row and the sync's user directory (merged over its sightings), in the open
        transaction: what the circuit breaker compares, and what `complete` publishes."""
        self._flush()
        self._begin()
        if not self._directory_built:
            self.counts["users"] = build_directory(self.con, self.sync_id)
            self._directory_built = True

    def complete(
        self,
        workspaces: list[str],
        stats: dict[str, Any],
        skipped: dict[str, str] | None = None,
        refresh: dict[str, Any] | None = None,
        vanished: dict | None = None,
        status: str = "complete",
        accepted: bool = False,
    ) -> None:
        """Flush and publish: from this statement on, the snapshot is visible, all of it at once. With
        `status='suspect'` the rows are kept but nothing is published (the circuit breaker, vanished.py)."""
        self.finish_rows()
        counts = {t: self.counts.get(t, 0) for t in TABLES if t != "fetch_log"}
        anomalies = dict(
            self.con.execute(
                "SELECT endpoint_family, count(*) FROM raw.anomalies WHERE sync_id = ? GROUP BY 1 ORDER BY 1",
                [self.sync_id],
            ).fetchall()
        )
        group_sources = dict(
            self.con.execute(
                "SELECT workspace_slug, coalesce(group_source, 'bitbucket-1.0') FROM raw.workspaces WHERE "
                "sync_id = ? ORDER BY 1",
                [self.sync_id],
            ).fetchall()
        )
        group_lists = dict(
            self.con.execute(
                "SELECT workspace_slug, repository_group_lists FROM raw.workspaces WHERE sync_id = ? "
                "AND repository_group_lists IS NOT NULL ORDER BY 1",
                [self.sync_id],
            ).fetchall()
        )
        held = (
            "held back: too much vanished since the last observation; `sync --accept-vanished` publishes it"
            if status == "suspect"
            else None
        )
        self.con.execute(
            "UPDATE raw.syncs SET status = ?, finished_at = ?, workspaces = ?, entity_counts = ?, "
            "api_calls = ?, retries = ?, rate_limited = ?, skipped_workspaces = ?, anomalies = ?, "
            "group_sources = ?, repository_group_lists = ?, refresh = ?, vanished = ?, "
            "vanished_accepted = ?, error = ? WHERE sync_id = ?",
            [
                status,
                self.clock.now(),
                workspaces,
                json.dumps(counts),
                json.dumps(stats["calls_by_family"]),
                stats["retries"],
                stats["rate_limited"],
                json.dumps(skipped or {}),
                json.dumps(anomalies),
                json.dumps(group_sources),
                json.dumps(group_lists),
                json.dumps(refresh or {}),
                json.dumps(vanished or {}),
                accepted,
                held,
                self.sync_id,
            ],
        )
        if self.in_transaction:
            self.con.execute("COMMIT")
            self.in_transaction = False
        self.con.execute("DELETE FROM raw.sync_checkpoints WHERE sync_id = ?", [self.sync_id])

    def interrupt(self, error: str, stats: dict[str, Any] | None) -> None:
        """Stop without publishing, keeping committed checkpoints so the next sync resumes from them."""
        self._rollback()
        self._finish("interrupted", error, stats)

    def fail(self, error: str, stats: dict[str, Any] | None) -> None:
        """Drop this sync's rows (a retry would not help) and record why it failed."""
        self._rollback()
        self._delete_rows(self.sync_id)
        self._finish("failed", error, stats)

    def _rollback(self) -> None:
        self.buffers.clear()
        with self._skipped_lock:
            self._skipped.clear()  # they belong to the page being rolled back, which a resume fetches again
        if self.in_transaction:
            self.con.execute("ROLLBACK")
            self.in_transaction = False

    def _finish(self, status: str, error: str, stats: dict[str, Any] | None) -> None:
        stats = stats or {}
        self.con.execute(
            "UPDATE raw.syncs SET status = ?, finished_at = ?, error = ?, api_calls = ?, retries = ?, "
            "rate_limited = ? WHERE sync_id = ?",
            [
                status,
                self.clock.now(),
                error[:2000],
                json.dumps(stats.get("calls_by_family", {})),
                stats.get("retries"),
                stats.get("rate_limited"),
                self.sync_id,
            ],
        )

    def _delete_rows(self, sync_id: str) -> None:
        for name in TABLES:
            self.con.execute(f"DELETE FROM raw.{name} WHERE sync_id = ?", [sync_id])
        self.con.execute("DELETE FROM raw.sync_checkpoints WHERE sync_id = ?", [sync_id])


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value
