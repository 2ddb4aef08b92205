"""The provisioning job against the simulator: rules, idempotency, dry run, cap, expiry, refusals."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from bitbucket_assets.provisioning.engine import ChangeCapExceeded, ProvisioningPolicy
from bitbucket_simulator import SIM_API_TOKEN, Faults
from tests.support.provisioning import NOW, add_request, expire, log, provision, statuses, writes


def members(sim, group: str, ws: str = "tiny-co") -> set[str]:
    return {sim.org.users[u].nickname for u in sim.org.workspaces[ws].groups[group].members}


def test_add_and_remove_are_applied_and_logged(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    add_request(warehouse, "r2", sim.user("lena"), "developers", action="remove")
    p = provision(sim, warehouse)
    assert "finn" in members(sim, "leads") and "lena" not in members(sim, "developers")
    assert statuses(warehouse) == {"r1": ("applied", None), "r2": ("applied", None)}
    assert [(r[0], r[1], r[2], r[3]) for r in log(warehouse)] == [
        ("r1", "add", "applied", 200),
        ("r2", "remove", "applied", 204),
    ]
    with duckdb.connect(warehouse, read_only=True) as con:
        row = con.execute(
            "select requested_by, approved_by, run_id, user_uuid from provisioning.provisioning_log"
        ).fetchone()
    assert row == ("ana@tiny.example", "olga@tiny.example", p.run_id, sim.user("finn").uuid)


def test_second_run_makes_no_mutating_call(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    provision(sim, warehouse)
    before = len(writes(sim))
    provision(sim, warehouse)
    assert before == 1 and len(writes(sim)) == 1


def test_already_member_and_not_member_are_no_change(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("ana"), "developers")  # already in
    add_request(warehouse, "r2", sim.user("finn").account_id, "developers", action="remove")  # never was
    provision(sim, warehouse)
    assert statuses(warehouse)["r1"][0] == "no_change" and "already a member" in statuses(warehouse)["r1"][1]
    assert statuses(warehouse)["r2"][0] == "no_change"
    assert writes(sim) == []


@pytest.mark.parametrize(
    ("overrides", "group", "reason"),
    [
        ({"approved_by": None}, "leads", "no approver"),
        ({"approved_by": "ana@tiny.example"}, "leads", "approved by the requester"),
        ({"approved_at": NOW - timedelta(days=45)}, "leads", "approval is 45 days old; the limit is 30 days"),
        ({"approved_at": None}, "leads", "approval has no time"),
        ({}, "administrators", "group 'administrators' is protected"),
        ({}, "no-such-group", "group 'no-such-group' is not in workspace 'tiny-co' (latest snapshot)"),
        (
            {"user_id": "{00000000-0000-4000-8000-00000000beef}"},
            "leads",
            "is not a member of workspace 'tiny-co'",
        ),
        ({"action": "grant"}, "leads", "action 'grant' is not one of add, remove"),
        ({"expires_at": NOW - timedelta(minutes=1)}, "leads", "expires_at is already past"),
    ],
)
def test_validation_rules_reject_with_a_reason(make_sim, warehouse, overrides, group, reason) -> None:
    sim = make_sim()
    if group == "administrators":
        sim.org.workspaces["tiny-co"].groups["administrators"] = type(
            sim.org.workspaces["tiny-co"].groups["leads"]
        )("administrators", "Administrators", [])
    add_request(warehouse, "r1", sim.user("finn"), group, **overrides)
    provision(sim, warehouse)
    status, why = statuses(warehouse)["r1"]
    assert status == "rejected" and reason in why
    assert writes(sim) == []
    assert log(warehouse)[0][2] == "rejected"


def test_protected_group_when_explicitly_allowed(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads", allow_protected=True)
    provision(sim, warehouse, policy=ProvisioningPolicy(protected_groups=("leads",)))
    assert statuses(warehouse)["r1"][0] == "applied"


def test_group_gone_live_is_rejected(make_sim, warehouse) -> None:
    sim = make_sim()
    del sim.org.workspaces["tiny-co"].groups["leads"]  # deleted since the snapshot
    sim.org.touch()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    provision(sim, warehouse)
    assert statuses(warehouse)["r1"] == ("rejected", "group 'leads' not found in workspace 'tiny-co' (live)")


def test_unapproved_requests_wait(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads", approved_by=None, approved_at=None)
    provision(sim, warehouse)
    assert statuses(warehouse)["r1"] == ("pending", None) and log(warehouse) == []


def test_dry_run_calls_nothing_and_changes_nothing(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    add_request(warehouse, "r2", sim.user("finn"), "leads", approved_by="ana@tiny.example")
    provision(sim, warehouse, dry_run=True)
    assert sim.simulator.request_log == []
    assert statuses(warehouse) == {"r1": ("pending", None), "r2": ("pending", None)}
    assert [(r[0], r[2], r[5]) for r in log(warehouse)] == [("r2", "rejected", True), ("r1", "planned", True)]


def test_cap_aborts_before_any_call(make_sim, warehouse) -> None:
    sim = make_sim()
    for i, who in enumerate(("finn", "zoe", "carl")):
        add_request(warehouse, f"r{i}", sim.user(who), "leads")
    with pytest.raises(ChangeCapExceeded, match="3 approved requests exceed the cap of 2"):
        provision(sim, warehouse, policy=ProvisioningPolicy(max_changes_per_run=2))
    assert sim.simulator.request_log == [] and {s for s, _ in statuses(warehouse).values()} == {"pending"}


def test_jit_expiry_removes_exactly_the_expired(make_sim, warehouse) -> None:
    sim = make_sim()
    finn, zoe, carl = sim.user("finn"), sim.user("zoe"), sim.user("carl")
    add_request(warehouse, "jit-finn", finn, "leads", expires_at=NOW + timedelta(hours=2))
    add_request(warehouse, "jit-zoe", zoe, "leads", expires_at=NOW + timedelta(hours=2))
    add_request(warehouse, "zoe-permanent", zoe, "leads")  # zoe keeps leads through another request
    add_request(warehouse, "jit-carl-later", carl, "leads", expires_at=NOW + timedelta(days=3))
    provision(sim, warehouse)
    assert {"finn", "zoe", "carl"} <= members(sim, "leads")
    expire(sim, warehouse, now=NOW + timedelta(hours=3))
    assert "finn" not in members(sim, "leads") and {"zoe", "carl"} <= members(sim, "leads")
    st = statuses(warehouse)
    assert st["jit-finn"] == ("expired", None)
    assert st["jit-zoe"][0] == "expired" and "zoe-permanent" in st["jit-zoe"][1]
    # zoe was in already
    assert st["jit-carl-later"][0] == "applied" and st["zoe-permanent"][0] == "no_change"
    expiries = [r for r in log(warehouse) if r[1] == "expire"]
    assert sorted((r[0], r[2], r[3]) for r in expiries) == [
        ("jit-finn", "expired", 204),
        ("jit-zoe", "expired", None),
    ]
    assert len([w for w in writes(sim) if w.method == "DELETE"]) == 1


def test_refusals_fail_one_request_and_the_rest_go_on(make_sim, warehouse) -> None:
    sim = make_sim()
    add_request(warehouse, "labs", sim.user("ana"), "researchers", workspace_slug="tiny-labs")
    add_request(warehouse, "co", sim.user("finn"), "leads")
    with duckdb.connect(warehouse) as con:  # tiny-labs is in the snapshot with its researchers group
        assert con.execute(
            "select count(*) from marts.dim_groups where group_slug = 'researchers'"
        ).fetchone() == (1,)
    provision(sim, warehouse)
    st = statuses(warehouse)
    assert st["labs"][0] == "failed" and "managed from admin.atlassian.com" in st["labs"][1]
    assert st["co"] == ("applied", None)
    assert [r[3] for r in log(warehouse) if r[0] == "labs"] == [403]


def test_missing_write_scope_fails_with_a_reason(make_sim, warehouse) -> None:
    sim = make_sim()
    reads = {"read:user:bitbucket", "read:workspace:bitbucket", "read:permission:bitbucket"}
    sim.simulator.credentials.add_api_token(sim.email, "read-only", sim.org.operator_uuid, reads)
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    provision(sim, warehouse, token="read-only")
    status, why = statuses(warehouse)["r1"]
    assert status == "failed" and "lacks scopes" in why and "write:permission:bitbucket" in why


def test_server_errors_and_429_during_a_batch(make_sim, warehouse) -> None:
    sim = make_sim(faults=Faults(seed=4, error_rate=0.25, burst_rate=0.1, burst_length=2))
    people = ["finn", "zoe", "carl", "dev", "cleo", "filler-001", "filler-002", "filler-003"]
    for who in people:
        add_request(warehouse, who, sim.user(who), "on-call" if who != "zoe" else "leads")
    provision(sim, warehouse, max_retries=1)
    st = statuses(warehouse)
    failed = {k for k, (s, _) in st.items() if s == "failed"}
    applied = {k for k, (s, _) in st.items() if s == "applied"}
    assert failed and applied and failed | applied == set(people)
    assert all(("kept failing" in st[k][1] or "rate limited" in st[k][1]) for k in failed)
    for who in applied:  # what was applied really happened, once
        group = "on-call" if who != "zoe" else "leads"
        assert who in members(sim, group)


def test_secrets_never_reach_the_log(make_sim, warehouse, caplog) -> None:
    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    provision(sim, warehouse, token="ATATT3xWrongTokenForProvisioning")
    st = statuses(warehouse)["r1"]
    assert st[0] == "failed" and "credential was refused" in st[1]
    text = str(log(warehouse)) + caplog.text + str(st)
    assert "ATATT3xWrongTokenForProvisioning" not in text and SIM_API_TOKEN not in text
    with open(warehouse, "rb") as db_file:
        assert b"ATATT3xWrongTokenForProvisioning" not in db_file.read()


def test_a_credential_kind_that_cannot_write_fails_with_a_reason(make_sim, warehouse) -> None:
    from bitbucket_assets.client import BitbucketClient, Credentials
    from bitbucket_assets.provisioning.engine import Provisioner
    from bitbucket_simulator import SIM_ACCESS_TOKEN

    sim = make_sim()
    add_request(warehouse, "r1", sim.user("finn"), "leads")
    client = BitbucketClient(Credentials.access_token(SIM_ACCESS_TOKEN), sim.url, requests_per_hour=1e7)
    with duckdb.connect(warehouse) as con:
        Provisioner(client, con).provision()
    status, why = statuses(warehouse)["r1"]
    assert status == "failed" and "Access tokens cannot" in why
    assert "finn" not in members(sim, "leads")
