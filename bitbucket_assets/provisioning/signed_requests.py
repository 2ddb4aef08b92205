"""An approver's signature over a request: the text that is signed, and the check that it proves the
approval.

The text holds everything that decides the change (request id, workspace, group, user, action, expiry,
approval reference, `allow_protected`, approval time), one `name: value` line each with the value in JSON, so
a value can never forge a line. It is signed with `ssh-keygen -Y sign` under the approval namespace
(`signing.py`) and checked against the approver policy's `allowed_signers` as of the approval time, so a key
retired later (its `valid-before`) still proves what it signed while it was good. The approver is the signer's
principal: an `approved_by` naming someone else is refused. `bitbucket-access requests sign` prints this text
and attaches the signature, so nobody writes the canonical form by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import signing
from .approvals import ApproverPolicy, People

HEADER = "bitbucket-access approval v1"
SIGNED_FIELDS = (
    "request_id",
    "workspace_slug",
    "group_slug",
    "user_id",
    "action",
    "expires_at",
    "approval_ref",
    "allow_protected",
    "approved_at",
)


def timestamp_text(value: datetime | None) -> str | None:
    """A time as the signed text writes it: UTC, ISO 8601, `Z` (microseconds only when there are any)."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def approval_text(request: dict) -> bytes:
    """The canonical text an approver signs for `request` (a row of `provisioning.access_requests`)."""
    lines = [HEADER]
    for name in SIGNED_FIELDS:
        value = request.get(name)
        if name in ("expires_at", "approved_at"):
            value = timestamp_text(value)
        elif name == "allow_protected":
            value = bool(value)
        elif isinstance(value, str):
            value = value.strip() or None
        lines.append(f"{name}: {json.dumps(value, ensure_ascii=False)}")
    return ("\n".join(lines) + "\n").encode()


def sign_request(request: dict, private_key: str | Path) -> str:
    """The armored signature of `request`'s text with `private_key` (or a public key whose private half an
    ssh-agent holds)."""
    return signing.sign(approval_text(request), private_key, signing.NAMESPACES["approval"])


@dataclass(frozen=True)
class SignatureCheck:
    problem: str | None = None  # why the request's approval is not proven; None: proven or not needed
    signer: signing.Signer | None = None  # who signed, when a signature was checked


def check_request_signature(
    request: dict, policy: ApproverPolicy, protected: Iterable[str], people: People
) -> SignatureCheck:
    """Check the approval signature a request carries, and that one is there where the policy requires it.
    Without a policy nothing can be checked (and every surface says that no policy is set)."""
    if not policy.configured:
        return SignatureCheck()
    signature = (request.get("approval_signature") or "").strip()
    if not signature:
        if policy.signature_required(request["group_slug"], protected):
            where = (
                "every request (require_signatures: always)"
                if policy.require_signatures == "always"
                else f"changes to protected group {request['group_slug']!r}"
            )
            return SignatureCheck(
                f"unsigned: the approver policy requires the approver's signature for {where}; the approver "
                "signs with `bitbucket-access requests sign`"
            )
        return SignatureCheck()
    if request.get("approved_at") is None:
        return SignatureCheck("signed, but the approval has no time (approved_at is empty)")
    try:
        signer = policy.signer(approval_text(request), signature, "approval", at=request["approved_at"])
    except signing.SignatureError as exc:
        return SignatureCheck(f"approval signature refused: {exc}")
    approver = request.get("approved_by")
    if approver and not people.same(approver, signer.principal):
        return SignatureCheck(
            f"approved_by names {approver!r}, but the approval is signed by {signer.principal!r} "
            f"({signer.fingerprint}): the approver is the signer"
        )
    return SignatureCheck(signer=signer)
