"""Change control in the simulator: branch restrictions, the effective branching model, override settings,
deploy keys and two-step verification, in the shapes Atlassian documents (docs/simulator.md, "Change
control").
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest

from bitbucket_simulator import advance, load_organisation
from bitbucket_simulator.orgfile import OrganisationFileError, build_organisation

REPO = "/2.0/repositories/tiny-co"


def test_branch_restrictions_in_the_documented_shape(tiny_sim) -> None:
    page = tiny_sim.get(f"{REPO}/payments-api/branch-restrictions").json()
    assert page["pagelen"] == 10 and page["size"] == 7 and "next" not in page
    push = next(r for r in page["values"] if r["kind"] == "push")
    assert push["type"] == "branchrestriction" and push["branch_match_kind"] == "glob"
    assert push["pattern"] == "main" and push["value"] is None
    assert [u["display_name"] for u in push["users"]] == ["Cleo Lead"]
    assert [g["slug"] for g in push["groups"]] == ["developers"]
    assert push["links"]["self"]["href"].endswith(f"/branch-restrictions/{push['id']}")
    merges = next(r for r in page["values"] if r["kind"] == "restrict_merges")
    assert merges["branch_match_kind"] == "branching_model" and merges["branch_type"] == "production"
    assert merges["pattern"] == ""
    approvals = [r for r in page["values"] if r["kind"] == "require_approvals_to_merge"]
    assert sorted(r["value"] for r in approvals) == [1, 1]
    assert all(r["users"] == [] and r["groups"] == [] for r in page["values"] if r["kind"] == "force")


def test_branch_restrictions_filter_and_paginate(tiny_sim) -> None:
    pushes = tiny_sim.get(f"{REPO}/payments-api/branch-restrictions", params={"kind": "push"}).json()
    assert [r["kind"] for r in pushes["values"]] == ["push"]
    first = tiny_sim.get(f"{REPO}/payments-api/branch-restrictions", params={"pagelen": 5}).json()
    second = tiny_sim.session.get(first["next"], timeout=10).json()
    assert len(first["values"]) + len(second["values"]) == 7 and "next" not in second


def test_project_rules_are_not_served(tiny_sim) -> None:
    """OPS's push restriction is enforced on runbooks, but no API serves it (docs/simulator.md)."""
    assert tiny_sim.org.workspaces["tiny-co"].projects["OPS"].branch_restrictions
    assert tiny_sim.get(f"{REPO}/runbooks/branch-restrictions").json()["values"] == []


def test_effective_branching_model(tiny_sim) -> None:
    own = tiny_sim.get(f"{REPO}/payments-api/effective-branching-model").json()
    assert own["production"] == {
        "name": "main",
        "use_mainbranch": True,
        "branch": {"type": "branch", "name": "main"},
    }
    inherited = tiny_sim.get(f"{REPO}/ledger/effective-branching-model").json()
    assert inherited["production"]["name"] == "release" and not inherited["production"]["use_mainbranch"]
    assert inherited["development"]["use_mainbranch"] is True
    none = tiny_sim.get(f"{REPO}/public-docs/effective-branching-model").json()
    assert "production" not in none and none["development"]["name"] == "master"


def test_override_settings(tiny_sim) -> None:
    own = tiny_sim.get(f"{REPO}/payments-api/override-settings").json()
    assert own == {
        "type": "repository_inheritance_state",
        "override_settings": {"branching_model": True, "default_merge_strategy": False},
    }
    assert not tiny_sim.get(f"{REPO}/ledger/override-settings").json()["override_settings"]["branching_model"]


def test_deploy_keys(tiny_sim) -> None:
    keys = tiny_sim.get(f"{REPO}/ledger/deploy-keys").json()["values"]
    assert [(k["type"], k["label"], k["last_used"]) for k in keys] == [("deploy_key", "old-backup", None)]
    assert keys[0]["owner"]["display_name"] == "Former user" and keys[0]["added_on"] == keys[0]["created_on"]
    project = tiny_sim.get("/2.0/workspaces/tiny-co/projects/PAY/deploy-keys").json()["values"]
    assert [(k["type"], k["label"], k["created_by"]["display_name"]) for k in project] == [
        ("project_deploy_key", "pay-ci", "Cleo Lead")
    ]
    assert project[0]["project"]["key"] == "PAY"


def test_two_step_verification_only_when_asked(tiny_sim) -> None:
    asked = {"fields": "+values.user.has_2fa_enabled", "pagelen": 100}
    for path in ("members", "permissions"):
        plain = tiny_sim.get(f"/2.0/workspaces/tiny-co/{path}", params={"pagelen": 100}).json()["values"]
        assert all("has_2fa_enabled" not in m["user"] for m in plain)
        shown = tiny_sim.get(f"/2.0/workspaces/tiny-co/{path}", params=asked).json()["values"]
        tfa = {m["user"]["display_name"]: m["user"]["has_2fa_enabled"] for m in shown}
        assert tfa["Carl Contractor"] is False and tfa["Ana Ruiz"] is True
    # Administered from admin.atlassian.com: Bitbucket does not say.
    labs = tiny_sim.get("/2.0/workspaces/tiny-labs/members", params=asked).json()["values"]
    assert {m["user"]["has_2fa_enabled"] for m in labs} == {None}


def test_permissions_may_ignore_the_2fa_field(make_sim) -> None:
    sim = make_sim()
    sim.org.shapes = type(sim.org.shapes)(members_only_2fa=True)
    asked = {"fields": "+values.user.has_2fa_enabled"}
    assert (
        "has_2fa_enabled"
        not in sim.get("/2.0/workspaces/tiny-co/permissions", params=asked).json()["values"][0]["user"]
    )
    assert (
        "has_2fa_enabled"
        in sim.get("/2.0/workspaces/tiny-co/members", params=asked).json()["values"][0]["user"]
    )


def test_admin_reads_need_admin_scopes_and_admin_rights(make_sim) -> None:
    sim = make_sim()
    reads = {"read:repository:bitbucket", "read:workspace:bitbucket", "read:project:bitbucket"}
    sim.simulator.credentials.add_api_token("ro@tiny.example", "ro-token", sim.org.operator_uuid, reads)
    sim.session.auth = ("ro@tiny.example", "ro-token")
    refused = sim.get(f"{REPO}/payments-api/branch-restrictions")
    assert refused.status_code == 403
    assert refused.json()["error"]["detail"]["required"] == ["admin:repository:bitbucket"]
    assert sim.get(f"{REPO}/payments-api/deploy-keys").status_code == 403
    assert sim.get("/2.0/workspaces/tiny-co/projects/PAY/deploy-keys").status_code == 403
    # The branching model is a read.
    assert sim.get(f"{REPO}/payments-api/effective-branching-model").status_code == 200
    # A member who is not the repository's admin: 403 (the spec's "does not have admin access").
    ana = sim.user("ana")
    sim.simulator.credentials.add_api_token(ana.email, "ana-token", ana.uuid)
    sim.session.auth = (ana.email, "ana-token")
    assert sim.get(f"{REPO}/runbooks/branch-restrictions").status_code in (403, 404)
    assert sim.get(f"{REPO}/payments-api/override-settings").status_code == 200  # ana: admin through PAY


def test_a_deleted_repository_answers_404(make_sim) -> None:
    sim = make_sim()
    uuid = sim.org.workspaces["tiny-co"].repositories["ledger"].uuid
    del sim.org.workspaces["tiny-co"].repositories["ledger"]
    sim.org.touch()
    assert sim.get(f"{REPO}/{quote(uuid)}/branch-restrictions").status_code == 404


def test_organisation_file_errors_name_the_entry() -> None:
    base = {
        "users": [{"key": "a"}],
        "workspaces": [{"slug": "w", "projects": [{"key": "P", "repositories": []}]}],
    }
    bad = {"kind": "force", "pattern": "main", "users": ["a"]}
    base["workspaces"][0]["projects"][0]["repositories"] = [{"slug": "r", "branch_restrictions": [bad]}]
    with pytest.raises(OrganisationFileError, match=r"branch_restrictions\[0\].*push and restrict_merges"):
        build_organisation(base)
    base["workspaces"][0]["projects"][0]["repositories"] = [
        {"slug": "r", "branch_restrictions": [{"kind": "push"}]}
    ]
    with pytest.raises(OrganisationFileError, match="either `pattern`"):
        build_organisation(base)


@pytest.mark.parametrize("name", ["demo"])
def test_generated_companies_have_realistic_change_control(name: str) -> None:
    org = load_organisation(name)
    repos = [(ws, r) for ws in org.workspaces.values() for r in ws.repositories.values()]
    pushed = sum(any(x.kind == "push" for x in r.branch_restrictions) for _, r in repos)
    assert 0.6 * len(repos) < pushed < 0.95 * len(repos)  # most production branches restricted, some not
    exempt = sum(any(x.users for x in r.branch_restrictions) for _, r in repos)
    assert 0 < exempt < 0.3 * len(repos)
    enforced = sum(any(x.kind == "enforce_merge_checks" for x in r.branch_restrictions) for _, r in repos)
    assert 0 < enforced < len(repos)
    keys = [k for _, r in repos for k in r.deploy_keys]
    assert keys and any(k.last_used is None or k.last_used < org.now - timedelta(days=180) for k in keys)
    no_2fa = [u for u in org.users.values() if u.has_2fa_enabled is False]
    assert 0 < len(no_2fa) < 0.1 * len(org.users)
    assert any(ws.projects[r.project_key].branch_restrictions for ws, r in repos)


def test_rules_change_over_time() -> None:
    org = load_organisation("demo")

    def rules() -> set[tuple]:
        return {
            (r.uuid, x.id, x.kind, tuple(x.users), tuple(x.groups))
            for ws in org.workspaces.values()
            for r in ws.repositories.values()
            for x in r.branch_restrictions
        }

    before = rules()
    advance(org, days=5)
    assert rules() != before
