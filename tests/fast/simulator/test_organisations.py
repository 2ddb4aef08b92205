"""The synthetic organisations, organisation files and the evolution step."""

from __future__ import annotations

import json

import pytest

from bitbucket_simulator import advance, load_organisation
from bitbucket_simulator.orgfile import OrganisationFileError


def test_tiny_edge_cases() -> None:
    org = load_organisation("tiny")
    ws = org.workspaces["tiny-co"]
    assert len(ws.members) == 100
    assert ws.groups["empty-group"].members == []
    assert (
        ws.repositories["orphan-repo"].user_grants == {} and ws.repositories["orphan-repo"].group_grants == {}
    )
    assert "create-repo" in ws.projects["PAY"].group_grants.values()
    assert any(
        "'" in u.display_name and '"' in u.display_name and "ë" in u.display_name for u in org.users.values()
    )
    assert org.workspaces["tiny-labs"].admin_managed


def test_demo_is_a_believable_company() -> None:
    org = load_organisation("demo")
    counts = org.counts()
    members = {u for ws in org.workspaces.values() for u in ws.members}
    assert len(members) == 150 and counts["workspaces"] == 2
    # Access without membership, per workspace: collaborators, an access token's bot, a former user.
    outside = [u for u in org.users.values() if u.uuid not in members]
    assert sum(u.kind == "app_user" for u in outside) == 2
    assert sum(u.is_former and u.account_id is None and u.nickname is None for u in outside) == 2
    assert sum(u.kind == "user" and not u.is_former for u in outside) >= 2
    granted = {u for ws in org.workspaces.values() for r in ws.repositories.values() for u in r.user_grants}
    assert {u.uuid for u in outside} <= granted
    assert 12 <= counts["groups"] <= 18 and counts["projects"] == 12 and counts["repositories"] == 200
    users = org.users.values()
    assert sum(u.is_contractor for u in users) >= 5
    assert sum(u.account_status == "inactive" for u in users) >= 2
    owners = {u for ws in org.workspaces.values() for u in ws.owners()}
    assert 3 <= len(owners) <= 6
    # Most access comes through project-level group grants.
    repos = [r for ws in org.workspaces.values() for r in ws.repositories.values()]
    explicit = sum(bool(r.user_grants or r.group_grants) for r in repos)
    assert explicit < len(repos) / 2


def test_large_has_the_promised_shape() -> None:
    org = load_organisation("large")
    counts = org.counts()
    members = {u for ws in org.workspaces.values() for u in ws.members}
    assert (len(members), counts["groups"], counts["projects"], counts["repositories"]) == (
        5000,
        300,
        500,
        20000,
    )


def test_generation_is_seeded() -> None:
    a, b, c = (
        load_organisation("demo", seed=1),
        load_organisation("demo", seed=1),
        load_organisation("demo", seed=2),
    )
    assert list(a.users) == list(b.users)
    assert list(a.users) != list(c.users)


def test_advance_produces_realistic_deterministic_history() -> None:
    a, b = load_organisation("demo"), load_organisation("demo")
    before_repos = a.counts()["repositories"]
    start = a.now
    totals = advance(a, days=5, churn=0.02)
    advance(b, days=5, churn=0.02)
    assert (a.now - start).days == 5
    assert totals["joiners"] >= 5 and totals["leavers"] >= 5 and totals["movers"] >= 1
    assert totals["new_repositories"] >= 5 and totals["permission_changes"] >= 5
    assert totals["deleted_repositories"] >= 5
    assert (
        a.counts()["repositories"]
        == before_repos + totals["new_repositories"] - totals["deleted_repositories"]
    )
    assert list(a.users) == list(b.users)  # same seed, same days: same history


def test_organisation_files_yaml_and_json(tmp_path) -> None:
    data = {
        "name": "acme",
        "users": [{"key": "ops", "email": "ops@acme.example"}, {"key": "ana"}],
        "workspaces": [
            {
                "slug": "acme",
                "owners": ["ops"],
                "groups": [{"slug": "devs", "members": ["ana"]}],
                "projects": [{"key": "P", "groups": {"devs": "write"}, "repositories": [{"slug": "r1"}]}],
            }
        ],
    }
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(data))
    org = load_organisation(str(path))
    ws = org.workspaces["acme"]
    assert org.users[org.operator_uuid].email == "ops@acme.example"
    ana = next(u for u in org.users.values() if u.nickname == "ana")
    assert ws.effective_repository_permissions(ws.repositories["r1"])[ana.uuid] == "write"
    yaml_path = tmp_path / "acme.yaml"
    yaml_path.write_text("name: acme\nusers: [{key: ops}]\nworkspaces: [{slug: acme, owners: [ops]}]\n")
    assert load_organisation(str(yaml_path)).workspaces["acme"].owners()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {
                "users": [{"key": "a"}],
                "workspaces": [{"slug": "w", "groups": [{"slug": "g", "members": ["zz"]}]}],
            },
            "workspaces[0].groups[0]: unknown user 'zz'",
        ),
        (
            {
                "users": [{"key": "a"}],
                "workspaces": [{"slug": "w", "projects": [{"key": "P", "users": {"a": "owner"}}]}],
            },
            "permission 'owner' for 'a' is not one of read, write, create-repo, admin",
        ),
        ({"users": [{"display_name": "x"}]}, "users[0]: every user needs a `key`"),
        (
            {"documented_shapes": ["member_users", "owners"]},
            "documented_shapes: expected `all` or a list of member_users, effective_users, group_refs, "
            "current_user, members_only_2fa, not ['member_users', 'owners']",
        ),
        (
            {"users": [{"key": "a"}], "workspaces": [{"slug": "w", "repository_owner": "zz"}]},
            "workspaces[0].repository_owner: unknown user 'zz'",
        ),
    ],
)
def test_organisation_file_errors_name_the_entry(tmp_path, data: dict, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(OrganisationFileError) as excinfo:
        load_organisation(str(path))
    assert message in str(excinfo.value) and "bad.json" in str(excinfo.value)


def test_unknown_organisation_name() -> None:
    with pytest.raises(ValueError, match="unknown organisation 'nope'"):
        load_organisation("nope")
