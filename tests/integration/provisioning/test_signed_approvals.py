"""An approval counts only with proof that the approver gave it: signatures checked against the policy's keys.

Each attack of a hostile requester (a forged approver, someone else's key, a field changed after signing, a
signature made for another purpose, one person in two forms) changes no membership and says why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from bitbucket_assets.defs.access_requests.jobs import approved_pending
from bitbucket_assets.provisioning.approvals import ApproverPolicy
from bitbucket_assets.provisioning.engine import ProvisioningPolicy
from bitbucket_assets.provisioning.requests_import import (
    RequestImportError,
    import_requests,
    plan_signing,
    sign_file,
)
from bitbucket_assets.provisioning.signed_requests import approval_text
from bitbucket_assets.signing import NAMESPACES, sign
from tests.support.provisioning import NOW, REQUESTS_HEADER, add_request, log, provision, statuses, writes
from tests.support.signing import add_signed_request, keypair, signed_policy

PROTECTED = ProvisioningPolicy(protected_groups=("leads", "on-call"))


@pytest.fixture
def keys(tmp_path) -> dict:
    return {name: keypair(tmp_path, name) for name in ("olga", "ciso", "cleo", "finn", "mallory")}


def members(sim, group: str) -> set[str]:
    return {sim.org.users[u].nickname for u in sim.org.workspaces["tiny-co"].groups[group].members}


def test_a_protected_group_changes_only_with_a_protected_approvers_signature(
    make_sim, warehouse, tmp_path, keys
) -> None:
    sim = make_sim()
    approvals, _ = signed_policy(
        tmp_path, sim, {"olga@tiny.example": keys["olga"], "ciso@tiny.example": keys["ciso"]}
    )
    before = members(sim, "leads"), members(sim, "on-call")
    finn, zoe, carl, dev = (sim.user(n) for n in ("finn", "zoe", "carl", "dev"))
    protected = {"requested_by": "finn@tiny.example", "allow_protected": True}
    # A requester names a protected approver and signs nothing.
    add_request(warehouse, "forged", finn, "leads", approved_by="ciso@tiny.example", **protected)
    # ... signs with a key of their own.
    add_signed_request(
        warehouse, "own-key", finn, "on-call", keys["mallory"], approved_by="ciso@tiny.example", **protected
    )
    # ... replays olga's signature of another request under the CISO's name.
    add_signed_request(
        warehouse, "named-other", zoe, "leads", keys["olga"], approved_by="ciso@tiny.example", **protected
    )
    # ... takes a genuine signature for on-call and moves the request to leads.
    add_signed_request(
        warehouse, "moved", carl, "on-call", keys["olga"], **protected, tamper={"group_slug": "leads"}
    )
    # The CISO signs, but is a protected approver only, not an approver of the workspace.
    add_signed_request(warehouse, "ciso-only", dev, "leads", keys["ciso"], approved_by=None, **protected)
    # Olga is both: applied.
    add_signed_request(
        warehouse, "genuine", finn, "on-call", keys["olga"], approved_by="OLGA@tiny.example", **protected
    )
    provision(sim, warehouse, approvals=approvals, policy=PROTECTED)
    got = statuses(warehouse)
    assert got["forged"] == (
        "rejected",
        "unsigned: the approver policy requires the approver's signature for changes to protected group "
        "'leads'; the approver signs with `bitbucket-access requests sign`",
    )
    assert got["own-key"][0] == "rejected" and "is not in the allowed signers" in got["own-key"][1]
    assert got["named-other"][0] == "rejected" and got["named-other"][1].startswith(
        "approved_by names 'ciso@tiny.example', but the approval is signed by 'olga@tiny.example' (SHA256:"
    )
    assert (
        got["moved"][0] == "rejected"
        and "does not verify under namespace bitbucket-access-approval" in (got["moved"][1])
    )
    assert got["ciso-only"] == (
        "rejected",
        f"'ciso@tiny.example' may not approve requests for workspace 'tiny-co' (approver policy "
        f"{approvals.source})",
    )
    assert got["genuine"] == ("applied", None)
    assert [(w.method, w.path.rsplit("/", 3)[-3]) for w in writes(sim)] == [("PUT", "on-call")]
    assert members(sim, "leads") == before[0] and members(sim, "on-call") == before[1] | {"finn"}


def test_a_signed_approval_names_its_signer_in_the_log(make_sim, warehouse, tmp_path, keys) -> None:
    """A row inserted with SQL is data like any other: signed, with no approved_by, it is applied, and its
    approver is the signer; the sensor sees it waiting."""
    sim = make_sim()
    approvals, _ = signed_policy(tmp_path, sim, {"olga@tiny.example": keys["olga"]})
    add_signed_request(warehouse, "sql", sim.user("finn"), "leads", keys["olga"], approved_by=None)
    assert approved_pending(warehouse) == ["sql"]
    provision(sim, warehouse, approvals=approvals)
    with duckdb.connect(warehouse, read_only=True) as con:
        request = con.execute("select status, approved_by from provisioning.access_requests").fetchone()
        logged = con.execute("select outcome, approved_by from provisioning.provisioning_log").fetchone()
    assert request == ("applied", "olga@tiny.example") and logged == ("applied", "olga@tiny.example")


def test_every_request_needs_a_signature_when_the_policy_says_always(
    make_sim, warehouse, tmp_path, keys
) -> None:
    sim = make_sim()
    approvals, _ = signed_policy(tmp_path, sim, {"olga@tiny.example": keys["olga"]})
    add_request(warehouse, "unsigned", sim.user("finn"), "developers")
    provision(sim, warehouse, approvals=approvals)
    assert statuses(warehouse)["unsigned"] == ("applied", None)  # an ordinary group: as before
    always, _ = signed_policy(
        tmp_path, sim, {"olga@tiny.example": keys["olga"]}, "require_signatures: always\n"
    )
    add_request(warehouse, "unsigned-2", sim.user("zoe"), "developers")
    add_signed_request(warehouse, "signed", sim.user("carl"), "developers", keys["olga"])
    provision(sim, warehouse, approvals=always)
    got = statuses(warehouse)
    assert (
        got["unsigned-2"][0] == "rejected"
        and "every request (require_signatures: always)" in got["unsigned-2"][1]
    )
    assert got["signed"] == ("applied", None) and "zoe" not in members(sim, "developers")


def test_a_signature_made_for_a_review_never_passes_as_an_approval(
    make_sim, warehouse, tmp_path, keys
) -> None:
    sim = make_sim()
    approvals, _ = signed_policy(tmp_path, sim, {"olga@tiny.example": keys["olga"]})
    row = add_signed_request(warehouse, "r1", sim.user("finn"), "leads", keys["olga"])
    review_signature = sign(approval_text(row), keys["olga"], NAMESPACES["review"])
    with duckdb.connect(warehouse) as con:
        con.execute("update provisioning.access_requests set approval_signature = ?", [review_signature])
    provision(sim, warehouse, approvals=approvals, policy=PROTECTED)
    status, reason = statuses(warehouse)["r1"]
    assert status == "rejected" and "does not verify under namespace bitbucket-access-approval" in reason
    assert writes(sim) == []


def test_nobody_approves_for_themselves_in_any_form(make_sim, warehouse, tmp_path, keys) -> None:
    sim = make_sim()
    finn = sim.user("finn")
    # Requester and approver: one person as {uuid} and as account id (no policy).
    add_request(
        warehouse, "two-forms", sim.user("zoe"), "leads", requested_by=finn.uuid, approved_by=finn.account_id
    )
    # The approver is the user whose access changes (no policy).
    add_request(
        warehouse,
        "own-access",
        finn.uuid,
        "developers",
        requested_by="ana@tiny.example",
        approved_by=finn.account_id,
    )
    provision(sim, warehouse)
    got = statuses(warehouse)
    assert got["two-forms"] == (
        "rejected",
        f"approved by the requester ({finn.account_id}): a second person must approve",
    )
    assert got["own-access"] == (
        "rejected",
        f"approved by the user whose access it changes ({finn.account_id}): nobody approves their own access",
    )
    # With a policy, finn is an approver, signs with his own key, and names himself by email: still refused.
    approvals, _ = signed_policy(tmp_path, sim, {"finn@tiny.example": keys["finn"]})
    add_signed_request(
        warehouse,
        "signed-own",
        finn.account_id,
        "leads",
        keys["finn"],
        approved_by=None,
        allow_protected=True,
    )
    provision(sim, warehouse, approvals=approvals, policy=PROTECTED)
    assert statuses(warehouse)["signed-own"][1] == (
        "approved by the user whose access it changes (finn@tiny.example): nobody approves their own access"
    )
    assert writes(sim) == [] and "finn" not in members(sim, "leads") | members(sim, "developers")


def test_a_key_proves_what_it_signed_while_it_was_valid(make_sim, warehouse, tmp_path, keys) -> None:
    """`valid-before`: a key retired yesterday still proves approvals signed before; a signature it makes now
    does not. Removing a key stops its approver: their pending requests are rejected at the next run."""
    sim = make_sim()
    retired = (NOW - timedelta(days=1)).astimezone(UTC)
    signers = {"olga@tiny.example": keys["olga"], "cleo@tiny.example": keys["cleo"]}
    approvals, _ = signed_policy(
        tmp_path, sim, signers, options={"olga@tiny.example": f'valid-before="{retired:%Y%m%d%H%M%SZ}"'}
    )
    old = {"approved_at": NOW - timedelta(days=2), "allow_protected": True}
    add_signed_request(warehouse, "before-retirement", sim.user("finn"), "leads", keys["olga"], **old)
    add_signed_request(
        warehouse, "after-retirement", sim.user("zoe"), "leads", keys["olga"], allow_protected=True
    )
    provision(sim, warehouse, approvals=approvals, policy=PROTECTED)
    got = statuses(warehouse)
    assert got["before-retirement"] == ("applied", None)
    assert got["after-retirement"][0] == "rejected" and "or was not valid then" in got["after-retirement"][1]
    # Cleo signs a request; her key is then removed from the policy before it runs.
    add_signed_request(
        warehouse,
        "cleo-pending",
        sim.user("carl"),
        "leads",
        keys["cleo"],
        approved_by="cleo@tiny.example",
        allow_protected=True,
    )
    without_cleo, _ = signed_policy(tmp_path, sim, {"olga@tiny.example": keys["olga"]})
    provision(sim, warehouse, approvals=without_cleo, policy=PROTECTED)
    status, reason = statuses(warehouse)["cleo-pending"]
    assert status == "rejected" and "is not in the allowed signers" in reason
    assert members(sim, "leads") == {"cleo", "finn"}


def test_requests_sign_then_import_fills_the_approver_and_refuses_a_changed_file(
    make_sim, warehouse, tmp_path, keys
) -> None:
    sim = make_sim()
    approvals, _ = signed_policy(tmp_path, sim, {"olga@tiny.example": keys["olga"]})
    path = tmp_path / "requests.csv"
    finn = sim.user("finn").uuid
    path.write_text(
        REQUESTS_HEADER.strip() + ",allow_protected\n"
        f's1,tiny-co,leads,{finn},add,ana@tiny.example,,,2099-01-01T00:00:00Z,"on call, one week",true\n'
        f"s2,tiny-co,developers,{finn},add,ana@tiny.example,,,,,false\n",
        encoding="utf-8",
    )
    plan = plan_signing(path, "olga@tiny.example", datetime.now(UTC))
    assert [rid for rid, _ in plan.texts()] == ["s1", "s2"]
    assert (
        'group_slug: "leads"' in plan.texts()[0][1]
        and 'expires_at: "2099-01-01T00:00:00Z"' in plan.texts()[0][1]
    )
    sign_file(plan, keys["olga"])
    changed = tmp_path / "changed.csv"
    changed.write_text(path.read_text(encoding="utf-8").replace("s2,tiny-co,developers", "s2,tiny-co,leads"))
    with duckdb.connect(warehouse) as con, pytest.raises(RequestImportError) as refused:
        import_requests(con, changed, approvals, ("leads",))
    s2_line = changed.read_text(encoding="utf-8").split("\ns2,")[0].count("\n") + 2  # signatures span lines
    assert len(refused.value.problems) == 1 and refused.value.problems[0].startswith(
        f"line {s2_line}: approval_signature: approval signature refused: the signature does not verify"
    )
    with duckdb.connect(warehouse) as con:
        assert import_requests(con, path, approvals, ("leads",)) == 2
        approvers = con.execute("select approved_by from provisioning.access_requests").fetchall()
    assert approvers == [("olga@tiny.example",)] * 2
    provision(sim, warehouse, approvals=approvals, policy=PROTECTED)
    assert {k: v[0] for k, v in statuses(warehouse).items()} == {"s1": "applied", "s2": "applied"}
    assert [r[2] for r in log(warehouse)] == ["applied", "applied"]


def test_an_unguarded_or_empty_policy_is_an_error(tmp_path) -> None:
    from bitbucket_assets.provisioning.approvals import ApproverPolicyError

    path = tmp_path / "approvers.yaml"
    path.write_text('approvers: {"*": {people: ["557058:x"]}}\n', encoding="utf-8")
    path.chmod(0o664)
    with pytest.raises(ApproverPolicyError, match=r"can be written by others \(mode 664\): chmod go-w"):
        ApproverPolicy.load(str(path))
    path.chmod(0o644)
    assert ApproverPolicy.load(str(path)).configured
    with pytest.raises(ApproverPolicyError, match="set but empty"):
        ApproverPolicy.load(" ")
