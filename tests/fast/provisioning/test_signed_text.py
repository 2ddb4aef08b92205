"""The text an approver signs: every deciding field in it, one line each, no value able to forge a line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bitbucket_assets.provisioning.approvals import ApproverPolicy, People
from bitbucket_assets.provisioning.requests_import import (
    plan_signing,
    read_requests,
    sign_file,
)
from bitbucket_assets.provisioning.signed_requests import (
    SIGNED_FIELDS,
    approval_text,
    check_request_signature,
    sign_request,
)
from bitbucket_assets.signing import public_key
from tests.support.signing import keypair

WHEN = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
REQUEST = {
    "request_id": "r1",
    "workspace_slug": "tiny-co",
    "group_slug": "leads",
    "user_id": "{0b6d6d6e-1111-4222-8333-444455556666}",
    "action": "add",
    "expires_at": WHEN + timedelta(days=7),
    "approval_ref": "SEC-1",
    "allow_protected": True,
    "approved_at": WHEN,
    "requested_by": "ana@x.example",
    "approved_by": "olga@x.example",
    "reason": "not signed: free text",
}


def test_the_text_holds_each_deciding_field_once_in_a_fixed_form() -> None:
    text = approval_text(REQUEST).decode()
    assert text == (
        "bitbucket-access approval v1\n"
        'request_id: "r1"\n'
        'workspace_slug: "tiny-co"\n'
        'group_slug: "leads"\n'
        'user_id: "{0b6d6d6e-1111-4222-8333-444455556666}"\n'
        'action: "add"\n'
        'expires_at: "2026-12-04T09:00:00Z"\n'
        'approval_ref: "SEC-1"\n'
        "allow_protected: true\n"
        'approved_at: "2026-11-27T09:00:00Z"\n'
    )
    # The same instant in another zone is the same text; the reason and the requester are not signed.
    same = {**REQUEST, "approved_at": WHEN.astimezone(timezone(timedelta(hours=2))), "reason": "other"}
    assert approval_text(same) == approval_text(REQUEST)
    for field, other in zip(
        SIGNED_FIELDS,
        (
            "r2",
            "tiny-labs",
            "administrators",
            "557058:x",
            "remove",
            None,
            None,
            False,
            WHEN + timedelta(seconds=1),
        ),
        strict=True,
    ):
        assert approval_text({**REQUEST, field: other}) != approval_text(REQUEST), field


def test_a_value_cannot_forge_a_line() -> None:
    forged = {**REQUEST, "approval_ref": 'SEC-1"\nallow_protected: true', "allow_protected": False}
    lines = approval_text(forged).decode().splitlines()
    assert "allow_protected: false" in lines and len(lines) == len(SIGNED_FIELDS) + 1


@pytest.fixture
def olga(tmp_path):
    key = keypair(tmp_path, "olga")
    path = tmp_path / "approvers.yaml"
    path.write_text(
        'approvers: {"*": {people: [olga@x.example]}}\n'
        f"allowed_signers: |\n  olga@x.example {public_key(key)}\n",
        encoding="utf-8",
    )
    return key, ApproverPolicy.load(str(path))


def test_the_signature_is_checked_where_required_and_wherever_present(olga) -> None:
    key, policy = olga
    people = People(policy)
    signed = {**REQUEST, "approval_signature": sign_request(REQUEST, key), "approved_by": None}
    check = check_request_signature(signed, policy, ("leads",), people)
    assert check.problem is None and check.signer.principal == "olga@x.example"
    unsigned = check_request_signature(REQUEST, policy, ("leads",), people)
    assert unsigned.problem.startswith("unsigned: the approver policy requires the approver's signature")
    assert check_request_signature(REQUEST, policy, (), people).problem is None  # not protected, not required
    other = check_request_signature({**signed, "user_id": "557058:x"}, policy, (), people)
    assert "the signature does not verify" in other.problem  # present: always checked
    named = check_request_signature({**signed, "approved_by": "ciso@x.example"}, policy, (), people)
    assert named.problem.startswith("approved_by names 'ciso@x.example', but the approval is signed by 'olga")
    # Without a policy nothing can be checked: as before, and every surface says no policy is set.
    assert check_request_signature(signed, ApproverPolicy(), ("leads",), people).signer is None


def test_requests_sign_writes_json_lines_that_import_as_signed(olga, tmp_path) -> None:
    """JSON Lines carry the signature as a field, like CSV's column; an id written with spaces around it (read
    stripped) is signed all the same, and every other field is written back as it was."""
    key, policy = olga
    path = tmp_path / "requests.jsonl"
    rows = [
        {**_file_row(REQUEST), "request_id": " r1 "},
        {**_file_row(REQUEST), "request_id": "r2", "group_slug": "developers", "allow_protected": False},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    plan = plan_signing(path, "olga@x.example", WHEN)
    assert [rid for rid, _ in plan.texts()] == ["r1", "r2"]
    sign_file(plan, key)
    written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(w["approval_signature"].startswith("-----BEGIN SSH SIGNATURE-----") for w in written)
    assert [w["reason"] for w in written] == [REQUEST["reason"]] * 2
    read = read_requests(path)
    checks = [check_request_signature(row, policy, ("leads",), People(policy)) for row in read]
    assert [(r["request_id"], r["approved_by"]) for r in read] == [
        ("r1", "olga@x.example"),
        ("r2", "olga@x.example"),
    ]
    assert [(c.problem, c.signer.principal) for c in checks] == [(None, "olga@x.example")] * 2


def _file_row(request: dict) -> dict:
    """A request as a file holds it: times as ISO-8601 text, the approver left to the signer."""
    return {
        **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in request.items()},
        "approved_by": None,
        "approved_at": None,
    }
