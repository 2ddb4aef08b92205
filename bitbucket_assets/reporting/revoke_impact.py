"""What else a revoke takes away. A review `revoke` of one access held through a group removes the person from
the whole group, so they also lose every other resource they reach only through that group (or only through
groups the same revoke removes). Resources they also reach another way (a direct or project grant, another
group, workspace ownership) are not lost and not listed: a lower permission may remain on them.

Two readings of the same rule: `population_losses` over the review population as exported (the review file's
`revoke_also_removes` column, as of the campaign's date), and `removal_losses` over the newest snapshot
(`marts.fct_grants`), for the import's summary and the `provision --dry-run` plan, which remove now.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from .safe_text import visible

# The order losses are listed in: the widest first.
KIND_ORDER = {"workspace": 0, "project": 1, "repository": 2, "group": 3}


@dataclass(frozen=True)
class Loss:
    """One resource a removal takes away entirely: its kind, key (slug or project key) and permission."""

    resource_type: str
    resource_key: str
    permission: str

    def label(self) -> str:
        if self.resource_type == "group":
            return f"group {visible(self.resource_key)} (membership)"
        return f"{self.resource_type} {visible(self.resource_key)} ({self.permission})"


# Losses named in one cell or line; the rest are counted (a group can reach thousands of repositories).
NAMED = 12


def describe(losses: Sequence[Loss], total: int | None = None) -> str:
    """The losses as one line a reviewer reads: `project PAY (read); repository billing (write)`, the first
    NAMED of them and how many more (`total`: how many there are, when `losses` holds only the first)."""
    total = len(losses) if total is None else total
    named = "; ".join(loss.label() for loss in losses[:NAMED])
    more = total - min(len(losses), NAMED)
    return named + (f"; and {more} more" if more > 0 else "")


def _order(loss: Loss) -> tuple:
    return (KIND_ORDER.get(loss.resource_type, 9), loss.resource_key)


def _ordered(losses: Iterable[Loss]) -> list[Loss]:
    return sorted(set(losses), key=_order)


def population_losses(rows: Sequence[dict]) -> dict[str, str]:
    """review item -> what a revoke of it takes away besides it (`describe`d): the other items of the same
    person and workspace whose every path runs through the groups the revoke removes
    (`removable_via_groups`) and none outside groups (`paths_outside_groups`); empty when nothing else is lost
    or the revoke removes no group. Items are bucketed by their set of groups, so a revoke compares a few
    group sets, not every item of the person (who may reach thousands of repositories)."""
    buckets: dict[tuple[str, str], dict[frozenset, list[tuple[Loss, str]]]] = {}
    for row in rows:
        groups = frozenset(row.get("removable_via_groups") or [])
        if groups and not (row.get("paths_outside_groups") or []):
            loss = Loss(row["resource_type"], row["resource_key"], row["permission"])
            person = buckets.setdefault((row["workspace_slug"], row["user_uuid"]), {})
            person.setdefault(groups, []).append((loss, row["review_item"]))
    for person in buckets.values():
        for items in person.values():
            items.sort(key=lambda item: _order(item[0]))
    out: dict[str, str] = {}
    for row in rows:
        removed = frozenset(row.get("removable_via_groups") or [])
        person = buckets.get((row["workspace_slug"], row["user_uuid"]), {})
        # The item itself sits in the bucket of its own groups when it holds no path outside them.
        itself = removed if not (row.get("paths_outside_groups") or []) else None
        first: list[Loss] = []
        total = 0
        for groups, items in person.items():
            if not removed or not groups <= removed:
                continue
            others = [loss for loss, item in items[: NAMED + 1] if item != row["review_item"]]
            first += others[:NAMED]
            total += len(items) - (1 if groups == itself else 0)
        out[row["review_item"]] = describe(sorted(first, key=_order)[:NAMED], total)
    return out


@dataclass(frozen=True)
class Removal:
    """A person leaving a group: workspace slug, the user ({uuid} or account id) and the group's slug."""

    workspace_slug: str
    user_id: str
    group_slug: str


# Every resource (not the group itself) the person reaches in the newest snapshot only through the groups
# they leave (all of the removals asked about together: a resource reached through two of them goes with
# both), listed under each removal whose group is one of its paths. Its permission is the highest those paths
# give. A path through no group (a direct or project grant, ownership) keeps the resource.
REMOVAL_SQL = """
    with leaving as (
        select workspace_slug, user_id, list(distinct group_slug) as groups from removals_frame group by all
    )
    select r.workspace_slug, r.user_id, r.group_slug, g.resource_type, g.resource_key,
           arg_max(g.permission, g.permission_rank) as permission
    from removals_frame r
    join leaving l on l.workspace_slug = r.workspace_slug and l.user_id = r.user_id
    join marts.fct_grants g
      on g.workspace_slug = r.workspace_slug and g.principal_type = 'user'
     and (g.principal_id = r.user_id or g.user_account_id = r.user_id)
    where g.resource_type in ('workspace', 'project', 'repository')
    group by all
    having bool_and(coalesce(list_contains(l.groups, g.via_group_slug), false))
       and bool_or(g.via_group_slug = r.group_slug)
"""


def removal_losses(con: duckdb.DuckDBPyConnection, removals: Iterable[Removal]) -> dict[Removal, list[Loss]]:
    """Removal -> what it takes away besides the membership, from the newest snapshot's grant paths. Empty for
    every removal when the warehouse has no marts yet."""
    wanted = sorted(set(removals), key=lambda r: (r.workspace_slug, r.user_id, r.group_slug))
    out: dict[Removal, list[Loss]] = {r: [] for r in wanted}
    if not wanted:
        return out
    removals_frame = pd.DataFrame(  # noqa: F841 - read by the SQL below
        {
            "workspace_slug": [r.workspace_slug for r in wanted],
            "user_id": [r.user_id for r in wanted],
            "group_slug": [r.group_slug for r in wanted],
        },
        dtype=object,
    )
    try:
        rows = con.execute(REMOVAL_SQL).fetchall()
    except duckdb.CatalogException:
        return out
    found: dict[Removal, list[Loss]] = {}
    for ws, user, group, kind, key, permission in rows:
        found.setdefault(Removal(ws, user, group), []).append(Loss(kind, key, permission))
    return {r: _ordered(found.get(r, [])) for r in wanted}
