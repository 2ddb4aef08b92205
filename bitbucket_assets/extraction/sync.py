"""One sync: a snapshot written under one `sync_id`, published atomically or not at all."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..client import (
    BitbucketApi,
    BitbucketClient,
    BitbucketError,
    PermissionDeniedError,
    RateLimitExhaustedError,
    ServerError,
)
from ..client.api import USER_WORKSPACES
from ..client.origins import require_origin
from ..clock import Interrupted
from .extract import ExtractionOptions, extract_snapshot
from .progress import EVENTS
from .snapshot import SnapshotWriter
from .vanished import compare, vanished_entries

log = logging.getLogger(__name__)

ACCESS_TOKEN_CANNOT = (
    "Access tokens cannot read workspace members, groups or permission lists: use an Atlassian API token "
    "(BITBUCKET_EMAIL + BITBUCKET_API_TOKEN) of a workspace owner"
)


@dataclass
class SyncResult:
    sync_id: str
    workspaces: list[str]
    counts: dict[str, int]
    stats: dict[str, Any]
    abandoned: list[str] = field(default_factory=list)
    resumed: bool = False
    skipped: dict[str, str] = field(default_factory=dict)  # workspaces seen but not covered, with the reason
    # workspace -> where its group members were read
    group_sources: dict[str, str] = field(default_factory=dict)
    # workspace -> lists read per reason, carried (refresh.py)
    refresh: dict[str, dict] = field(default_factory=dict)
    # `complete` (published), or `suspect`: held back by the circuit breaker (vanished.py), nothing published
    status: str = "complete"
    vanished: list[dict] = field(default_factory=list)  # per workspace and kind, what vanished (Vanished)
    accepted: bool = False  # published although over the breaker's limit (`accept_vanished`)
    held_published: bool = False  # a snapshot held back earlier, published as read without any call

    @property
    def over_limit(self) -> list[dict]:
        return [v for v in self.vanished if v["over_limit"]]


def new_sync_id() -> str:
    return uuid.uuid4().hex


def run_sync(
    client: BitbucketClient,
    con: duckdb.DuckDBPyConnection,
    options: ExtractionOptions,
    sync_id: str | None = None,
) -> SyncResult:
    """Extract into the raw tables and publish the snapshot, or nothing.

    An unfinished sync with the same settings (killed, stopped from outside such as a terminated run, or out
    of retries on 429/5xx) is resumed from its checkpoints. Errors a retry cannot fix (credentials, scopes,
    permissions, removed endpoints, malformed payloads) remove the sync's rows before they are re-raised.
    """
    if options.admin_api is not None:
        options.admin_api.client.stats = client.stats  # one count of calls in the manifest, both APIs in it
    if options.change_control_client is not None:
        options.change_control_client.stats = client.stats
    writer = SnapshotWriter(con, sync_id or new_sync_id(), clock=client.clock)
    # What a resumed sync must match; the refresh plan reads `max_age_days` from here too.
    settings = {
        "workspaces": options.workspaces,
        "full": options.refresh.full,
        "max_age_days": options.refresh.max_age_days,
    }
    if options.accept_vanished and (held := writer.held(client.api_url, settings)) is not None:
        log.warning("publishing sync %s, held back as suspect, as it was read (accepted)", held)
        writer.publish_held(held)
        return _held_result(con, writer)
    abandoned = writer.begin(client.api_url, client.credentials.kind, settings)
    if abandoned:
        log.warning(
            "removed rows of %d earlier sync(s) that never completed: %s",
            len(abandoned),
            ", ".join(abandoned),
        )
    if writer.resumed:
        # To whoever shows the sync's progress (the CLI's display), and to the run's log.
        EVENTS.info("resuming sync %s", writer.resume_description())
        log.info("resuming sync %s", writer.resume_description())
    try:
        if writer.resumed:
            # The warehouse is no authority on where the credential may go: a stored link that leaves the
            # API's origin fails the sync (removing its rows) before any call, so the next sync starts afresh.
            for workspace, stage, url in writer.resume_urls():
                what = f"the checkpoint of sync {writer.sync_id} (workspace {workspace}, stage {stage})"
                require_origin(url, client.origin, what, workspace=workspace)
        # Entries lacking their identity are skipped into raw.anomalies; a malformed page still fails the
        # sync.
        selection = extract_snapshot(BitbucketApi(client, on_skip=writer.note_skipped), writer, options)
        workspaces = [a.slug for a in selection.covered]
        if not workspaces and client.credentials.kind == "access_token":
            raise PermissionDeniedError(ACCESS_TOKEN_CANNOT, endpoint=USER_WORKSPACES)
        if not workspaces:
            seen = (
                f" (it sees {', '.join(selection.skipped)}, none as an administrator)"
                if selection.skipped
                else ""
            )
            raise BitbucketError(
                f"this credential administers no workspace{seen}: nothing to snapshot",
                endpoint=USER_WORKSPACES,
            )
        writer.finish_rows()
        vanished = compare(con, writer.sync_id, workspaces, options.breaker)
        over = [v for v in vanished if v.over_limit]
        status = "suspect" if over and not options.accept_vanished else "complete"
        for v in over:
            log.warning("%s%s", v.line(), "" if status == "suspect" else " (accepted)")
        writer.complete(
            workspaces,
            client.stats.as_dict(),
            skipped=selection.skipped,
            refresh=selection.refresh,
            vanished={"limit": options.breaker.describe(), "entries": [v.as_dict() for v in vanished]},
            status=status,
            accepted=bool(over) and options.accept_vanished,
        )
    except (RateLimitExhaustedError, ServerError, Interrupted) as exc:
        writer.interrupt(f"{type(exc).__name__}: {exc}", client.stats.as_dict())
        raise
    except Exception as exc:
        writer.fail(f"{type(exc).__name__}: {exc}", client.stats.as_dict())
        raise
    except BaseException as exc:
        # Stopped from outside, not by what it met: Ctrl-C, SystemExit, a terminated Dagster run (Dagster
        # raises DagsterExecutionInterruptedError, a BaseException). The checkpoints stay and the next run
        # resumes.
        writer.interrupt(f"{type(exc).__name__}: {exc}", client.stats.as_dict())
        raise
    counts = {k: v for k, v in writer.counts.items() if k != "fetch_log"}
    sources = _group_sources(con, writer.sync_id)
    return SyncResult(
        writer.sync_id,
        workspaces,
        counts,
        client.stats.as_dict(),
        abandoned,
        writer.resumed,
        selection.skipped,
        sources,
        selection.refresh,
        status,
        [v.as_dict() for v in vanished],
        accepted=bool(over) and options.accept_vanished,
    )


def _group_sources(con: duckdb.DuckDBPyConnection, sync_id: str) -> dict[str, str]:
    """Where each workspace's groups were read from in this sync (raw.workspaces.group_source)."""
    rows = con.execute(
        "SELECT workspace_slug, group_source FROM raw.workspaces WHERE sync_id = ? ORDER BY 1", [sync_id]
    ).fetchall()
    return dict(rows)


def _held_result(con: duckdb.DuckDBPyConnection, writer: SnapshotWriter) -> SyncResult:
    """What a held snapshot, now published, holds: read back from its manifest."""
    workspaces, stats, retries, limited, skipped, refresh, vanished = con.execute(
        "SELECT workspaces, api_calls, retries, rate_limited, skipped_workspaces, refresh, vanished "
        "FROM raw.syncs WHERE sync_id = ?",
        [writer.sync_id],
    ).fetchone()
    calls = json.loads(stats or "{}")
    sources = _group_sources(con, writer.sync_id)
    return SyncResult(
        writer.sync_id,
        list(workspaces),
        {k: v for k, v in writer.counts.items() if k != "fetch_log"},
        {
            "calls": sum(calls.values()),
            "calls_by_family": calls,
            "retries": retries or 0,
            "rate_limited": limited or 0,
        },
        skipped=json.loads(skipped or "{}"),
        group_sources=sources,
        refresh=json.loads(refresh or "{}"),
        vanished=vanished_entries(vanished),
        accepted=True,
        held_published=True,
    )
