"""The typed API layer over HTTP: typed results, quoted paths, typed errors, sparse objects tolerated."""

from __future__ import annotations

import pytest

from bitbucket_assets.client import (
    BitbucketApi,
    BitbucketClient,
    BitbucketError,
    Credentials,
    MalformedResponseError,
    UnknownGroupError,
    UnknownUserError,
)
from bitbucket_assets.client.api import (
    _branching_model,
    _effective,
    _group_grant,
    _repository,
    _restriction,
    _typed,
    _user,
)
from bitbucket_simulator import SIM_API_TOKEN


def api_for(sim) -> BitbucketApi:
    client = BitbucketClient(Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url, requests_per_hour=1e7)
    return BitbucketApi(client)


def test_typed_reads(tiny_sim) -> None:
    api = api_for(tiny_sim)
    assert api.current_user().display_name == "Access Sync Bot"
    workspaces = api.user_workspaces()
    assert [(w.slug, w.administrator) for w in workspaces] == [("tiny-co", True), ("tiny-labs", True)]
    members = list(api.workspace_members("tiny-co"))
    assert len(members) == 100 and {m.permission for m in members} == {"owner", "member"}
    groups = {g.slug: g for g in api.groups("tiny-co")}
    ana = tiny_sim.user("ana")
    assert (
        ana.uuid in {u.uuid for u in groups["developers"].members}
        and "members" not in groups["developers"].raw
    )
    repos = [r for page in api.repository_pages("tiny-co") for r in page.items]
    payments = next(r for r in repos if r.slug == "payments-api")
    assert payments.project_key and payments.full_name == "tiny-co/payments-api"
    grants = {g.user.uuid: g.permission for g in api.repository_user_grants("tiny-co", "payments-api")}
    assert grants[ana.uuid] == "read"


def test_pages_resume_from_a_next_link(tiny_sim) -> None:
    api = api_for(tiny_sim)
    first = next(iter(api.effective_permission_pages("tiny-co")))
    assert first.next_url  # more than one page of effective permissions
    resumed = next(iter(api.effective_permission_pages("tiny-co", resume_from=first.next_url)))
    assert resumed.items and {(e.repository_uuid, e.user.uuid) for e in resumed.items}.isdisjoint(
        {(e.repository_uuid, e.user.uuid) for e in first.items}
    )


def test_unknown_user_and_group_are_typed(make_sim) -> None:
    sim = make_sim()
    api = api_for(sim)
    with pytest.raises(UnknownUserError, match=r"'\{00000000-0000-4000-8000-00000000beef\}' is not a member"):
        api.workspace_member("tiny-co", "{00000000-0000-4000-8000-00000000beef}")
    with pytest.raises(UnknownGroupError, match="group 'no-such-group' not found"):
        api.group_members("tiny-co", "no-such-group")
    finn = sim.user("finn")
    assert api.workspace_member("tiny-co", finn.account_id).user.uuid == finn.uuid
    added = api.add_group_member("tiny-co", "leads", finn.uuid)
    again = api.add_group_member("tiny-co", "leads", finn.uuid)
    assert (added.status, added.changed, again.status, again.changed) == (200, True, 409, False)
    removed = api.remove_group_member("tiny-co", "leads", finn.uuid)
    assert (removed.status, removed.changed) == (204, True)


def test_path_segments_are_quoted_without_safe_characters(make_sim) -> None:
    """A `/` in a slug stays inside its segment (`%2F`): it can never address another endpoint."""
    sim = make_sim()
    with pytest.raises(BitbucketError) as excinfo:
        api_for(sim).group_members("tiny-co", "leads/members")
    assert excinfo.value.endpoint == "/1.0/groups/tiny-co/leads%2Fmembers/members"


def test_sparse_objects_are_accepted_and_missing_identities_are_named() -> None:
    """Shapes of recorded Bitbucket responses: a group as only owner/slug/name, a "Former user" with no
    account id or nickname, an app user, a repository without `slug` (derived from `full_name`)."""
    sparse_group = {
        "permission": "write",
        "group": {"owner": {"username": "tiny-co"}, "slug": "devs", "name": "Devs"},
    }
    grant = _group_grant(sparse_group, "/x")
    assert (grant.group_slug, grant.group_name, grant.permission) == ("devs", "Devs", "write")
    former = _user({"type": "user", "display_name": "Former user", "uuid": "{f}"}, "/x")
    assert (former.account_id, former.nickname, former.display_name) == (None, None, "Former user")
    bot = _user({"type": "app_user", "uuid": "{b}", "display_name": "CI bot", "account_id": "557058:b"}, "/x")
    assert bot.type == "app_user"
    repo = _repository({"uuid": "{r}", "full_name": "tiny-co/ledger"}, "/x")
    assert (repo.slug, repo.project_key, repo.is_private) == ("ledger", None, None)
    with pytest.raises(
        MalformedResponseError, match=r"missing field `uuid`.*\[/2.0/workspaces/w/permissions/re"
    ):
        _effective(
            {"permission": "read", "repository": {"name": "r"}, "user": {"uuid": "{u}"}},
            "/2.0/workspaces/w/permissions/repositories",
        )


def test_a_routing_404_on_a_membership_removal_is_an_error_not_no_change(make_sim) -> None:
    """DELETE answers 404 when the user was not a member (`no_change`); a 404 that says no API is hosted there
    (a proxy, an API change) must not read as that."""
    from bitbucket_assets.client import EndpointNotFoundError

    sim = make_sim()
    router = sim.simulator.app.app.router
    router.routes = [r for r in router.routes if not getattr(r, "path", "").endswith("/members/{member}")]
    ben = sim.user("ben")
    with pytest.raises(EndpointNotFoundError, match="no API is hosted at this URL"):
        api_for(sim).remove_group_member("tiny-co", "developers", ben.uuid)
    assert ben.uuid in sim.org.workspaces["tiny-co"].groups["developers"].members


def test_an_error_body_echoing_the_credential_is_quoted_without_it() -> None:
    """A hostile proxy may echo the request's Authorization header into an error body, which errors quote."""
    import base64

    from bitbucket_assets.client import EndpointNotFoundError
    from tests.support.replay import Answer, ReplayServer, Scenario

    secret, email = "ATATT3xEchoedSecret0001", "someone@example.com"
    basic = base64.b64encode(f"{email}:{secret}".encode()).decode()
    echo = f"<html>no route for /x; you sent Authorization: Basic {basic} (token {secret})</html>".encode()
    scenario = Scenario("echo", {}, Answer(404, echo, "inline"))
    with ReplayServer(scenario) as server:
        client = BitbucketClient(Credentials.api_token(email, secret), server.url, requests_per_hour=1e7)
        with pytest.raises(EndpointNotFoundError) as excinfo:
            client.get("/2.0/user")
    message = str(excinfo.value)
    assert "the body is not Bitbucket's error object" in message and "no route for /x" in message
    assert secret not in message and basic not in message and "Basic ***" in message


def test_a_branch_restriction_with_groups_is_typed_and_a_hostile_group_name_is_malformed() -> None:
    """Exempt groups are (slug, name) pairs: a well-formed rule passes the shape check every list entry goes
    through, and a group name that is not text fails it, naming the endpoint."""
    endpoint = "/2.0/repositories/w/r/branch-restrictions"
    rule = {
        "id": 7,
        "kind": "push",
        "branch_match_kind": "glob",
        "pattern": "main",
        "users": [],
        "groups": [{"slug": "release", "name": "Release managers"}],
    }
    parsed = _typed(_restriction, rule, endpoint, page=1)
    assert (parsed.kind, parsed.pattern, parsed.groups) == (
        "push",
        "main",
        (("release", "Release managers"),),
    )
    for name in ({"$gt": ""}, 12, True):
        hostile = {**rule, "groups": [{"slug": "release", "name": name}]}
        with pytest.raises(MalformedResponseError, match=r"page 1: an object of a shape .*branch-restrict"):
            _typed(_restriction, hostile, endpoint, page=1)


def test_a_branch_name_that_is_not_text_is_no_production_branch() -> None:
    """A branching model whose production branch is named by a list or an object names no branch (the
    repository's mainbranch is used, and the data says so) instead of storing the JSON as a branch name."""
    endpoint = "/2.0/repositories/w/r/effective-branching-model"
    for name in ([{"k": 1}], {"k": 1}, 7):
        model = _branching_model({"production": {"name": name, "use_mainbranch": False}}, endpoint)
        assert model.production is None and model.production_use_mainbranch is False
    named = _branching_model({"production": {"branch": {"name": "release"}}}, endpoint)
    assert named.production == "release"
