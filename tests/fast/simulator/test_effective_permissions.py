"""Bitbucket's effective permissions on `tiny`, against expectations written out by hand."""

from __future__ import annotations

import pytest

# repository -> {user nickname (display name without one): permission}; owners (svc, olga) are admin
# everywhere.
EXPECTED = {
    "payments-api": {
        # ana: direct read + developers write + project PAY admin -> admin (the highest wins)
        "ana": "admin",
        "ben": "write",  # developers write on the repository beats developers read on the project
        "lena": "write",  # an inactive account still holds access through developers
        "cleo": "write",  # leads hold project create-repo -> write
        "dev": "write",  # direct only
        "carl": "write",  # contractor, direct
        "deploy-bot": "write",  # an access token's bot user (`app_user`), not a workspace member: direct
        # empty-group holds admin but has no members: nobody gains from it
    },
    # "Former user": a deleted account whose direct grant nobody removed still holds it
    "ledger": {
        "ana": "admin",
        "ben": "admin",
        "lena": "read",
        "cleo": "write",
        "zoe": "admin",
        "Former user": "read",
    },
    # zoe: direct read < on-call write on OPS; olive: an outside collaborator (no membership), direct
    "runbooks": {"zoe": "write", "ben": "write", "olive": "write"},
    "orphan-repo": {},  # no explicit permission anywhere: owners only
    "public-docs": "everyone-read",
}


def effective(sim, repo: str) -> dict[str, str]:
    body = sim.get(f"/2.0/workspaces/tiny-co/permissions/repositories/{repo}?pagelen=100").json()
    assert "next" not in body
    users = sim.org.users
    return {
        users[r["user"]["uuid"]].nickname or r["user"]["display_name"]: r["permission"]
        for r in body["values"]
    }


@pytest.mark.parametrize("repo", sorted(EXPECTED))
def test_tiny_effective_permissions(tiny_sim, repo: str) -> None:
    got = effective(tiny_sim, repo)
    owners = {"svc": "admin", "olga": "admin"}
    if EXPECTED[repo] == "everyone-read":
        assert len(got) == 100
        assert {n: p for n, p in got.items() if p != "read"} == owners
    else:
        assert got == {**EXPECTED[repo], **owners}


def test_workspace_listing_is_the_union_of_repositories(tiny_sim) -> None:
    url = tiny_sim.url + "/2.0/workspaces/tiny-co/permissions/repositories?pagelen=100"
    rows = []
    while url:
        body = tiny_sim.session.get(url, timeout=10).json()
        rows += body["values"]
        url = body.get("next")
    assert len(rows) == sum(len(effective(tiny_sim, r)) for r in EXPECTED)
    assert len({(r["repository"]["uuid"], r["user"]["uuid"]) for r in rows}) == len(rows)
