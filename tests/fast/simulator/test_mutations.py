"""Group membership writes (1.0) and permissions-config writes (2.0), and what they change."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests


def member_url(sim, ws: str, group: str, user) -> str:
    return f"{sim.url}/1.0/groups/{ws}/{group}/members/{quote(user.uuid)}"


def test_add_then_conflict_then_remove_then_404(make_sim) -> None:
    sim = make_sim()
    finn = sim.user("finn")
    url = member_url(sim, "tiny-co", "leads", finn)
    added = sim.session.put(url, json={}, timeout=10)
    assert added.status_code == 200 and added.json()["uuid"] == finn.uuid
    assert finn.uuid in sim.org.workspaces["tiny-co"].groups["leads"].members
    assert sim.session.put(url, json={}, timeout=10).status_code == 409
    assert sim.session.delete(url, timeout=10).status_code == 204
    assert finn.uuid not in sim.org.workspaces["tiny-co"].groups["leads"].members
    assert sim.session.delete(url, timeout=10).status_code == 404


def test_membership_change_changes_effective_access(make_sim) -> None:
    sim = make_sim()
    finn = sim.user("finn")

    def finn_on_payments() -> str | None:
        rows = sim.get("/2.0/workspaces/tiny-co/permissions/repositories/payments-api?pagelen=100").json()[
            "values"
        ]
        return next((r["permission"] for r in rows if r["user"]["uuid"] == finn.uuid), None)

    assert finn_on_payments() is None
    sim.session.put(member_url(sim, "tiny-co", "leads", finn), json={}, timeout=10)
    assert finn_on_payments() == "write"  # leads hold create-repo on PAY


@pytest.mark.parametrize(
    ("group", "user_key", "status"),
    [("no-such-group", "finn", 404), ("leads", None, 404)],
)
def test_unknown_group_or_user(make_sim, group: str, user_key: str | None, status: int) -> None:
    sim = make_sim()
    who = quote(sim.user(user_key).uuid) if user_key else quote("{00000000-0000-4000-8000-00000000dead}")
    response = sim.session.put(f"{sim.url}/1.0/groups/tiny-co/{group}/members/{who}", json={}, timeout=10)
    assert response.status_code == status
    assert response.json()["error"]["message"]


def test_non_member_of_the_workspace_cannot_be_added(make_sim) -> None:
    sim = make_sim()
    finn = sim.user("finn")  # in tiny-co only
    response = sim.session.put(member_url(sim, "tiny-labs", "researchers", finn), json={}, timeout=10)
    assert response.status_code in (403, 404)


def test_admin_managed_workspace_refuses_group_writes(make_sim) -> None:
    sim = make_sim()
    ana = sim.user("ana")
    response = sim.session.put(member_url(sim, "tiny-labs", "researchers", ana), json={}, timeout=10)
    assert response.status_code == 403
    assert "admin.atlassian.com" in response.json()["error"]["message"]
    assert ana.uuid not in sim.org.workspaces["tiny-labs"].groups["researchers"].members
    # Reading still works there.
    assert sim.get("/1.0/groups/tiny-labs").status_code == 200
    sim.org.workspaces["tiny-labs"].admin_managed = False
    assert (
        sim.session.put(member_url(sim, "tiny-labs", "researchers", ana), json={}, timeout=10).status_code
        == 200
    )


def test_project_and_repository_grants_round_trip(make_sim) -> None:
    sim = make_sim()
    finn = sim.user("finn")
    for base, permission in (
        ("/2.0/workspaces/tiny-co/projects/OPS/permissions-config", "create-repo"),
        ("/2.0/repositories/tiny-co/runbooks/permissions-config", "admin"),
    ):
        url = f"{sim.url}{base}/users/{finn.account_id}"
        assert sim.session.get(url, timeout=10).status_code == 404
        put = sim.session.put(url, json={"permission": permission}, timeout=10)
        assert put.status_code == 200 and put.json()["permission"] == permission
        assert sim.session.get(url, timeout=10).json()["permission"] == permission
    eff = sim.get("/2.0/workspaces/tiny-co/permissions/repositories/runbooks?pagelen=100").json()["values"]
    assert {r["user"]["uuid"]: r["permission"] for r in eff}[finn.uuid] == "admin"
    url = f"{sim.url}/2.0/repositories/tiny-co/runbooks/permissions-config/users/{finn.account_id}"
    assert sim.session.delete(url, timeout=10).status_code == 204
    eff = sim.get("/2.0/workspaces/tiny-co/permissions/repositories/runbooks?pagelen=100").json()["values"]
    # project create-repo remains
    assert {r["user"]["uuid"]: r["permission"] for r in eff}[finn.uuid] == "write"


def test_group_grants_and_bad_values(make_sim) -> None:
    sim = make_sim()
    url = f"{sim.url}/2.0/repositories/tiny-co/orphan-repo/permissions-config/groups/leads"
    # project-only value
    assert sim.session.put(url, json={"permission": "create-repo"}, timeout=10).status_code == 400
    assert sim.session.put(url, data="not json", timeout=10).status_code == 400
    assert sim.session.put(url, json={"permission": "read"}, timeout=10).status_code == 200
    groups = sim.get("/2.0/repositories/tiny-co/orphan-repo/permissions-config/groups").json()["values"]
    assert [(g["group"]["slug"], g["permission"]) for g in groups] == [("leads", "read")]
    assert (
        sim.session.put(
            f"{sim.url}/2.0/repositories/tiny-co/orphan-repo/permissions-config/groups/nope",
            json={"permission": "read"},
            timeout=10,
        ).status_code
        == 404
    )


def test_writes_need_an_api_token_with_write_scopes(make_sim) -> None:
    sim = make_sim()
    reads = {"read:permission:bitbucket", "read:repository:bitbucket", "admin:repository:bitbucket"}
    sim.simulator.credentials.add_api_token("ro@tiny.example", "ro", sim.org.operator_uuid, reads)
    url = f"{sim.url}/2.0/repositories/tiny-co/ledger/permissions-config/users/{sim.user('finn').account_id}"
    response = requests.put(url, auth=("ro@tiny.example", "ro"), json={"permission": "read"}, timeout=10)
    assert response.status_code == 403
    assert response.json()["error"]["detail"]["required"] == [
        "admin:repository:bitbucket",
        "write:permission:bitbucket",
    ]
