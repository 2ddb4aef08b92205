"""OpenSSH signatures through ssh-keygen: who signed, under which namespace, with a key valid at the time."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bitbucket_assets.signing import NAMESPACES, SignatureError, public_key, sign, signer, verify

APPROVAL, REVIEW = NAMESPACES["approval"], NAMESPACES["review"]


def keypair(directory: Path, name: str) -> Path:
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


@pytest.fixture
def keys(tmp_path) -> dict[str, Path]:
    return {name: keypair(tmp_path, name) for name in ("olga", "mallory", "retired")}


def allowed(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "allowed_signers"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


def test_the_signer_is_the_principal_of_the_key_and_nothing_else_passes(tmp_path, keys) -> None:
    signers = allowed(tmp_path, [f"olga@tiny.example {public_key(keys['olga'])}"])
    data = b"request r1: add finn to leads in tiny-co"
    signature = sign(data, keys["olga"], APPROVAL)
    made = signer(data, signature, signers, APPROVAL)
    assert made.principal == "olga@tiny.example" and made.fingerprint.startswith("SHA256:")
    assert verify(data, signature, signers, APPROVAL, "olga@tiny.example") == made
    # Another text, another namespace, another claimed signer, a key nobody allowed: each refused, and said
    # why.
    with pytest.raises(SignatureError, match="does not verify"):
        signer(data + b" and zoe", signature, signers, APPROVAL)
    with pytest.raises(SignatureError, match=r"does not verify under namespace bitbucket-access-review"):
        signer(data, signature, signers, REVIEW)
    with pytest.raises(SignatureError, match=r"signed by 'olga@tiny\.example', not by 'ciso@tiny\.example'"):
        verify(data, signature, signers, APPROVAL, "ciso@tiny.example")
    with pytest.raises(SignatureError, match="not in the allowed signers"):
        signer(data, sign(data, keys["mallory"], APPROVAL), signers, APPROVAL)
    with pytest.raises(SignatureError, match="no SSH signature"):
        signer(data, "approved, honest", signers, APPROVAL)


def test_a_key_counts_only_inside_its_validity(tmp_path, keys) -> None:
    """`valid-before`: a signature made while the key was good stays good when checked at that time."""
    cutoff = datetime(2026, 6, 1, tzinfo=UTC)
    signers = allowed(
        tmp_path, [f'olga@tiny.example valid-before="{cutoff:%Y%m%d}" {public_key(keys["retired"])}']
    )
    data = b"request r2"
    signature = sign(data, keys["retired"], APPROVAL)
    assert (
        signer(data, signature, signers, APPROVAL, at=cutoff - timedelta(days=1)).principal
        == "olga@tiny.example"
    )
    with pytest.raises(SignatureError, match="not valid then"):
        signer(data, signature, signers, APPROVAL, at=cutoff + timedelta(days=1))


def test_keys_readable_or_writable_by_others_are_refused(tmp_path, keys) -> None:
    keys["olga"].chmod(0o666)
    with pytest.raises(SignatureError, match="can be written by others"):
        sign(b"x", keys["olga"], APPROVAL)
    keys["olga"].chmod(0o644)  # readable by others: ssh-keygen itself refuses an unprotected private key
    with pytest.raises(SignatureError, match="signing with"):
        sign(b"x", keys["olga"], APPROVAL)
