"""Whatever JSON a hostile or broken server answers, every typed call of the client returns typed results or
raises a `BitbucketError` naming the endpoint: never a `TypeError`, an `AttributeError`, a `RecursionError`.

Hypothesis draws the answers: for each call, the document Bitbucket sends with any of its fields (at any
depth) replaced by JSON of any type, and JSON of any shape; a `Listener` serves each one for every path."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitbucket_assets.client import BitbucketApi, BitbucketClient, BitbucketError, Credentials
from bitbucket_assets.client.admin_api import AtlassianAdminApi, OrgGroup
from tests.support.listener import Answer, Listener

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


def mutated(template: Any) -> st.SearchStrategy:
    """`template` (a document as Bitbucket sends it), each part kept or replaced by any JSON, at any depth."""
    if isinstance(template, dict):
        kept = st.fixed_dictionaries({key: mutated(value) for key, value in template.items()})
    elif isinstance(template, list):
        kept = st.lists(mutated(template[0]), max_size=3)
    else:
        kept = st.just(template)
    return kept | json_values


def page_of(template: dict) -> st.SearchStrategy:
    """A 2.0 page of such documents, with `next`, `size` and `pagelen` of any type (or absent)."""
    return st.fixed_dictionaries(
        {"values": st.lists(mutated(template), max_size=3)},
        optional={"next": json_values, "size": json_values, "pagelen": json_values},
    )


def admin_page_of(template: dict) -> st.SearchStrategy:
    links = st.fixed_dictionaries({}, optional={"next": json_values})
    return st.fixed_dictionaries({"data": st.lists(mutated(template), max_size=3)}, optional={"links": links})


USER = {"uuid": "{u1}", "account_id": "557058:a1", "display_name": "Ana", "nickname": "ana", "type": "user"}
USER_1_0 = {"uuid": "{u1}", "display_name": "Ana", "is_team": False}
WORKSPACE = {"uuid": "{w1}", "slug": "acme", "name": "Acme", "is_private": True}
GROUP_1_0 = {"slug": "devs", "name": "Devs", "permission": "read", "auto_add": False, "members": [USER_1_0]}
REPOSITORY = {
    "uuid": "{r1}",
    "slug": "api",
    "full_name": "acme/api",
    "name": "api",
    "project": {"uuid": "{p1}", "key": "PRJ"},
    "is_private": True,
}
ANSWERS: dict[str, st.SearchStrategy] = {
    "current_user": mutated(USER),
    "user": mutated(USER),
    "user_workspaces": page_of({"workspace": WORKSPACE, "administrator": True}),
    "workspace": mutated(WORKSPACE),
    "workspace_members": page_of({"user": USER, "permission": "member", "added_on": "2024-01-01"}),
    "workspace_member": mutated({"user": USER, "permission": "member"}),
    "groups": mutated([GROUP_1_0]),
    "group_members": mutated([USER_1_0]),
    "group_privileges": mutated(
        [{"repo": "acme/api", "privilege": "read", "group": GROUP_1_0, "repository": {"slug": "api"}}]
    ),
    "projects": page_of({"uuid": "{p1}", "key": "PRJ", "name": "P", "is_private": True}),
    "repositories": page_of(REPOSITORY),
    "first_repository": page_of(REPOSITORY),
    "effective": page_of(
        {"repository": {"uuid": "{r1}", "name": "api"}, "user": USER, "permission": "write"}
    ),
    "project_users": page_of({"user": USER, "permission": "write"}),
    "repository_groups": page_of({"group": {"slug": "devs", "name": "Devs"}, "permission": "read"}),
    "branch_restrictions": page_of(
        {"id": 1, "kind": "push", "pattern": "main", "users": [USER], "groups": [{"slug": "devs"}]}
    ),
    "effective_branching_model": mutated({"production": {"name": "main", "use_mainbranch": True}}),
    "override_settings": mutated({"override_settings": {"branching_model": True}}),
    "repository_deploy_keys": page_of({"id": 1, "label": "ci", "owner": USER, "last_used": None}),
    "project_deploy_keys": page_of({"id": 2, "label": "deploy", "created_by": USER}),
    "workspace_members_2fa": page_of({"user": {**USER, "has_2fa_enabled": True}, "permission": "member"}),
    "admin_directories": admin_page_of({"directoryId": "d1", "name": "Main"}),
    "admin_find_group": admin_page_of(
        {"id": "g1", "name": "devs", "directoryId": "d1", "externalSynced": False}
    ),
    "admin_group_members": admin_page_of({"accountId": "557058:a1", "name": "Ana"}),
}
GROUP = OrgGroup("g1", "devs", "d1", False, None)


def calls(api: BitbucketApi, admin: AtlassianAdminApi) -> dict[str, Callable[[], Any]]:
    return {
        "current_user": api.current_user,
        "user": lambda: api.user("{u1}"),
        "user_workspaces": api.user_workspaces,
        "workspace": lambda: api.workspace("acme"),
        "workspace_members": lambda: api.workspace_members("acme"),
        "workspace_member": lambda: api.workspace_member("acme", "{u1}"),
        "groups": lambda: api.groups("acme"),
        "group_members": lambda: api.group_members("acme", "devs"),
        "group_privileges": lambda: api.group_privileges("acme"),
        "projects": lambda: list(api.project_pages("acme")),
        "repositories": lambda: list(api.repository_pages("acme")),
        "first_repository": lambda: api.first_repository("acme"),
        "effective": lambda: list(api.effective_permission_pages("acme")),
        "project_users": lambda: api.project_user_grants("acme", "PRJ"),
        "repository_groups": lambda: api.repository_group_grants("acme", "api"),
        "branch_restrictions": lambda: api.branch_restrictions("acme", "{r1}"),
        "effective_branching_model": lambda: api.effective_branching_model("acme", "{r1}"),
        "override_settings": lambda: api.override_settings("acme", "{r1}"),
        "repository_deploy_keys": lambda: api.repository_deploy_keys("acme", "{r1}"),
        "project_deploy_keys": lambda: api.project_deploy_keys("acme", "PRJ"),
        "workspace_members_2fa": lambda: api.workspace_members_2fa("acme"),
        "admin_directories": admin.directories,
        "admin_find_group": lambda: admin.find_group("devs"),
        "admin_group_members": lambda: admin.group_members(GROUP),
    }


@pytest.fixture(scope="module")
def server():
    with Listener() as listener:
        yield listener


@pytest.mark.parametrize("name", list(ANSWERS))
def test_every_call_answers_typed_results_or_a_bitbucket_error(server: Listener, name: str) -> None:
    options = {"requests_per_hour": 1e7, "max_retries": 0}
    client = BitbucketClient(Credentials.api_token("svc@example.com", "t"), server.url, **options)
    admin = AtlassianAdminApi(
        BitbucketClient(Credentials.org_api_key("k"), server.url, **options), "org", "d1"
    )
    strict = calls(BitbucketApi(client), admin)[name]  # an entry without its identity is an error
    lenient = calls(BitbucketApi(client, on_skip=lambda entry: None), admin)[
        name
    ]  # ... or skipped, as a sync

    @settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(body=ANSWERS[name] | json_values, skip=st.booleans())
    def check(body: Any, skip: bool) -> None:
        server.answer = lambda request: Answer(200, json.dumps(body).encode())
        try:
            (lenient if skip else strict)()
        except BitbucketError as exc:
            assert exc.endpoint, f"{exc} names no endpoint"

    check()
