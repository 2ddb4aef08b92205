"""Every endpoint the simulator serves answers with bodies that validate against Atlassian's spec.

Schemas come from the official OpenAPI file in ../shared/reference when it is there (CI and the
developers' machines), else from the extract of it shipped with the simulator.

Known places where the spec lags real responses, and what the simulator does:
- `error.detail` is declared a string, but Bitbucket's missing-scope 403 sends an object
  (`{"required": [...], "granted": [...]}`); error bodies are validated with `detail` of any type.
- Error statuses a spec operation does not list (e.g. a missing-scope 403) are validated against `error`.
- The 1.0 group endpoints are not in the 2.0 spec at all; their shape (bare arrays of 1.0 group and
  user objects) is checked against the reference's description instead.
- `workspace_membership` lacks `permission`, `added_on`, `last_accessed` and `repository` lacks `slug`
  and `workspace`; the simulator sends them as Bitbucket does (the schemas allow extra properties).
- A group inside a permissions-config entry is sparse in recorded responses (`owner`, `slug`, `name`; no
  `type`, and an `owner` that is only `{"username": ...}`), so `group` is validated without requiring either
  to be a typed object.
- `has_2fa_enabled` is declared a boolean, but recorded `/2.0/user` answers carry `null`
  (tests/fixtures/recorded; the `documented` organisation serves it): validated as a boolean or null.
- `branchrestriction.value` is declared an integer, but a recorded page (checkov's docs) carries `null` for
  kinds that count nothing; `deploy_key.last_used` is a date-time, but the spec's own examples carry `null`
  (never used): both validated as nullable.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from urllib.parse import quote

import pytest
from openapi_schema_validator import OAS30Validator

from bitbucket_simulator.app import REMOVED_PATHS
from bitbucket_simulator.auth import SPEC_EXTRACT
from tests.support import ROOT

FULL_SPEC = ROOT.parent / "shared" / "reference" / "bitbucket-openapi.json"


@cache
def spec() -> tuple[dict, dict[tuple[str, str], dict]]:
    extract = json.loads(SPEC_EXTRACT.read_text())
    components = (
        json.loads(FULL_SPEC.read_text())["components"]
        if FULL_SPEC.exists()
        else {"schemas": extract["schemas"]}
    )
    ops = {(op["method"], op["path"]): op for op in extract["operations"]}
    components = copy.deepcopy(components)
    # Deviation (see module docstring): scope errors carry an object in `detail`.
    components["schemas"]["error"]["properties"]["error"]["properties"]["detail"] = {}
    # Deviation: sparse group objects carry no `type` (the `object` base schema requires it).
    group = components["schemas"]["group"]
    group["allOf"] = [part for part in group["allOf"] if part.get("$ref") != "#/components/schemas/object"]
    for part in group["allOf"]:
        if "owner" in part.get("properties", {}):
            part["properties"]["owner"] = {"type": "object"}  # recorded as `{"username": ...}` only
    # Deviation: recorded /2.0/user answers carry `has_2fa_enabled: null`.
    for part in components["schemas"]["account"].get("allOf", []):
        if "has_2fa_enabled" in part.get("properties", {}):
            part["properties"]["has_2fa_enabled"] = {"type": "boolean", "nullable": True}
    # Deviation: `value: null` on a recorded branch restriction page; `last_used: null` in the spec's
    # examples.
    for name, prop in (
        ("branchrestriction", "value"),
        ("deploy_key", "last_used"),
        ("project_deploy_key", "last_used"),
    ):
        for part in components["schemas"][name].get("allOf", []):
            if prop in part.get("properties", {}):
                part["properties"][prop] = {**part["properties"][prop], "nullable": True}
    return components, ops


def validate(method: str, spec_path: str, status: int, body: object) -> None:
    components, ops = spec()
    op = ops[(method, spec_path)]
    entry = op["responses"].get(str(status)) or op["responses"].get("default")
    if entry is None:
        # Scope and auth errors can strike any operation; the spec lists them on few.
        assert status >= 400, f"{method} {spec_path} answered {status}, which the spec does not list"
        entry = {"schema": {"$ref": "#/components/schemas/error"}}
    ref = entry["schema"]["$ref"]
    OAS30Validator({"$ref": ref, "components": components}).validate(body)


def test_uses_the_official_spec_when_available() -> None:
    components, _ = spec()
    assert "repository" in components["schemas"]
    assert len(components["schemas"]) >= 36


def _cases(sim) -> list[tuple[str, str, str, int]]:
    ws = sim.org.workspaces["tiny-co"]
    ana = sim.user("ana")
    repo = ws.repositories["payments-api"]
    return [
        ("GET", "/2.0/user", "/2.0/user", 200),
        ("GET", "/2.0/users/{selected_user}", f"/2.0/users/{quote(ana.uuid)}", 200),
        ("GET", "/2.0/users/{selected_user}", "/2.0/users/nobody", 404),
        ("GET", "/2.0/user/workspaces", "/2.0/user/workspaces", 200),
        (
            "GET",
            "/2.0/user/workspaces/{workspace}/permission",
            "/2.0/user/workspaces/tiny-co/permission",
            200,
        ),
        (
            "GET",
            "/2.0/user/workspaces/{workspace}/permission",
            "/2.0/user/workspaces/nowhere/permission",
            403,
        ),
        (
            "GET",
            "/2.0/user/workspaces/{workspace}/permissions/repositories",
            "/2.0/user/workspaces/tiny-co/permissions/repositories",
            200,
        ),
        ("GET", "/2.0/workspaces/{workspace}", "/2.0/workspaces/tiny-co", 200),
        ("GET", "/2.0/workspaces/{workspace}", f"/2.0/workspaces/{quote(ws.uuid)}", 200),
        ("GET", "/2.0/workspaces/{workspace}", "/2.0/workspaces/nowhere", 404),
        ("GET", "/2.0/workspaces/{workspace}/members", "/2.0/workspaces/tiny-co/members", 200),
        (
            "GET",
            "/2.0/workspaces/{workspace}/members/{member}",
            f"/2.0/workspaces/tiny-co/members/{ana.account_id}",
            200,
        ),
        (
            "GET",
            "/2.0/workspaces/{workspace}/members/{member}",
            "/2.0/workspaces/tiny-co/members/nobody",
            404,
        ),
        ("GET", "/2.0/workspaces/{workspace}/permissions", "/2.0/workspaces/tiny-co/permissions", 200),
        (
            "GET",
            "/2.0/workspaces/{workspace}/permissions/repositories",
            "/2.0/workspaces/tiny-co/permissions/repositories?pagelen=100",
            200,
        ),
        (
            "GET",
            "/2.0/workspaces/{workspace}/permissions/repositories/{repo_slug}",
            "/2.0/workspaces/tiny-co/permissions/repositories/payments-api",
            200,
        ),
        ("GET", "/2.0/workspaces/{workspace}/projects", "/2.0/workspaces/tiny-co/projects", 200),
        (
            "GET",
            "/2.0/workspaces/{workspace}/projects/{project_key}",
            "/2.0/workspaces/tiny-co/projects/PAY",
            200,
        ),
        (
            "GET",
            "/2.0/workspaces/{workspace}/projects/{project_key}",
            "/2.0/workspaces/tiny-co/projects/NOPE",
            404,
        ),
        (
            "GET",
            "/2.0/workspaces/{workspace}/projects/{project_key}/default-reviewers",
            "/2.0/workspaces/tiny-co/projects/PAY/default-reviewers",
            200,
        ),
        (
            "GET",
            "/2.0/workspaces/{workspace}/projects/{project_key}/permissions-config/users",
            "/2.0/workspaces/tiny-co/projects/PAY/permissions-config/users",
            200,
        ),
        (
            "GET",
            "/2.0/workspaces/{workspace}/projects/{project_key}/permissions-config/users/{selected_user_id}",
            f"/2.0/workspaces/tiny-co/projects/PAY/permissions-config/users/{quote(ana.uuid)}",
            200,
        ),
        (
            "GET",
            "/2.0/workspaces/{workspace}/projects/{project_key}/permissions-config/groups",
            "/2.0/workspaces/tiny-co/projects/PAY/permissions-config/groups",
            200,
        ),
        (
            "GET",
            "/2.0/workspaces/{workspace}/projects/{project_key}/permissions-config/groups/{group_slug}",
            "/2.0/workspaces/tiny-co/projects/PAY/permissions-config/groups/leads",
            200,
        ),
        ("GET", "/2.0/repositories/{workspace}", "/2.0/repositories/tiny-co", 200),
        ("GET", "/2.0/repositories/{workspace}", "/2.0/repositories/nowhere", 404),
        ("GET", "/2.0/repositories/{workspace}/{repo_slug}", "/2.0/repositories/tiny-co/payments-api", 200),
        (
            "GET",
            "/2.0/repositories/{workspace}/{repo_slug}",
            f"/2.0/repositories/tiny-co/{quote(repo.uuid)}",
            200,
        ),
        ("GET", "/2.0/repositories/{workspace}/{repo_slug}", "/2.0/repositories/tiny-co/nope", 404),
        (
            "GET",
            "/2.0/repositories/{workspace}/{repo_slug}/permissions-config/users",
            "/2.0/repositories/tiny-co/payments-api/permissions-config/users",
            200,
        ),
        (
            "GET",
            "/2.0/repositories/{workspace}/{repo_slug}/permissions-config/users/{selected_user_id}",
            f"/2.0/repositories/tiny-co/payments-api/permissions-config/users/{ana.account_id}",
            200,
        ),
        (
            "GET",
            "/2.0/repositories/{workspace}/{repo_slug}/permissions-config/groups",
            "/2.0/repositories/tiny-co/payments-api/permissions-config/groups",
            200,
        ),
        (
            "GET",
            "/2.0/repositories/{workspace}/{repo_slug}/permissions-config/groups/{group_slug}",
            "/2.0/repositories/tiny-co/payments-api/permissions-config/groups/developers",
            200,
        ),
        (
            "GET",
            "/2.0/repositories/{workspace}/{repo_slug}/permissions-config/groups/{group_slug}",
            "/2.0/repositories/tiny-co/payments-api/permissions-config/groups/leads",
            404,
        ),
        *[
            (
                "GET",
                f"/2.0/repositories/{{workspace}}/{{repo_slug}}/{what}",
                f"/2.0/repositories/tiny-co/{slug}/{what}",
                200,
            )
            for what in (
                "branch-restrictions",
                "effective-branching-model",
                "override-settings",
                "deploy-keys",
            )
            for slug in ("payments-api", "ledger", "public-docs")
        ],
        (
            "GET",
            "/2.0/workspaces/{workspace}/projects/{project_key}/deploy-keys",
            "/2.0/workspaces/tiny-co/projects/PAY/deploy-keys",
            200,
        ),
        (
            "GET",
            "/2.0/workspaces/{workspace}/members",
            "/2.0/workspaces/tiny-co/members?fields=%2Bvalues.user.has_2fa_enabled",
            200,
        ),
    ]


def test_every_get_response_conforms(tiny_sim) -> None:
    checked = set()
    for method, spec_path, path, status in _cases(tiny_sim):
        response = tiny_sim.get(path)
        assert response.status_code == status, f"{path}: {response.status_code} {response.text[:200]}"
        validate(method, spec_path, status, response.json())
        checked.add((method, spec_path))
    served = {
        (m, route.path)
        for route in tiny_sim.simulator.app.app.routes
        for m in route.methods or ()
        if route.path.startswith("/2.0/") and m == "GET" and (m, route.path) in spec()[1]
    }
    # The removed CHANGE-2770 paths answer 410 on purpose (tested elsewhere).
    served -= {("GET", path) for path in REMOVED_PATHS}
    assert served - checked == set(), "served GET endpoints without a conformance case"


def test_paginated_pages_conform_beyond_the_first(tiny_sim) -> None:
    url = tiny_sim.url + "/2.0/workspaces/tiny-co/members?pagelen=7"
    pages = 0
    while url:
        body = tiny_sim.session.get(url, timeout=10).json()
        validate("GET", "/2.0/workspaces/{workspace}/members", 200, body)
        url = body.get("next")
        pages += 1
    assert pages == 15  # 100 members at 7 a page


def test_mutation_responses_conform(make_sim) -> None:
    sim = make_sim()
    ben = sim.user("ben")
    base = "/2.0/repositories/tiny-co/ledger/permissions-config"
    put = sim.session.put(
        f"{sim.url}{base}/users/{quote(ben.uuid)}", json={"permission": "write"}, timeout=10
    )
    assert put.status_code == 200
    validate(
        "PUT",
        "/2.0/repositories/{workspace}/{repo_slug}/permissions-config/users/{selected_user_id}",
        200,
        put.json(),
    )
    bad = sim.session.put(f"{sim.url}{base}/groups/leads", json={"permission": "owner"}, timeout=10)
    assert bad.status_code == 400
    validate(
        "PUT",
        "/2.0/repositories/{workspace}/{repo_slug}/permissions-config/groups/{group_slug}",
        400,
        bad.json(),
    )
    put = sim.session.put(
        f"{sim.url}/2.0/workspaces/tiny-co/projects/OPS/permissions-config/groups/leads",
        json={"permission": "create-repo"},
        timeout=10,
    )
    validate(
        "PUT",
        "/2.0/workspaces/{workspace}/projects/{project_key}/permissions-config/groups/{group_slug}",
        200,
        put.json(),
    )


def test_scope_error_is_the_documented_shape(make_sim) -> None:
    sim = make_sim()
    sim.simulator.credentials.add_api_token(
        "limited@tiny.example", "limited-token", sim.org.operator_uuid, {"read:user:bitbucket"}
    )
    response = sim.session.get(
        sim.url + "/2.0/workspaces/tiny-co/projects", auth=("limited@tiny.example", "limited-token")
    )
    assert response.status_code == 403
    body = response.json()
    validate("GET", "/2.0/workspaces/{workspace}/projects", 403, body)
    assert body["error"]["detail"] == {
        "required": ["read:project:bitbucket"],
        "granted": ["read:user:bitbucket"],
    }


@pytest.mark.parametrize("path", ["/1.0/groups/tiny-co", "/1.0/groups/tiny-co/developers/members"])
def test_v1_group_endpoints_are_bare_arrays(tiny_sim, path: str) -> None:
    body = tiny_sim.get(path).json()
    assert isinstance(body, list)
    if path.endswith("members"):
        assert {m["display_name"] for m in body} == {"Ana Ruiz", "Ben Okafor", "Lena Leaver"}
        assert all(m["uuid"].startswith("{") and "account_id" in m for m in body)
    else:
        groups = {g["slug"]: g for g in body}
        assert set(groups) == {"developers", "leads", "empty-group", "on-call", "everyone"}
        assert groups["empty-group"]["members"] == []
        assert len(groups["everyone"]["members"]) == 100
        assert groups["on-call"]["name"] == 'Ops "on-call" – Δ team'
        # A 1.0 group's owner is the workspace as a team object, with a null account id.
        owner = groups["leads"]["owner"]
        assert owner["is_team"] is True and owner["account_id"] is None and owner["nickname"] == "tiny-co"


def test_users_outside_the_member_list_in_their_recorded_shapes(tiny_sim) -> None:
    """A former user keeps only uuid, display name and links; an app user is `type: app_user` (spec
    schema)."""
    ledger = tiny_sim.get("/2.0/repositories/tiny-co/ledger/permissions-config/users").json()["values"]
    (former,) = [v["user"] for v in ledger]
    assert former["display_name"] == "Former user" and former["uuid"].startswith("{")
    assert "account_id" not in former and "nickname" not in former
    api = tiny_sim.get("/2.0/repositories/tiny-co/payments-api/permissions-config/users").json()["values"]
    (bot,) = [v["user"] for v in api if v["user"]["type"] == "app_user"]
    assert bot["display_name"] == "Deploy token" and bot["account_id"]
    members = tiny_sim.get("/2.0/workspaces/tiny-co/permissions?pagelen=100").json()["values"]
    assert bot["uuid"] not in {m["user"]["uuid"] for m in members}
    groups = tiny_sim.get("/2.0/repositories/tiny-co/payments-api/permissions-config/groups").json()["values"]
    assert {tuple(sorted(v["group"])) for v in groups} == {("name", "owner", "slug")}


def test_the_documented_shapes_conform_and_are_the_documented_ones(make_sim) -> None:
    """The `documented` organisation (documented_shapes: all, a user-owned repository) against the spec, and
    each shape as Atlassian's examples show it."""
    sim = make_sim("documented")
    geordi = sim.org.workspaces["bbworkspace1"].repositories["geordi"]
    cases = [
        ("/2.0/user", "/2.0/user"),
        ("/2.0/workspaces/{workspace}/permissions", "/2.0/workspaces/bbworkspace1/permissions"),
        (
            "/2.0/workspaces/{workspace}/permissions/repositories",
            "/2.0/workspaces/bbworkspace1/permissions/repositories",
        ),
        (
            "/2.0/repositories/{workspace}/{repo_slug}/permissions-config/groups",
            f"/2.0/repositories/bbworkspace1/{quote(geordi.uuid)}/permissions-config/groups",
        ),
        ("/2.0/repositories/{workspace}/{repo_slug}", "/2.0/repositories/gildas_cherruel/bb"),
    ]
    bodies = {}
    for spec_path, path in cases:
        response = sim.get(path)
        assert response.status_code == 200, f"{path}: {response.text[:200]}"
        validate("GET", spec_path, 200, response.json())
        bodies[spec_path] = response.json()
    me = bodies["/2.0/user"]
    assert me["username"] == "svc" and me["has_2fa_enabled"] is None
    members = bodies["/2.0/workspaces/{workspace}/permissions"]["values"]
    assert all("account_id" not in m["user"] and "links" not in m["user"] for m in members)
    effective = bodies["/2.0/workspaces/{workspace}/permissions/repositories"]["values"]
    assert all(set(e["user"]) == {"type", "display_name", "uuid"} for e in effective)
    [group] = bodies["/2.0/repositories/{workspace}/{repo_slug}/permissions-config/groups"]["values"]
    assert group["group"] == {"type": "group", "name": "Developers", "slug": "developers"}
    owner = bodies["/2.0/repositories/{workspace}/{repo_slug}"]["owner"]
    assert owner["type"] == "user" and owner["display_name"] == "Access Sync Bot"


def test_a_path_no_api_serves_gets_the_routers_answer(tiny_sim) -> None:
    response = tiny_sim.get("/2.0/repositories/tiny-co/payments-api/no-such-list")
    assert response.status_code == 404
    validate("GET", "/2.0/repositories/{workspace}/{repo_slug}", 404, response.json())
    assert response.json()["error"]["detail"].startswith("There is no API hosted at this URL.")
