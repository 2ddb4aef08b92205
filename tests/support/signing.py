"""Keys the tests generate, approver policies that list them, and requests signed with them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import duckdb

from bitbucket_assets.provisioning.approvals import ApproverPolicy
from bitbucket_assets.provisioning.signed_requests import sign_request
from bitbucket_assets.signing import public_key
from tests.support.provisioning import add_request


def keypair(directory: Path, name: str) -> Path:
    """A new ed25519 key without a passphrase (its public half beside it, NAME.pub)."""
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def signed_policy(
    directory: Path, sim, signers: dict[str, Path], extra: str = "", options: dict[str, str] | None = None
) -> tuple[ApproverPolicy, str]:
    """A policy on the `tiny` organisation: olga approves everywhere, the CISO approves protected groups, and
    `signers` (principal -> key) are its allowed signers (`options`: principal -> allowed_signers options).
    Returns the loaded policy and its file."""
    options = options or {}
    lines = "\n".join(
        f"  {who} {options[who] + ' ' if who in options else ''}{public_key(key)}"
        for who, key in signers.items()
    )
    path = directory / "approvers.yaml"
    path.write_text(
        f"""identities:
  olga@tiny.example: "{sim.user("olga").account_id}"
  cleo@tiny.example: "{sim.user("cleo").account_id}"
  finn@tiny.example: "{sim.user("finn").account_id}"
  ciso@tiny.example: "557058:c150c150-0000-4000-8000-00000000c150"
approvers:
  "*": {{people: [olga@tiny.example, finn@tiny.example], bitbucket_group: leads}}
protected_approvers:
  "*": {{people: [ciso@tiny.example, olga@tiny.example]}}
allowed_signers: |
{lines}
{extra}""",
        encoding="utf-8",
    )
    path.chmod(0o644)
    return ApproverPolicy.load(str(path)), str(path)


def add_signed_request(db: str, request_id: str, user, group: str, key: Path, **overrides) -> dict:
    """`add_request` with the approver's signature over the row as inserted (the approver signs what the
    warehouse then holds); `tamper` fields are changed after signing."""
    tamper = overrides.pop("tamper", {})
    add_request(db, request_id, user, group, **overrides)
    with duckdb.connect(db) as con:
        cursor = con.execute("select * from provisioning.access_requests where request_id = ?", [request_id])
        row = dict(zip([d[0] for d in cursor.description], cursor.fetchone(), strict=True))
        signature = sign_request(row, key)
        con.execute(
            "update provisioning.access_requests set approval_signature = ? where request_id = ?",
            [signature, request_id],
        )
        for name, value in tamper.items():
            con.execute(
                f"update provisioning.access_requests set {name} = ? where request_id = ?",
                [value, request_id],
            )
    return row
