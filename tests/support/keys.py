"""OpenSSH key pairs for the signing tests, made by ssh-keygen as an operator would."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bitbucket_assets.service_key import ServiceKey


def keypair(directory: Path, name: str) -> Path:
    """`directory/name` (mode 600) and `directory/name.pub`, an Ed25519 pair without a passphrase."""
    key = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key


def service_keys(directory: Path) -> tuple[ServiceKey, ServiceKey]:
    """The service's key as the deployment holds it (private key), and as a verifier does (public key)."""
    key = keypair(directory, "signing_key")
    return ServiceKey(private_key=key), ServiceKey(public_keys=key.with_suffix(".pub"))
