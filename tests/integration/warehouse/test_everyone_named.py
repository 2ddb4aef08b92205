"""People with access who are not workspace members are named, typed and counted like everyone else.

`tiny` holds an outside collaborator (olive: a direct grant on runbooks), an access token's bot user
(deploy-bot, `type: app_user`: a direct grant on payments-api) and a "Former user" (a deleted account with
no account id or nickname: a direct grant on ledger). None of them is in the member list.
"""

from __future__ import annotations

from tests.support.warehouses import History

OUTSIDERS = """
    select e.resource_key, e.user_display_name, e.user_account_id is not null, e.permission,
    e.is_workspace_member,
           u.user_type, u.is_workspace_member, u.is_former_user, u.seen_in
    from marts.fct_effective_access e join marts.dim_users u using (user_uuid)
    where e.resource_type = 'repository' and not e.is_workspace_member
    order by 1
"""


def test_outsiders_are_named_in_effective_access_and_dim_users(tiny_history: History) -> None:
    assert tiny_history.query(OUTSIDERS) == [
        (
            "ledger",
            "Former user",
            False,
            "read",
            False,
            "user",
            False,
            True,
            ["effective_permissions", "repository_permissions"],
        ),
        (
            "payments-api",
            "Deploy token",
            True,
            "write",
            False,
            "app_user",
            False,
            False,
            ["effective_permissions", "repository_permissions"],
        ),
        (
            "runbooks",
            "Olive Outside",
            True,
            "write",
            False,
            "user",
            False,
            False,
            ["effective_permissions", "repository_permissions"],
        ),
    ]


def test_dim_users_holds_everyone_and_every_effective_row_is_named(tiny_history: History) -> None:
    org = tiny_history.org
    members = {u for ws in org.workspaces.values() for u in ws.members}
    granted = {
        u
        for ws in org.workspaces.values()
        for r in [*ws.repositories.values(), *ws.projects.values()]
        for u in r.user_grants
    }
    users = dict(tiny_history.query("select user_uuid, is_workspace_member from marts.dim_users"))
    assert set(users) == members | granted
    assert {u for u, member in users.items() if not member} == granted - members
    unnamed = tiny_history.query(
        "select count(*) from marts.fct_effective_access where user_display_name is null "
        "or (user_account_id is null and user_uuid <> ?)",
        [next(u.uuid for u in org.users.values() if u.is_former)],
    )
    assert unnamed == [(0,)]


def test_a_member_who_is_also_granted_directly_is_a_member(tiny_history: History) -> None:
    # zoe is a member with a direct grant on runbooks: her row is a member's row.
    rows = tiny_history.query(
        "select e.is_workspace_member, u.seen_in from marts.fct_effective_access e join marts.dim_users u "
        "using (user_uuid) where u.nickname = 'zoe' and e.resource_key = 'runbooks'"
    )
    assert rows == [
        (True, ["effective_permissions", "group_members", "repository_permissions", "workspace_members"])
    ]


def test_a_public_repository_is_flagged_and_has_no_invented_reader(tiny_history: History) -> None:
    # Anyone can read public-docs; Bitbucket's effective list names only who holds a permission there
    # (everyone in the `everyone` group and the owners), and so do the marts: reconciliation agrees row for
    # row.
    flags = tiny_history.query(
        "select repository_slug, is_public from marts.dim_repositories where is_public"
    )
    assert flags == [("public-docs", True)]
    org = tiny_history.org
    ws = org.workspaces["tiny-co"]
    expected = ws.effective_repository_permissions(ws.repositories["public-docs"])
    rows = tiny_history.query(
        "select user_uuid, permission from marts.fct_effective_access where resource_key = 'public-docs'"
    )
    assert dict(rows) == expected and len(rows) == 100
