"""The circuit breaker on disappearance (docs/design.md, "A wrong answer never empties the warehouse").

A wrong answer (a proxy, an API change, a credential that lost its rights) can look like a workspace whose
repositories, projects, members or groups were deleted. Published, it would read as "everyone lost access"
and close every grant in the history. So before a sync publishes, each workspace it covered is compared with
its last observation: when more than `max_share` of one kind of entity vanished, and at least `min_count` of
them (or all of them), the snapshot is held back (`raw.syncs.status = 'suspect'`): nothing is published, the
marts keep the last state, and the sync, `check` and the asset check `nothing_vanished` say what vanished.
When the change is real, the next sync with `accept_vanished` (`sync --accept-vanished`) publishes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import duckdb

from ..settings import DEFAULT_MAX_VANISHED_SHARE, VANISHED_MIN_COUNT
from .refresh import previous_sync

EXAMPLES = 10  # names listed per workspace and kind
# What is compared, per kind: the raw table, the key that identifies one, and how to name it for people.
KINDS = {
    "repositories": ("repositories", "repository_uuid", "repository_slug"),
    "projects": ("projects", "project_uuid", "project_key"),
    "members": ("workspace_members", "user_uuid", "user_uuid"),
    "groups": ("groups", "group_slug", "group_slug"),
}


@dataclass(frozen=True)
class Breaker:
    """When a workspace's entities vanishing holds a snapshot back: more than `max_share` of one kind, and at
    least `min_count` of them or all of them (an empty answer is never "everyone left")."""

    max_share: float = DEFAULT_MAX_VANISHED_SHARE
    min_count: int = VANISHED_MIN_COUNT

    def __post_init__(self) -> None:
        if not 0 < self.max_share <= 1:
            raise ValueError(f"the vanished share must be in (0, 1], not {self.max_share}")

    def trips(self, vanished: int, before: int) -> bool:
        return vanished > self.max_share * before and (vanished >= self.min_count or vanished == before)

    def describe(self) -> str:
        return (
            f"more than {self.max_share:.0%} (BITBUCKET_MAX_VANISHED_SHARE), and at least {self.min_count} "
            "or all, of a workspace's repositories, projects, members or groups"
        )


@dataclass(frozen=True)
class Vanished:
    """Entities of one kind in one workspace's last observation that this sync does not hold."""

    workspace: str
    kind: str
    before: int  # in the last observation
    now: int  # in this sync
    vanished: int
    previous_sync_id: str
    examples: list[str]
    over_limit: bool

    @property
    def share(self) -> float:
        return self.vanished / self.before if self.before else 0.0

    def line(self) -> str:
        names = ", ".join(self.examples) + (", ..." if self.vanished > len(self.examples) else "")
        return (
            f"{self.workspace}: {self.vanished} of {self.before} {self.kind} vanished ({self.share:.0%}) "
            f"since sync {self.previous_sync_id}: {names}"
        )

    def as_dict(self) -> dict:
        return asdict(self)


def compare(
    con: duckdb.DuckDBPyConnection, sync_id: str, workspaces: list[str], breaker: Breaker
) -> list[Vanished]:
    """Per covered workspace and kind, what vanished since the workspace's last observation (a workspace
    without one is new: nothing to compare)."""
    out = []
    for workspace in workspaces:
        previous = previous_sync(con, workspace)
        if previous is None:
            continue
        for kind, (table, key, name) in KINDS.items():
            label = (
                "coalesce(u.display_name, p.user_uuid)" if kind == "members" else f"p.{name}"
            )  # members are named by the display name their sync recorded
            join = (
                "LEFT JOIN raw.users u ON u.sync_id = p.sync_id AND u.user_uuid = p.user_uuid"
                if kind == "members"
                else ""
            )
            before, now, gone, examples = con.execute(
                f"""
                WITH prev AS (SELECT * FROM raw.{table} WHERE sync_id = $2 AND workspace_slug = $3),
                     cur AS (SELECT * FROM raw.{table} WHERE sync_id = $1 AND workspace_slug = $3),
                     lost AS (
                        SELECT {label} AS label FROM prev p {join}
                        WHERE p.{key} NOT IN (SELECT {key} FROM cur)
                     )
                SELECT (SELECT count(DISTINCT {key}) FROM prev), (SELECT count(DISTINCT {key}) FROM cur),
                       (SELECT count(*) FROM lost),
                       (SELECT list(label ORDER BY label) FROM (SELECT label FROM lost ORDER BY label
                                                                 LIMIT {EXAMPLES}))
                """,
                [sync_id, previous, workspace],
            ).fetchone()
            if gone:
                out.append(
                    Vanished(
                        workspace,
                        kind,
                        before,
                        now,
                        gone,
                        previous,
                        list(examples or []),
                        breaker.trips(gone, before),
                    )
                )
    return out


def vanished_entries(recorded: str | None) -> list[dict]:
    """The entries of `raw.syncs.vanished` (`{"limit": ..., "entries": [...]}`, as `Vanished.as_dict`)."""
    value = json.loads(recorded or "{}")
    return list(value.get("entries", [])) if isinstance(value, dict) else []


def held_back(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Lines about the newest sync when it is a snapshot held back as `suspect` (what `check` says), else
    none."""
    if not _has_syncs(con):
        return []
    row = con.execute(
        "SELECT sync_id, status, finished_at, vanished FROM raw.syncs WHERE status <> 'failed' "
        "ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    if row is None or row[1] != "suspect":
        return []
    sync_id, _, finished_at, vanished = row
    over = [Vanished(**v) for v in vanished_entries(vanished) if v["over_limit"]]
    return [
        f"last sync {sync_id} (finished {finished_at:%Y-%m-%d %H:%M %Z}) was HELD BACK as suspect: nothing "
        "was published and the marts keep the state before it",
        *[f"  vanished in {v.line()}" for v in over],
        "  if the change is real, `bitbucket-access sync --accept-vanished` publishes it as it was read; if "
        "not (a proxy, a credential, an API change), fix that and sync again",
    ]


def _has_syncs(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'raw' AND table_name = 'syncs'"
        ).fetchone()[0]
    )
