"""What else a revoke takes away, over a review population: only what every path reaches through the groups
the revoke removes."""

from __future__ import annotations

import duckdb

from bitbucket_assets.reporting.revoke_impact import (
    NAMED,
    Loss,
    Removal,
    describe,
    population_losses,
    removal_losses,
)


def item(kind: str, key: str, permission: str, groups: list[str], outside: list[str], user: str = "{ben}"):
    return {
        "review_item": f"w:{kind}:{key}:{user}",
        "workspace_slug": "w",
        "user_uuid": user,
        "resource_type": kind,
        "resource_key": key,
        "permission": permission,
        "removable_via_groups": groups,
        "paths_outside_groups": outside,
    }


def test_a_revoke_lists_what_only_its_groups_reach() -> None:
    rows = [
        item("repository", "payments-api", "write", ["developers"], []),
        item("project", "PAY", "read", ["developers"], []),
        item("repository", "billing", "admin", ["developers", "leads"], []),  # leads remains
        item("repository", "docs", "read", ["developers"], ["direct: read"]),  # the direct grant remains
        item("group", "developers", "member", ["developers"], []),
        item("group", "everyone", "member", ["everyone"], []),
        item("workspace", "w", "member", [], ["direct: member"]),
        item("repository", "payments-api", "write", ["developers"], [], user="{ana}"),  # someone else
    ]
    losses = population_losses(rows)
    assert losses["w:repository:payments-api:{ben}"] == "project PAY (read); group developers (membership)"
    # Leaving both groups takes billing too; a grant outside groups is never listed.
    assert losses["w:repository:billing:{ben}"] == (
        "project PAY (read); repository payments-api (write); group developers (membership)"
    )
    assert losses["w:workspace:w:{ben}"] == ""  # no group to leave: nothing removed
    assert losses["w:repository:docs:{ben}"] == (
        "project PAY (read); repository payments-api (write); group developers (membership)"
    )


def test_a_group_that_reaches_thousands_names_the_first_and_counts_the_rest() -> None:
    rows = [item("repository", f"repo-{n:04d}", "read", ["everyone"], []) for n in range(3000)]
    losses = population_losses(rows)
    named = [f"repository repo-{n:04d} (read)" for n in range(1, NAMED + 1)]
    assert losses["w:repository:repo-0000:{ben}"] == "; ".join(named) + f"; and {3000 - 1 - NAMED} more"


def test_a_name_with_control_characters_is_shown_escaped() -> None:
    assert describe([Loss("repository", "evil\nline", "read")]) == "repository evil\\x0aline (read)"


def _grants(tmp_path, paths: list[tuple[str, str | None, str]]):
    """A warehouse whose newest grants are `paths`: (repository, via group or None, permission) for ben."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_grants (workspace_slug varchar, principal_type varchar, "
        "principal_id varchar, user_account_id varchar, resource_type varchar, resource_key varchar, "
        "permission varchar, "
        "permission_rank integer, via_group_slug varchar)"
    )
    rank = {"read": 1, "write": 2, "admin": 3}
    for repo, group, permission in paths:
        con.execute(
            "insert into marts.fct_grants "
            "values ('ws', 'user', '{ben}', 'acc-ben', 'repository', ?, ?, ?, ?)",
            [repo, permission, rank[permission], group],
        )
    return con


def test_a_resource_reached_through_two_groups_goes_when_both_are_left(tmp_path) -> None:
    con = _grants(
        tmp_path,
        [
            ("api", "devs", "write"),
            ("api", "leads", "admin"),
            ("docs", "devs", "read"),
            ("docs", None, "read"),
        ],
    )
    devs, leads = Removal("ws", "{ben}", "devs"), Removal("ws", "{ben}", "leads")
    # Leaving both: api goes (every path through a group left), under each; docs stays (a direct grant).
    assert removal_losses(con, [devs, leads]) == {
        devs: [Loss("repository", "api", "admin")],
        leads: [Loss("repository", "api", "admin")],
    }
    # Leaving one: api is still reached through the other.
    assert removal_losses(con, [devs]) == {devs: []}
