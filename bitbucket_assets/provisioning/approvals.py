"""Who may approve a change, and how people are compared.

The approver policy is a YAML file named by `BITBUCKET_APPROVER_POLICY`, kept outside the warehouse: write
access to the warehouse must not confer the power to approve. It is checked when requests are imported and
again before each is applied. Without a policy, any approver other than the requester is accepted, and
`check`, every provisioning run and the dashboard say so. Format (docs/provisioning.md):

    identities:                   # people known by email, mapped to their Atlassian account id
      alice@example.com: "557058:1b2c..."
    approvers:                    # per workspace slug, or "*" for every workspace
      "*": {people: [alice@example.com], bitbucket_group: security}
    protected_approvers:          # who may approve changes to protected groups (allow_protected)
      "*": {people: [ciso@example.com]}
    self_review: reject           # or second_reviewer: a decision on one's own access needs a second reviewer

Identities are compared after Unicode normalisation (NFKC, casefold, invisible and bidi characters removed)
and after mapping an email to its account id, so `alice\\u200b@x` is `alice@x`, and an email and the account
id it maps to are one person.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

_LEGACY_ACCOUNT_ID = re.compile(r"[0-9a-f]{24}")  # account ids from before the 557058:... form


class ApproverPolicyError(ValueError):
    """The policy file is missing or malformed; the message names the file and the key."""


def normalise_identity(identity: str | None) -> str:
    """NFKC, without format (zero-width, bidi) and control characters, trimmed, casefolded."""
    folded = unicodedata.normalize("NFKC", identity or "")
    kept = "".join(ch for ch in folded if unicodedata.category(ch) not in ("Cf", "Cc"))
    return kept.strip().casefold()


@dataclass(frozen=True)
class Approvers:
    people: frozenset[str] = frozenset()  # normalised identities
    bitbucket_group: str | None = None  # its members in the latest snapshot may approve


# Who belongs to a Bitbucket group: (workspace, group) -> normalised account ids and {uuid}s.
GroupMembers = Callable[[str, str], set[str]]


@dataclass
class ApproverPolicy:
    source: str | None = None  # the file; None: no policy configured
    identities: dict[str, str] = field(default_factory=dict)  # normalised email -> normalised account id
    approvers: dict[str, Approvers] = field(default_factory=dict)
    protected_approvers: dict[str, Approvers] = field(default_factory=dict)
    self_review: str = "reject"

    @property
    def configured(self) -> bool:
        return self.source is not None

    @classmethod
    def load(cls, path: str | None) -> ApproverPolicy:
        if not path:
            return cls()
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ApproverPolicyError(f"approver policy {path}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ApproverPolicyError(f"approver policy {path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ApproverPolicyError(f"approver policy {path}: expected a mapping at the top")
        unknown = set(data) - {"identities", "approvers", "protected_approvers", "self_review"}
        if unknown:
            raise ApproverPolicyError(f"approver policy {path}: unknown key(s) {', '.join(sorted(unknown))}")
        identities = data.get("identities") or {}
        if not isinstance(identities, dict):
            raise ApproverPolicyError(f"approver policy {path}: identities: expected email: account id pairs")
        self_review = data.get("self_review", "reject")
        if self_review not in ("reject", "second_reviewer"):
            raise ApproverPolicyError(
                f"approver policy {path}: self_review: {self_review!r} is not reject or second_reviewer"
            )
        policy = cls(
            source=str(path),
            identities={normalise_identity(k): normalise_identity(str(v)) for k, v in identities.items()},
            self_review=self_review,
        )
        policy.approvers = policy._rules(data.get("approvers"), "approvers", path)
        policy.protected_approvers = policy._rules(
            data.get("protected_approvers"), "protected_approvers", path
        )
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

    def approval_problem(self, request: dict, protected: Iterable[str], members: GroupMembers) -> str | None:
        """Why this request's approval is not acceptable, or None. Checks the requester is not the approver
        always, and the policy when one is configured."""
        approver, requester = request.get("approved_by"), request.get("requested_by")
        if self.same_person(approver, requester):
            return f"approved by the requester ({approver}): a second person must approve"
        ws, group = request["workspace_slug"], request["group_slug"]
        if not self.configured:
            return None
        rule = self.approvers.get(ws) or self.approvers.get("*")
        if rule is None:
            return f"no approver is configured for workspace {ws!r} (approver policy {self.source})"
        if not self._allowed(rule, approver, ws, members):
            return (
                f"{approver!r} may not approve requests for workspace {ws!r} (approver policy {self.source})"
            )
        if group in set(protected) and request.get("allow_protected"):
            guard = self.protected_approvers.get(ws) or self.protected_approvers.get("*")
            if guard is None or not self._allowed(guard, approver, ws, members):
                return (
                    f"{approver!r} may not approve changes to protected group {group!r} "
                    f"(approver policy {self.source}, protected_approvers)"
                )
        return None

    def _allowed(self, rule: Approvers, approver: str | None, ws: str, members: GroupMembers) -> bool:
        key = self.canonical(approver)
        if not key:
            return False
        return key in rule.people or (
            rule.bitbucket_group is not None and key in members(ws, rule.bitbucket_group)
        )

    def describe(self) -> str:
        if not self.configured:
            return (
                "approver policy: NONE SET (BITBUCKET_APPROVER_POLICY): any approver other than the "
                "requester is accepted"
            )
        return f"approver policy: {self.source} ({', '.join(sorted(self.approvers))})"


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
