"""What else a revoke takes away, over a review population: only what every path reaches through the groups
the revoke removes."""

from __future__ import annotations

from bitbucket_assets.reporting.revoke_impact import NAMED, Loss, describe, population_losses


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
