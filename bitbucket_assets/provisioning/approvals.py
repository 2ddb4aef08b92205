"""Who may approve a change, whose keys prove it, and how people are compared.

The approver policy is a YAML file named by `BITBUCKET_APPROVER_POLICY`, kept outside the warehouse and
guarded like an SSH key (a file that others can write, or in a directory others can write, is refused): write
access to the warehouse must not confer the power to approve. It is checked when requests are imported and
again before each is applied. Without a policy, any approver other than the requester (and the user) is
accepted, and `check`, every provisioning run and the dashboard say so. Format (docs/provisioning.md):

    identities:                   # people known by email, mapped to their Atlassian account id
      alice@example.com: "557058:1b2c..."
    approvers:                    # per workspace slug, or "*" for every workspace
      "*": {people: [alice@example.com], bitbucket_group: security}
    protected_approvers:          # who may approve changes to protected groups (allow_protected)
      "*": {people: [ciso@example.com]}
    allowed_signers: |            # each approver's public keys, OpenSSH allowed_signers lines
      alice@example.com ssh-ed25519 AAAA...
    require_signatures: protected # or always: every request needs its approver's signature

Identities are compared after Unicode normalisation (NFKC, casefold, invisible and bidi characters removed),
after mapping an email to its account id, and after mapping a `{uuid}` to the account id the snapshot links
it with (`People`), so `alice\\u200b@x` is `alice@x`, and an email, its account id and the user's `{uuid}` are
one person.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import yaml

from .. import signing

_LEGACY_ACCOUNT_ID = re.compile(r"[0-9a-f]{24}")  # account ids from before the 557058:... form
POLICY_KEYS = (
    "identities",
    "approvers",
    "protected_approvers",
    "self_review",
    "allowed_signers",
    "require_signatures",
)
SIGNATURES = ("protected", "always")  # where the policy requires an approver's signature
# Key types an allowed_signers line may name (OpenSSH's; certificates and CAs are not accepted: one key is one
# person).
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


class ApproverPolicyError(ValueError):
    """The policy file is missing, unguarded or malformed; the message names the file and the key."""


def normalise_identity(identity: str | None) -> str:
    """NFKC, without format (zero-width, bidi) and control characters, trimmed, casefolded."""
    folded = unicodedata.normalize("NFKC", identity or "")
    kept = "".join(ch for ch in folded if unicodedata.category(ch) not in ("Cf", "Cc"))
    return kept.strip().casefold()


@dataclass(frozen=True)
class Approvers:
    people: frozenset[str] = frozenset()  # normalised identities
    bitbucket_group: str | None = None  # its members in the latest snapshot may approve


@dataclass(frozen=True)
class SignerKey:
    """One allowed_signers line of the policy: whose key it is, and the key (type and base64)."""

    principal: str
    key: str
    line: str


# Who belongs to a Bitbucket group: (workspace, group) -> normalised account ids and {uuid}s.
GroupMembers = Callable[[str, str], set[str]]


@dataclass
class ApproverPolicy:
    source: str | None = None  # the file; None: no policy configured
    identities: dict[str, str] = field(default_factory=dict)  # normalised email -> normalised account id
    approvers: dict[str, Approvers] = field(default_factory=dict)
    protected_approvers: dict[str, Approvers] = field(default_factory=dict)
    signers: tuple[SignerKey, ...] = ()
    require_signatures: str = "protected"

    @property
    def configured(self) -> bool:
        return self.source is not None

    @classmethod
    def load(cls, path: str | None) -> ApproverPolicy:
        if path is None:
            return cls()
        if not path.strip():
            raise ApproverPolicyError(
                "BITBUCKET_APPROVER_POLICY is set but empty: name the approver policy file, or unset it"
            )
        guard_policy_file(Path(path))
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ApproverPolicyError(f"approver policy {path}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ApproverPolicyError(f"approver policy {path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ApproverPolicyError(f"approver policy {path}: expected a mapping at the top")
        unknown = set(data) - set(POLICY_KEYS)
        if unknown:
            raise ApproverPolicyError(f"approver policy {path}: unknown key(s) {', '.join(sorted(unknown))}")
        identities = data.get("identities") or {}
        if not isinstance(identities, dict):
            raise ApproverPolicyError(f"approver policy {path}: identities: expected email: account id pairs")
        self_review = data.get("self_review", "reject")
        if self_review == "second_reviewer":
            raise ApproverPolicyError(
                f"approver policy {path}: self_review: second_reviewer is no longer accepted: every decision "
                "is its signer's, so a decision on a reviewer's own access comes from another reviewer's "
                "signed file (remove the key)"
            )
        if self_review != "reject":
            raise ApproverPolicyError(f"approver policy {path}: self_review: {self_review!r} is not reject")
        required = data.get("require_signatures", "protected")
        if required not in SIGNATURES:
            raise ApproverPolicyError(
                f"approver policy {path}: require_signatures: {required!r} is not protected or always"
            )
        policy = cls(
            source=str(path),
            identities={normalise_identity(k): normalise_identity(str(v)) for k, v in identities.items()},
            require_signatures=required,
        )
        policy.approvers = policy._rules(data.get("approvers"), "approvers", path)
        policy.protected_approvers = policy._rules(
            data.get("protected_approvers"), "protected_approvers", path
        )
        policy.signers = policy._signers(data.get("allowed_signers"), path)
        if not policy.approvers:
            raise ApproverPolicyError(
                f'approver policy {path}: approvers: name at least one workspace or "*"'
            )
        return policy

    def _rules(self, raw, key: str, path) -> dict[str, Approvers]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            raise ApproverPolicyError(
                f"approver policy {path}: {key}: expected workspace: {{people, bitbucket_group}}"
            )
        rules = {}
        for workspace, rule in raw.items():
            if not isinstance(rule, dict) or set(rule) - {"people", "bitbucket_group"}:
                raise ApproverPolicyError(
                    f"approver policy {path}: {key}.{workspace}: expected people (a list) and/or "
                    "bitbucket_group"
                )
            people = rule.get("people") or []
            if not isinstance(people, list):
                raise ApproverPolicyError(
                    f"approver policy {path}: {key}.{workspace}.people: expected a list"
                )
            rules[str(workspace)] = Approvers(
                frozenset(self.canonical(p) for p in people), rule.get("bitbucket_group")
            )
        return rules

    def _signers(self, raw, path) -> tuple[SignerKey, ...]:
        """The allowed_signers lines: one principal each (no pattern, no list), no certificate authority, and
        no key held by two people."""
        if raw is None:
            return ()
        if isinstance(raw, str):
            lines = raw.splitlines()
        elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            lines = raw
        else:
            raise ApproverPolicyError(
                f"approver policy {path}: allowed_signers: expected OpenSSH allowed_signers lines (a block "
                "of text or a list of strings)"
            )
        signers, owners = [], {}
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where = f"approver policy {path}: allowed_signers line {number}"
            try:
                tokens = shlex.split(line)
            except ValueError as exc:
                raise ApproverPolicyError(f"{where}: {exc}") from None
            kinds = [i for i, token in enumerate(tokens) if token in KEY_TYPES]
            if len(tokens) < 3 or not kinds or kinds[0] not in (1, 2) or kinds[0] + 1 >= len(tokens):
                raise ApproverPolicyError(
                    f"{where}: expected `principal [options] key-type key` with a key type of "
                    f"{', '.join(KEY_TYPES)}"
                )
            principal, options = tokens[0], tokens[1] if kinds[0] == 2 else ""
            if any(ch in principal for ch in "*?!,"):
                raise ApproverPolicyError(
                    f"{where}: principal {principal!r} is a pattern or a list: name one person per line"
                )
            if "cert-authority" in options.split(","):
                raise ApproverPolicyError(
                    f"{where}: cert-authority is not accepted: list each approver's own key"
                )
            key = f"{tokens[kinds[0]]} {tokens[kinds[0] + 1]}"
            person = self.canonical(principal)
            if owners.setdefault(key, person) != person:
                raise ApproverPolicyError(
                    f"{where}: this key is also listed for another principal: one key, one person"
                )
            signers.append(SignerKey(principal, key, line))
        return tuple(signers)

    # ---- people ----

    def canonical(self, identity: str | None) -> str:
        """One key per person: normalised, and an email mapped to its account id when the policy knows it."""
        key = normalise_identity(identity)
        return self.identities.get(key, key)

    def same_person(self, a: str | None, b: str | None) -> bool:
        return bool(normalise_identity(a)) and self.canonical(a) == self.canonical(b)

    def is_bitbucket_identity(self, identity: str | None) -> bool:
        """Whether the identity names a Bitbucket user: a {uuid}, an account id, or an email mapped to one."""
        key = self.canonical(identity)
        return key.startswith("{") or ":" in key or bool(_LEGACY_ACCOUNT_ID.fullmatch(key))

    def is_person(self, identity: str | None, uuid: str | None, account_id: str | None) -> bool:
        """Whether `identity` names the Bitbucket user with this uuid or account id."""
        key = self.canonical(identity)
        return bool(key) and key in {normalise_identity(uuid), normalise_identity(account_id)} - {""}

    # ---- approvals ----

    def approval_problem(
        self,
        request: dict,
        protected: Iterable[str],
        members: GroupMembers,
        people: People | None = None,
    ) -> str | None:
        """Why this request's approval is not acceptable, or None. Always: the approver is neither the
        requester nor the user whose access changes; with a policy, the approver is someone the tool can
        compare with Bitbucket users and one it allows."""
        people = people or People(self)
        approver, requester = request.get("approved_by"), request.get("requested_by")
        if people.same(approver, requester):
            return f"approved by the requester ({approver}): a second person must approve"
        if people.same(approver, request.get("user_id")):
            return (
                f"approved by the user whose access it changes ({approver}): nobody approves their own access"
            )
        ws, group = request["workspace_slug"], request["group_slug"]
        if not self.configured:
            return None
        rule = self.approvers.get(ws) or self.approvers.get("*")
        if rule is None:
            return f"no approver is configured for workspace {ws!r} (approver policy {self.source})"
        if not self._allowed(rule, approver, ws, members, people):
            return (
                f"{approver!r} may not approve requests for workspace {ws!r} (approver policy {self.source})"
            )
        if not self.is_bitbucket_identity(approver):
            return (
                f"approver {approver!r} is neither an account id nor an email mapped to one in the "
                f"identities of {self.source}: the tool cannot tell them apart from the user"
            )
        if group in set(protected) and request.get("allow_protected"):
            guard = self.protected_approvers.get(ws) or self.protected_approvers.get("*")
            if guard is None or not self._allowed(guard, approver, ws, members, people):
                return (
                    f"{approver!r} may not approve changes to protected group {group!r} "
                    f"(approver policy {self.source}, protected_approvers)"
                )
        return None

    def reviewer_problem(
        self, workspace: str, reviewer: str, members: GroupMembers, people: People
    ) -> str | None:
        """Why `reviewer` may not attest access in `workspace` (with a policy: an approver it allows)."""
        if not self.configured:
            return None
        rule = self.approvers.get(workspace) or self.approvers.get("*")
        if rule is None or not self._allowed(rule, reviewer, workspace, members, people):
            return (
                f"{reviewer!r} may not review access in workspace {workspace!r} (approver policy "
                f"{self.source})"
            )
        return None

    def _allowed(
        self, rule: Approvers, approver: str | None, ws: str, members: GroupMembers, people: People
    ) -> bool:
        keys = {self.canonical(approver), people.key(approver)} - {""}
        if not keys:
            return False
        listed = {people.key(p) for p in rule.people} | set(rule.people)
        return bool(keys & listed) or (
            rule.bitbucket_group is not None and bool(keys & members(ws, rule.bitbucket_group))
        )

    # ---- signatures ----

    def signature_required(self, group: str, protected: Iterable[str]) -> bool:
        """With a policy: for protected groups, and for every group with `require_signatures: always`."""
        return self.configured and (self.require_signatures == "always" or group in set(protected))

    def signer(self, data: bytes, signature: str, purpose: str, at: datetime | None = None) -> signing.Signer:
        """Whose key in this policy made `signature` over `data` for `purpose` (a key of
        `signing.NAMESPACES`), as of `at`; `signing.SignatureError` says what failed."""
        if not self.signers:
            raise signing.SignatureError(f"the approver policy {self.source} lists no allowed_signers")
        with tempfile.TemporaryDirectory(prefix="bitbucket-access-signers-") as directory:
            path = Path(directory) / "allowed_signers"
            path.write_text("".join(f"{s.line}\n" for s in self.signers), encoding="utf-8")
            return signing.signer(data, signature, path, signing.NAMESPACES[purpose], at)

    def principal_of_key(self, public_key: str) -> str | None:
        """The principal the policy lists for a public key (`type base64 [comment]`), if any."""
        wanted = " ".join(public_key.split()[:2])
        return next((s.principal for s in self.signers if s.key == wanted), None)

    def describe(self) -> str:
        if not self.configured:
            return (
                "approver policy: NONE SET (BITBUCKET_APPROVER_POLICY): any approver other than the "
                "requester is accepted, and no signature is checked"
            )
        where = "every request" if self.require_signatures == "always" else "protected groups"
        return (
            f"approver policy: {self.source} ({', '.join(sorted(self.approvers))}); signatures required for "
            f"{where}; {len(self.signers)} signer key(s)"
        )


def guard_policy_file(path: Path) -> None:
    """Guard the policy as ssh guards a key: a regular file, owned by this user or root, that nobody else can
    write, in a directory nobody else can write (a sticky directory such as /tmp excepted)."""
    try:
        signing.require_private(path, "approver policy")
        info, folder = path.stat(), path.resolve().parent
        parent = folder.stat()
    except signing.SignatureError as exc:
        raise ApproverPolicyError(str(exc)) from None
    except OSError as exc:
        raise ApproverPolicyError(f"approver policy {path}: cannot be read ({exc.strerror})") from None
    if info.st_uid not in (0, os.getuid()):
        raise ApproverPolicyError(
            f"approver policy {path} is owned by user id {info.st_uid}, who could rewrite it: it must be "
            "owned by the user running bitbucket-access or by root"
        )
    if parent.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not parent.st_mode & stat.S_ISVTX:
        raise ApproverPolicyError(
            f"approver policy {path}: its directory {folder} can be written by others (mode "
            f"{stat.S_IMODE(parent.st_mode):o}), who could replace the file: chmod go-w {folder}"
        )


class People:
    """One key per person: the policy's normalisation and email mapping, then a `{uuid}` mapped to the account
    id the snapshot links it with. Requesters, approvers, reviewers and users are compared by this key."""

    def __init__(self, policy: ApproverPolicy, links: Callable[[], dict[str, str]] | None = None):
        self.policy = policy
        self._links = links
        self._loaded: dict[str, str] | None = None

    def key(self, identity: str | None) -> str:
        key = self.policy.canonical(identity)
        if key.startswith("{"):
            if self._loaded is None:
                self._loaded = self._links() if self._links else {}
            return self._loaded.get(key, key)
        return key

    def same(self, a: str | None, b: str | None) -> bool:
        key = self.key(a)
        return bool(key) and key == self.key(b)


def snapshot_people(con, policy: ApproverPolicy) -> People:
    """`People` whose `{uuid}`s are linked to account ids by every user the snapshots saw."""

    def links() -> dict[str, str]:
        try:
            rows = con.execute(
                "select distinct user_uuid, account_id from staging.stg_bitbucket__users "
                "where account_id is not null"
            ).fetchall()
        except duckdb.Error:  # no warehouse yet: nobody is linked
            return {}
        return {normalise_identity(uuid): normalise_identity(account) for uuid, account in rows}

    return People(policy, links)


def snapshot_group_members(con) -> GroupMembers:
    """Group members in each workspace's latest observation, as normalised account ids and {uuid}s."""
    cache: dict[tuple[str, str], set[str]] = {}

    def members(workspace: str, group: str) -> set[str]:
        if (workspace, group) not in cache:
            try:
                rows = con.execute(
                    "select m.user_uuid, m.account_id from staging.stg_bitbucket__group_members m "
                    "join staging.stg_bitbucket__workspace_observations o on m.sync_id = o.sync_id "
                    "and m.workspace_slug = o.workspace_slug and o.is_latest_for_workspace "
                    "where m.workspace_slug = ? and m.group_slug = ?",
                    [workspace, group],
                ).fetchall()
            except duckdb.Error:  # no warehouse yet: nobody is a member
                rows = []
            cache[(workspace, group)] = {normalise_identity(v) for row in rows for v in row if v}
        return cache[(workspace, group)]

    return members
