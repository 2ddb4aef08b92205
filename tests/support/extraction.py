"""Helpers of the extraction tests: one sync of a simulator into a DuckDB file, and a snapshot's rows."""

from __future__ import annotations

import duckdb
import pytest

from bitbucket_assets.client import BitbucketClient, Credentials, ServerError
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.raw_schema import TABLES
from bitbucket_assets.extraction.refresh import RefreshPolicy
from bitbucket_assets.extraction.sync import run_sync
from bitbucket_simulator import SIM_API_TOKEN

# Read logs (when each list was read) differ between two syncs of the same state; the rest must not.
RAW = [t for t in TABLES if t not in ("fetch_log", "change_control_reads")]


def sync(sim, db, workspaces=None, token=SIM_API_TOKEN, **kw):
    client = BitbucketClient(
        Credentials.api_token(sim.email, token),
        sim.url,
        requests_per_hour=1e7,
        backoff_base=0.01,
        backoff_max=0.05,
        rate_limit_backoff=0.01,
        **kw,
    )
    with duckdb.connect(str(db)) as con:
        # Every repository's change control every sync (a rolling period of one day): snapshots of the same
        # state are then equal, whichever sync read them.
        options = ExtractionOptions(workspaces=workspaces, refresh=RefreshPolicy(change_control_days=1))
        return run_sync(client, con, options)


def snapshot(db, sync_id: str) -> dict[str, list[tuple]]:
    """Every raw table's rows of one sync, without sync_id and fetch times, sorted."""
    with duckdb.connect(str(db), read_only=True) as con:
        out = {}
        for table in RAW:
            cols = [
                c[0]
                for c in con.execute(f"DESCRIBE raw.{table}").fetchall()
                if c[0] not in ("sync_id", "raw", "observed_sync_id", "effective_pairs")
            ]
            out[table] = sorted(
                con.execute(
                    f"SELECT {', '.join(cols)} FROM raw.{table} WHERE sync_id = ?", [sync_id]
                ).fetchall(),
                key=repr,
            )
        return out


def interrupt_a_sync(sim, db) -> str:
    """A sync of `tiny` that stops, resumable, in the middle: tiny-co committed, tiny-labs after its projects
    (a grant to a group the simulator cannot render makes its group privileges answer 500 every time).
    Returns its id; the simulator is healthy again afterwards."""
    grants = sim.org.workspaces["tiny-labs"].repositories["experiments"].group_grants
    grants["ghost"] = "read"
    sim.org.touch()
    # HTTP 500, or on the retry a connection the simulator closed after its error (ConnectionFailedError, a
    # ServerError too): which one depends on timing.
    with pytest.raises(ServerError, match=r"HTTP 500|connection was cut"):
        sync(sim, db, max_retries=1)
    del grants["ghost"]
    sim.org.touch()
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT sync_id FROM raw.syncs WHERE status = 'interrupted'").fetchone()[0]


def plant_checkpoint(
    db, sync_id: str, next_url: str, workspace: str = "tiny-labs", stage: str = "repositories"
):
    """What someone with write access to the warehouse can do: make the interrupted sync continue `stage` of
    `workspace` from `next_url` when the next sync resumes it."""
    with duckdb.connect(str(db)) as con:
        con.execute(
            "INSERT OR REPLACE INTO raw.sync_checkpoints VALUES (?, ?, ?, ?, false, now())",
            [sync_id, workspace, stage, next_url],
        )
