"""How the evidence report shows its tables to a person who prints it: timestamps in words, ids left to the
CSVs, the population as counts (every row is in population.csv), and every missing reconciliation explained.
Pure functions over the rows `evidence.py` queried."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from .safe_text import text

# Columns the report leaves to the CSVs: ids a person does not read (each CSV keeps them all).
ID_COLUMNS = frozenset({"sync_id", "user_uuid", "run_id", "key_fingerprint", "file_sha256", "is_finding"})
# Who can change production code: the paths behind each right, and where the branch and the rules come from,
# are sentences per row; the report shows the rights, the CSV the paths too.
CHANGE_CONTROL_DETAIL = frozenset(
    {
        "push_path",
        "merge_path",
        "review_path",
        "production_branch_source",
        "rules_unreadable_reason",
        "synced_at",
    }
)


def when(value: datetime | str | None) -> str:
    """A time as people read it, `2026-12-04 14:02 UTC` (no seconds, no microseconds); empty for none."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def cell(value: Any) -> str:
    """A table cell's text in the report: times in words, dates as dates, lists joined, None empty."""
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(text(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return text(value)


@dataclass(frozen=True)
class Table:
    """A table as the report shows it: its columns and its rows as text, and how many rows the CSV has beyond
    them."""

    columns: list[str]
    rows: list[list[str]]
    more: int = 0


def shown(
    columns: Sequence[str], rows: Sequence[Sequence], limit: int, leave_out: frozenset[str] = frozenset()
) -> Table:
    """The first `limit` rows without the id columns (and `leave_out`), each cell as `cell` makes it."""
    keep = [i for i, name in enumerate(columns) if name not in ID_COLUMNS | leave_out]
    return Table(
        [columns[i] for i in keep],
        [[cell(row[i]) for i in keep] for row in rows[:limit]],
        max(0, len(rows) - limit),
    )


def population_summary(columns: Sequence[str], rows: Sequence[Sequence]) -> Table:
    """The population as counts: per workspace, resource type, permission and how the access is held (path
    kinds), the accesses (user and resource pairs), the people and the resources; most first."""
    at = {name: i for i, name in enumerate(columns)}
    accesses: Counter = Counter()
    users: dict[tuple, set] = {}
    resources: dict[tuple, set] = {}
    for row in rows:
        key = (
            row[at["workspace_slug"]],
            row[at["resource_type"]],
            row[at["permission"]],
            row[at["path_kinds"]] if "path_kinds" in at else "",
        )
        accesses[key] += 1
        users.setdefault(key, set()).add(row[at["user_uuid"]])
        resources.setdefault(key, set()).add(row[at["resource_key"]])
    order = sorted(accesses, key=lambda k: (k[0], k[1], -accesses[k], k[2], k[3]))
    return Table(
        ["workspace", "resource type", "permission", "held through", "accesses", "people", "resources"],
        [
            [
                cell(k[0]),
                cell(k[1]),
                cell(k[2]),
                cell(k[3]),
                str(accesses[k]),
                str(len(users[k])),
                str(len(resources[k])),
            ]
            for k in order
        ],
    )


@dataclass(frozen=True)
class SyncTimes:
    """What explains a missing reconciliation: every complete sync's time, and the first reconciliation's."""

    synced: list[datetime]
    first_reconciled_at: datetime | None


def reconciliation_note(sync: dict, times: SyncTimes) -> str:
    """The reconciliation cell of a sync: its result, or why there is none. A dbt build reconciles only the
    sync that is newest when it runs (marts.fct_reconciliations), so a sync followed by another before the
    next build (a history loaded at once, as the demo does) is never reconciled."""
    reconciled, compared, mismatches = (
        sync.get("reconciled"),
        sync.get("compared_rows"),
        sync.get("mismatches"),
    )
    if reconciled is True:
        return f"agreed on {compared} rows"
    if reconciled is False and not compared:
        return (
            "nothing compared: Bitbucket's effective permission list was not read for any workspace (it is "
            "read for workspaces the credential administers, when served)"
        )
    if reconciled is False:
        return f"{mismatches} mismatches in {compared} rows"
    status = sync.get("status")
    if status and status != "complete":
        return f"not reconciled: the sync is {status}, and only complete syncs are"
    synced_at = sync["synced_at"]
    moment = datetime.fromisoformat(synced_at) if isinstance(synced_at, str) else synced_at
    later = [t for t in times.synced if t > moment]
    if later:
        before_first = (
            f"; this warehouse's first reconciliation is from {when(times.first_reconciled_at)}"
            if times.first_reconciled_at and moment < times.first_reconciled_at
            else "; this warehouse holds no reconciliation yet"
            if times.first_reconciled_at is None
            else ""
        )
        return (
            f"not recorded: the next sync ({when(min(later))}) came before the marts were built, and a build "
            f"reconciles only the newest sync{before_first}"
        )
    return "not recorded: the marts have not been built since this sync"
