"""Who may approve: invisible characters, unlisted approvers, conflicting requests (protected groups and
signatures: test_signed_approvals.py)."""

from __future__ import annotations

import pytest

from bitbucket_assets.provisioning.approvals import ApproverPolicy, ApproverPolicyError, normalise_identity
from tests.support.provisioning import add_request, log, policy_file, provision, statuses, writes


def test_identities_are_compared_after_normalisation() -> None:
    assert normalise_identity("ALICE\u200b@x.example ") == "alice@x.example"
    assert normalise_identity("ａｌｉｃｅ@x\u202e.example") == "alice@x.example"  # fullwidth, bidi override
    policy = ApproverPolicy()
    assert policy.same_person("alice\u200b@x", "Alice@X") and not policy.same_person("", "")


def test_an_invisible_character_does_not_make_a_second_person(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(
        warehouse,
        "r1",
        sim.user("finn"),
        "leads",
        requested_by="ana@tiny.example",
        approved_by="ana\u200b@tiny.example",
    )
    provision(sim, warehouse)
    status, reason = statuses(warehouse)["r1"]
    assert status == "rejected" and reason.startswith("approved by the requester") and writes(sim) == []


def test_only_listed_approvers_and_group_members_may_approve(policy, warehouse) -> None:
    sim, approvals, _ = policy
    add_request(warehouse, "stranger", sim.user("finn"), "developers", approved_by="mallory@evil.example")
    add_request(warehouse, "listed", sim.user("zoe"), "developers", approved_by="OLGA@tiny.example")
    add_request(
        warehouse, "by-group", sim.user("carl"), "developers", approved_by=sim.user("cleo").account_id
    )
    add_request(warehouse, "by-email", sim.user("lena"), "leads", approved_by="cleo.lead@tiny.example")
    provision(sim, warehouse, approvals=approvals)
    got = statuses(warehouse)
    assert got["stranger"] == (
        "rejected",
        "'mallory@evil.example' may not approve requests for workspace 'tiny-co' (approver policy "
        f"{approvals.source})",
    )
    assert {k: got[k][0] for k in ("listed", "by-group", "by-email")} == dict.fromkeys(
        ("listed", "by-group", "by-email"), "applied"
    )


def test_an_add_and_a_remove_of_the_same_membership_are_both_refused(make_sim, warehouse) -> None:
    sim = make_sim()
    finn = sim.user("finn")
    add_request(warehouse, "add", finn, "leads")
    add_request(warehouse, "remove", finn.account_id, "leads", action="remove")  # same person, by account id
    add_request(warehouse, "other", sim.user("zoe"), "leads")
    provision(sim, warehouse, dry_run=True)
    dry = {r[0]: (r[2], r[4]) for r in log(warehouse)}
    assert dry["add"][0] == "rejected" and "conflicts with request(s) remove" in dry["add"][1]
    assert dry["remove"][0] == "rejected" and "conflicts with request(s) add" in dry["remove"][1]
    assert dry["other"][0] == "planned"
    provision(sim, warehouse)
    assert {k: v[0] for k, v in statuses(warehouse).items()} == {
        "add": "rejected",
        "remove": "rejected",
        "other": "applied",
    }
    assert len(writes(sim)) == 1


def test_a_malformed_policy_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ApproverPolicyError, match=r"approvers\.\*\.people: expected a list"):
        ApproverPolicy.load(policy_file(tmp_path, 'approvers: {"*": {people: olga}}\n'))
    with pytest.raises(ApproverPolicyError, match="unknown key"):
        ApproverPolicy.load(policy_file(tmp_path, "approver: []\n"))
    with pytest.raises(ApproverPolicyError, match="cannot be read"):
        ApproverPolicy.load(str(tmp_path / "missing.yaml"))
