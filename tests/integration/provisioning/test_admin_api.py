"""Group provisioning for workspaces administered from admin.atlassian.com, through the Atlassian Admin API
v2.

`tiny-labs` is such a workspace (its members carry no `added_on`, so the latest snapshot says so); `tiny-co`
is a classic one. Every test talks HTTP to the simulator, which serves both APIs over the same groups.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb

from bitbucket_simulator import SIM_ORG_API_KEY, SIM_ORG_API_KEY_READ_ONLY, RateLimit
from tests.support.provisioning import (
    NOW,
    add_request,
    admin_api,
    expire,
    log_with_backend,
    provision,
    statuses,
)

LABS = {"workspace_slug": "tiny-labs"}


def admin_writes(sim) -> list:
    return [
        r
        for r in sim.simulator.request_log
        if r.path.startswith("/admin/") and r.method in ("POST", "DELETE") and "/memberships" in r.path
    ]


def test_the_snapshot_tells_which_workspaces_are_administered_from_admin_atlassian_com(warehouse) -> None:
    with duckdb.connect(warehouse, read_only=True) as con:
        kinds = con.execute(
            "select workspace_slug, user_management, group_source from marts.dim_workspaces order by 1"
        ).fetchall()
    assert kinds == [
        ("tiny-co", "bitbucket", "bitbucket-1.0"),
        ("tiny-labs", "atlassian_admin", "bitbucket-1.0"),
    ]


def test_the_same_request_goes_through_the_1_0_api_or_the_admin_api_by_workspace(make_sim, warehouse) -> None:
    sim = make_sim(admin_page_limit=1)  # one item per Admin API page: the cursor is followed
    ana = sim.user("ana")
    sim.org.workspaces["tiny-labs"].groups["researchers"].members.append(sim.user("svc").uuid)  # two members
    add_request(warehouse, "classic", ana, "leads")
    add_request(warehouse, "org", ana, "researchers", **LABS)
    provision(sim, warehouse, admin=admin_api(sim))

    assert statuses(warehouse) == {"classic": ("applied", None), "org": ("applied", None)}
    rows = log_with_backend(warehouse)
    assert rows["classic"][:3] == ("add", "applied", "bitbucket-1.0")
    assert rows["org"][:3] == ("add", "applied", "atlassian-admin-api")
    assert ana.uuid in sim.org.workspaces["tiny-co"].groups["leads"].members
    assert ana.uuid in sim.org.workspaces["tiny-labs"].groups["researchers"].members
    # tiny-labs was changed by account id through the Admin API, never through the 1.0 API.
    [post] = admin_writes(sim)
    assert post.method == "POST" and post.status == 204
    v1_writes = [r.path for r in sim.simulator.request_log if r.method in ("PUT", "DELETE")]
    assert v1_writes == [f"/1.0/groups/tiny-co/leads/members/{ana.uuid}"]
    # The group's members were read page by page (two members before the change, one per page).
    assert sum(r.path.endswith("/users/search") for r in sim.simulator.request_log) == 2


def test_the_dry_run_plan_names_the_api_each_change_would_use(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "classic", sim.user("ana"), "leads")
    add_request(warehouse, "org", sim.user("ana"), "researchers", **LABS)
    provision(sim, warehouse, dry_run=True, admin=admin_api(sim))

    rows = log_with_backend(warehouse)
    assert rows["classic"][1:3] == ("planned", "bitbucket-1.0")
    assert (
        "via the Bitbucket 1.0 groups API (managed in Bitbucket, as its members show)" in rows["classic"][3]
    )
    assert rows["org"][1:3] == ("planned", "atlassian-admin-api")
    assert "via the Atlassian Admin API (administered from admin.atlassian.com" in rows["org"][3]
    assert sim.simulator.request_log == []  # a plan calls nothing, on either API


def test_a_group_synced_from_an_identity_provider_is_refused_and_the_rest_go_on(make_sim, warehouse) -> None:
    sim = make_sim()
    sim.org.workspaces["tiny-labs"].groups["researchers"].idp_synced = True
    add_request(warehouse, "synced", sim.user("ana"), "researchers", **LABS)
    add_request(warehouse, "synced-remove", sim.user("ben"), "researchers", action="remove", **LABS)
    add_request(warehouse, "classic", sim.user("ana"), "leads")
    provision(sim, warehouse, admin=admin_api(sim))

    st = statuses(warehouse)
    for request in ("synced", "synced-remove"):
        status, reason = st[request]
        assert status == "failed"
        assert "'Researchers' is synced from your identity provider" in reason
        assert "change its membership in the identity provider" in reason
    assert st["classic"] == ("applied", None)
    assert admin_writes(sim) == []  # refused from the group's own flag, before any change was attempted
    assert sim.user("ben").uuid in sim.org.workspaces["tiny-labs"].groups["researchers"].members


def test_a_user_limit_and_a_key_without_permission_are_refused_with_their_reasons(
    make_sim, warehouse
) -> None:
    sim = make_sim()
    sim.org.workspaces["tiny-labs"].groups["researchers"].user_limit_reached = True
    add_request(warehouse, "limit", sim.user("ana"), "researchers", **LABS)
    provision(sim, warehouse, admin=admin_api(sim))
    status, reason = statuses(warehouse)["limit"]
    assert status == "failed"
    assert "grants an app whose user limit is reached" in reason and "ADMIN-409" not in reason.split(".")[0]
    assert [(w.method, w.status) for w in admin_writes(sim)] == [("POST", 409)]

    sim.org.workspaces["tiny-labs"].groups["researchers"].user_limit_reached = False
    add_request(warehouse, "read-only", sim.user("svc"), "researchers", **LABS)
    provision(sim, warehouse, admin=admin_api(sim, SIM_ORG_API_KEY_READ_ONLY))
    status, reason = statuses(warehouse)["read-only"]
    assert status == "failed"
    assert reason.startswith("the organization API key may not manage groups")
    assert "BITBUCKET_ADMIN_API_KEY" in reason
    with duckdb.connect(warehouse, read_only=True) as con:
        stored = " ".join(
            str(v)
            for row in con.execute("select * from provisioning.provisioning_log").fetchall()
            for v in row
        )
    assert SIM_ORG_API_KEY_READ_ONLY not in stored and SIM_ORG_API_KEY not in stored


def test_rate_limits_of_the_admin_api_fail_the_request_after_every_retry(make_sim, warehouse) -> None:
    # Three calls per hour per credential and bucket: the Admin API's fourth call (the membership POST) is a
    # 429.
    sim = make_sim(rate_limit=RateLimit(limit=3, window_seconds=3600))
    add_request(warehouse, "org", sim.user("ana"), "researchers", **LABS)
    provision(sim, warehouse, admin=admin_api(sim, rate_limit_wait=0.05))
    status, reason = statuses(warehouse)["org"]
    assert status == "failed"
    assert reason.startswith("rate limited by the Atlassian Admin API after every retry")
    assert sim.user("ana").uuid not in sim.org.workspaces["tiny-labs"].groups["researchers"].members


def test_a_workspace_named_admin_managed_needs_the_admin_api(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "named", sim.user("ana"), "researchers", **LABS)
    add_request(warehouse, "detected", sim.user("svc"), "researchers", **LABS)
    # only the first: named in the setting, and no Admin API configured
    with duckdb.connect(warehouse) as con:
        con.execute(
            "update provisioning.access_requests set status = 'rejected' where request_id = 'detected'"
        )
    provision(sim, warehouse, admin_managed=["tiny-labs"])
    status, reason = statuses(warehouse)["named"]
    assert status == "failed"
    assert "named in BITBUCKET_ADMIN_MANAGED_WORKSPACES" in reason
    assert "set BITBUCKET_ADMIN_ORG_ID and BITBUCKET_ADMIN_API_KEY" in reason
    assert [r for r in sim.simulator.request_log if r.method != "GET"] == []

    # Detected from the snapshot, with no Admin API: the 1.0 API is tried, and its refusal is explained.
    with duckdb.connect(warehouse) as con:
        con.execute(
            "update provisioning.access_requests set status = 'pending' where request_id = 'detected'"
        )
    provision(sim, warehouse)
    status, reason = statuses(warehouse)["detected"]
    assert status == "failed" and "managed from admin.atlassian.com" in reason


def test_a_just_in_time_grant_made_through_the_admin_api_expires_through_it(make_sim, warehouse) -> None:
    sim = make_sim()
    ana = sim.user("ana")
    researchers = sim.org.workspaces["tiny-labs"].groups["researchers"]
    add_request(warehouse, "jit", ana, "researchers", expires_at=NOW + timedelta(hours=2), **LABS)
    provision(sim, warehouse, admin=admin_api(sim))
    assert ana.uuid in researchers.members

    expire(sim, warehouse, now=NOW + timedelta(hours=1), admin=admin_api(sim))  # not yet
    assert statuses(warehouse)["jit"] == ("applied", None) and ana.uuid in researchers.members
    expire(sim, warehouse, now=NOW + timedelta(hours=3), admin=admin_api(sim))
    assert statuses(warehouse)["jit"][0] == "expired"
    assert ana.uuid not in researchers.members
    assert [(w.method, w.status) for w in admin_writes(sim)] == [("POST", 204), ("DELETE", 204)]
    assert log_with_backend(warehouse)["jit"][:3] == ("expire", "expired", "atlassian-admin-api")
    assert [r for r in sim.simulator.request_log if r.path.startswith("/1.0/") and r.method != "GET"] == []
