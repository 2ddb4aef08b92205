"""One sync: a snapshot written under a fresh `sync_id`, published atomically or not at all."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..client import BitbucketClient, BitbucketError
from .extract import ExtractionOptions, extract_snapshot
from .snapshot import SnapshotWriter

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    sync_id: str
    workspaces: list[str]
    counts: dict[str, int]
    stats: dict[str, Any]
    abandoned: list[str] = field(default_factory=list)


def new_sync_id() -> str:
    return uuid.uuid4().hex


def run_sync(
    client: BitbucketClient,
    con: duckdb.DuckDBPyConnection,
    options: ExtractionOptions,
    sync_id: str | None = None,
) -> SyncResult:
    """Extract into the raw tables; on any error the sync's rows are removed and the error re-raised."""
    sync_id = sync_id or new_sync_id()
    writer = SnapshotWriter(con, sync_id)
    abandoned = writer.begin(client.api_url, client.credentials.kind)
    if abandoned:
        log.warning(
            "removed rows of %d earlier sync(s) that never completed: %s",
            len(abandoned),
            ", ".join(abandoned),
        )
    try:
        workspaces = extract_snapshot(client, writer, options)
        if not workspaces:
            raise BitbucketError(
                "this credential sees no workspace: nothing to snapshot", endpoint="/2.0/user/workspaces"
            )
        writer.complete(workspaces, client.stats.as_dict())
    except BaseException as exc:
        writer.fail(f"{type(exc).__name__}: {exc}", client.stats.as_dict())
        raise
    counts = {k: v for k, v in writer.counts.items() if k != "fetch_log"}
    return SyncResult(sync_id, workspaces, counts, client.stats.as_dict(), abandoned)
