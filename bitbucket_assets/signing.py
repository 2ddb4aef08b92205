"""OpenSSH signatures, made and checked the way git signs commits: `ssh-keygen -Y sign` and `-Y verify`.

Who signed is decided by a list of public keys kept outside the warehouse, in OpenSSH `allowed_signers` form
(`principal [options] key-type key`): whoever can write to the warehouse cannot forge a signature without the
private key. Every signature is made under a namespace of its purpose (`NAMESPACES`), so a signature made for
one purpose never passes for another. A key's `valid-after` / `valid-before` options say when it was good,
and a signature is checked at the time it claims to have been made (`at`), so a request signed while its key
was valid stays valid after the key is retired.

No signature is parsed here: OpenSSH's own `ssh-keygen` (package openssh-client) reads and checks them.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# One namespace per purpose: a signature is only ever checked under the namespace it was made for.
NAMESPACES = {
    "approval": "bitbucket-access-approval",  # an approver's signature over a request's canonical text
    "review": "bitbucket-access-review",  # a reviewer's signature over a completed review file
    "log_head": "bitbucket-access-log-head",  # the service's signature over the provisioning log's head
    "evidence": "bitbucket-access-evidence",  # the service's signature over an evidence pack's manifest
}
TIMEOUT = 30.0


class SignatureError(ValueError):
    """A signature that does not prove what it should; the message says what failed, never a key's secret."""


@dataclass(frozen=True)
class Signer:
    """Who made a signature: the principal the allowed signers name for its key, and the key's fingerprint."""

    principal: str
    fingerprint: str


def ssh_keygen() -> str:
    """The `ssh-keygen` that checks signatures; its absence is an error that says how to install it."""
    found = shutil.which("ssh-keygen")
    if found is None:
        raise SignatureError("ssh-keygen is not installed: install OpenSSH's client (Debian: openssh-client)")
    return found


def sign(data: bytes, private_key: str | Path, namespace: str) -> str:
    """An armored SSH signature of `data` with `private_key` (a file, readable by its owner only)."""
    key = Path(private_key)
    require_private(key, "the signing key")
    with _scratch() as directory:
        message = directory / "message"
        message.write_bytes(data)
        done = _run([ssh_keygen(), "-Y", "sign", "-q", "-f", str(key), "-n", namespace, str(message)])
        if done.returncode != 0:
            raise SignatureError(f"signing with {key} failed: {_reason(done)}")
        return (directory / "message.sig").read_text()


def signer(
    data: bytes, signature: str, allowed_signers: str | Path, namespace: str, at: datetime | None = None
) -> Signer:
    """The principal whose key made `signature` over `data` under `namespace`, checked against the allowed
    signers as of `at` (default: now). Raises `SignatureError` naming what failed: no signature, a key no
    allowed signer holds (or one outside its validity at `at`), a key two principals share, a signature that
    does not match."""
    if not signature or "BEGIN SSH SIGNATURE" not in signature:
        raise SignatureError("no SSH signature (expected the armored output of `ssh-keygen -Y sign`)")
    signers = Path(allowed_signers)
    when = ["-O", f"verify-time={(at or datetime.now(UTC)).astimezone(UTC):%Y%m%d%H%M%SZ}"]
    with _scratch() as directory:
        sig = directory / "message.sig"
        sig.write_text(signature)
        found = _run([ssh_keygen(), "-Y", "find-principals", "-s", str(sig), "-f", str(signers), *when])
        principals = found.stdout.split() if found.returncode == 0 else []
        if not principals:
            raise SignatureError(
                f"the signing key is not in the allowed signers ({signers}), or was not valid then: "
                f"{_reason(found)}"
            )
        if len(principals) > 1:
            raise SignatureError(f"the signing key belongs to several principals ({', '.join(principals)})")
        command = [ssh_keygen(), "-Y", "verify", "-f", str(signers), "-I", principals[0], "-n", namespace]
        checked = _run([*command, "-s", str(sig), *when], stdin=data)
        if checked.returncode != 0:
            raise SignatureError(
                f"the signature does not verify under namespace {namespace}: {_reason(checked)}"
            )
    return Signer(principals[0], _fingerprint(checked.stdout))


def verify(
    data: bytes,
    signature: str,
    allowed_signers: str | Path,
    namespace: str,
    principal: str,
    at: datetime | None = None,
) -> Signer:
    """Like `signer`, and the signer must be `principal`."""
    made = signer(data, signature, allowed_signers, namespace, at)
    if made.principal != principal:
        raise SignatureError(f"signed by {made.principal!r}, not by {principal!r}")
    return made


def public_key(private_key: str | Path) -> str:
    """The public half of a private key file (`ssh-keygen -y`), e.g. for an allowed_signers line."""
    done = _run([ssh_keygen(), "-y", "-f", str(private_key)])
    if done.returncode != 0:
        raise SignatureError(f"cannot read the key {private_key}: {_reason(done)}")
    return done.stdout.strip()


def require_private(path: Path, what: str) -> None:
    """A key or policy file must be a regular file that no one but its owner can write (and, for a private
    key, read): as ssh refuses such keys, so does this."""
    try:
        mode = path.stat().st_mode
    except OSError:
        raise SignatureError(f"{what} {path} does not exist or cannot be read") from None
    if not stat.S_ISREG(mode):
        raise SignatureError(f"{what} {path} is not a regular file")
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SignatureError(
            f"{what} {path} can be written by others (mode {stat.S_IMODE(mode):o}): chmod go-w"
        )


def _fingerprint(output: str) -> str:
    # `Good "ns" signature for principal with ED25519 key SHA256:...`
    return next((part for part in output.split() if part.startswith("SHA256:")), "")


def _reason(done: subprocess.CompletedProcess) -> str:
    text = (done.stderr or done.stdout or "").strip().splitlines()
    return text[-1] if text else f"ssh-keygen exited with {done.returncode}"


def _run(command: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, input=stdin, capture_output=True, timeout=TIMEOUT, check=False)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


@contextmanager
def _scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bitbucket-access-sig-") as name:
        os.chmod(name, 0o700)
        yield Path(name)
