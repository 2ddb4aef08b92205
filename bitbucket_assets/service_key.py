"""The service's own signing key: it signs the provisioning log's head after every row it writes and the
manifest of every evidence pack, so that whoever can write to the warehouse, but does not hold the key, cannot
rewrite either unnoticed.

- `BITBUCKET_SIGNING_KEY` names the private key (an OpenSSH key file, readable by its owner only), kept
  outside the warehouse like the API token. Without it nothing is signed, and every verification says that
  the records then resist only someone who cannot write to the warehouse.
- `BITBUCKET_SIGNING_PUBLIC_KEY` names what verifiers check signatures with: the public key (`key.pub`), or
  OpenSSH `allowed_signers` lines for the principal `bitbucket-access` (several keys, with `valid-after` /
  `valid-before`, when the key is rotated). Without it, the public half of the signing key is used.

Signatures are OpenSSH's (`signing.py`), each under its purpose's namespace (`log_head`, `evidence`), distinct
from the approvers' and reviewers'.
"""

from __future__ import annotations

import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import signing
from .signing import NAMESPACES, SignatureError, Signer

PRINCIPAL = "bitbucket-access"
UNSIGNED = (
    "not signed (BITBUCKET_SIGNING_KEY is not set): these records resist only someone who cannot write to "
    "the warehouse"
)
# Key types OpenSSH signs with: a line starting with one is a bare public key, not an allowed_signers line.
_KEY_TYPES = ("ssh-", "ecdsa-", "sk-ssh-", "sk-ecdsa-")


class ServiceKeyError(SignatureError):
    """The signing key or the public key file cannot be used; the message names the variable and the file."""


@dataclass(frozen=True)
class ServiceKey:
    """The signing key (None: this deployment signs nothing) and where verifiers find its public key (None:
    the signing key's own public half)."""

    private_key: Path | None = None
    public_keys: Path | None = None

    @classmethod
    def from_paths(cls, private_key: str | None, public_keys: str | None) -> ServiceKey:
        return cls(Path(private_key) if private_key else None, Path(public_keys) if public_keys else None)

    @property
    def signs(self) -> bool:
        return self.private_key is not None

    @property
    def verifies(self) -> bool:
        return self.private_key is not None or self.public_keys is not None

    def sign(self, data: bytes, purpose: str) -> str:
        """An armored SSH signature of `data` under `purpose`'s namespace."""
        if self.private_key is None:
            raise ServiceKeyError("no signing key: set BITBUCKET_SIGNING_KEY")
        _require_secret(self.private_key)
        try:
            return signing.sign(data, self.private_key, NAMESPACES[purpose])
        except SignatureError as exc:
            raise ServiceKeyError(f"BITBUCKET_SIGNING_KEY: {exc}") from None

    def check(self, data: bytes, signature: str, purpose: str, at: datetime | None = None) -> Signer:
        """That the service's key made `signature` over `data` under `purpose`'s namespace, the key being
        valid at `at`; `SignatureError` saying what failed."""
        with self._allowed_signers() as signers:
            return signing.verify(data, signature, signers, NAMESPACES[purpose], PRINCIPAL, at)

    def probe(self) -> Signer:
        """Sign and check a probe: the key can sign and the public key configured for verifiers is its own."""
        data = b"bitbucket-access signing probe"
        try:
            return self.check(data, self.sign(data, "log_head"), "log_head")
        except ServiceKeyError:
            raise
        except SignatureError as exc:
            raise ServiceKeyError(
                f"BITBUCKET_SIGNING_PUBLIC_KEY ({self.public_keys}) does not check what "
                f"BITBUCKET_SIGNING_KEY signs: {exc}"
            ) from None

    def describe(self) -> str:
        """One line for `check`: what signs, what verifiers use, or that nothing is signed."""
        if not self.verifies:
            return f"signing: {UNSIGNED}"
        verifier = self.public_keys or "the public half of BITBUCKET_SIGNING_KEY"
        if not self.signs:
            return f"signing: this deployment signs nothing; signatures are checked with {verifier}"
        try:
            made = self.probe()
        except SignatureError as exc:
            return f"signing: PROBLEM: {exc} (provisioning runs and evidence packs stop until it is fixed)"
        return (
            f"signing: the provisioning log's head and evidence manifests are signed with key "
            f"{made.fingerprint} ({self.private_key}); verifiers check them with {verifier}"
        )

    @contextmanager
    def _allowed_signers(self) -> Iterator[Path]:
        """The public keys as an allowed_signers file for the principal `bitbucket-access`."""
        if self.public_keys is not None:
            signing.require_private(self.public_keys, "BITBUCKET_SIGNING_PUBLIC_KEY")
            try:
                text = self.public_keys.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ServiceKeyError(f"BITBUCKET_SIGNING_PUBLIC_KEY {self.public_keys}: {exc}") from None
        elif self.private_key is not None:
            _require_secret(self.private_key)
            text = signing.public_key(self.private_key)
        else:
            raise ServiceKeyError("no public key to check signatures with: set BITBUCKET_SIGNING_PUBLIC_KEY")
        lines = [
            _signer_line(line) for line in text.splitlines() if line.strip() and not line.startswith("#")
        ]
        if not lines:
            raise ServiceKeyError(f"BITBUCKET_SIGNING_PUBLIC_KEY {self.public_keys} holds no key")
        with tempfile.TemporaryDirectory(prefix="bitbucket-access-signers-") as directory:
            path = Path(directory) / "allowed_signers"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            yield path


def _signer_line(line: str) -> str:
    """A bare public key becomes the allowed_signers line of the principal `bitbucket-access`."""
    line = line.strip()
    return f"{PRINCIPAL} {line}" if line.startswith(_KEY_TYPES) else line


def _require_secret(key: Path) -> None:
    """The private key must be a regular file no one but its owner can read or write, as ssh requires."""
    try:
        signing.require_private(key, "BITBUCKET_SIGNING_KEY")
    except SignatureError as exc:
        raise ServiceKeyError(str(exc)) from None
    mode = key.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        raise ServiceKeyError(
            f"BITBUCKET_SIGNING_KEY {key} can be read by others (mode {stat.S_IMODE(mode):o}): chmod 600 it"
        )
