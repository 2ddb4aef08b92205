"""Fulfilling approved group-membership requests: validate, apply once, log every attempt.

Exactly-once: before a membership call the intent is committed (`provisioning_intents`); after it,
the log row, the request's status and the intent's removal commit together. A run killed in between
leaves the intent behind; the next run reads the group's live membership, and if the change is already
there it records it as applied instead of calling again.

Whether a membership was made by this system is decided by the intent, never by a status code: the live
membership is read before the intent is recorded, so a membership that existed before the request ends
`no_change` and is never removed at expiry, while a 409 (or 404) answering a *retried* call after the intent
means an earlier try took effect and its response was lost: the grant is ours, `applied`, and will expire.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import duckdb

from ..client import (
    AuthenticationError,
    BitbucketApi,
    BitbucketClient,
    BitbucketError,
    MissingScopesError,
    PermissionDeniedError,
    RateLimitExhaustedError,
    ServerError,
    UnknownGroupError,
    UnknownUserError,
)
from ..client.admin_api import (
    LICENSE_LIMIT_EXCEEDED,
    NOT_ALLOWED_TO_MANAGE_GROUP,
    NOT_ALLOWED_TO_MANAGE_ORG,
    RATE_LIMITED,
    TOO_MANY_LICENSE_BREACHES,
    AtlassianAdminApi,
)
from ..clock import Clock, SystemClock
from ..service_key import ServiceKey
from ..settings import (
    DEFAULT_MAX_APPROVAL_AGE_DAYS,
    DEFAULT_MAX_CHANGES_PER_RUN,
    DEFAULT_PROTECTED_GROUPS,
)
from . import audit_log
from .approvals import ApproverPolicy, snapshot_group_members, snapshot_people
from .backends import ADMIN_API, Backends, MembershipBackend, idp_refusal
from .signed_requests import SignatureCheck, check_request_signature
from .tables import ACTIONS, create_provisioning_tables


@dataclass
class ProvisioningPolicy:
    max_approval_age_days: float = DEFAULT_MAX_APPROVAL_AGE_DAYS
    protected_groups: tuple[str, ...] = DEFAULT_PROTECTED_GROUPS
    max_changes_per_run: int = DEFAULT_MAX_CHANGES_PER_RUN


class ChangeCapExceeded(RuntimeError):
    """More approved changes than the per-run cap: nothing was called, nothing changed."""


@dataclass
class ProvisioningReport:
    planned: list[dict] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # request_id -> outcome
    reconciled: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes.values() if o == outcome)


class Provisioner:
    def __init__(
        self,
        client: BitbucketClient | None,
        con: duckdb.DuckDBPyConnection,
        policy: ProvisioningPolicy | None = None,
        run_id: str | None = None,
        now: datetime | None = None,
        clock: Clock | None = None,
        approvals: ApproverPolicy | None = None,
        admin_api: AtlassianAdminApi | None = None,
        admin_managed: list[str] | None = None,
        signing: ServiceKey | None = None,
    ):
        """`admin_api`: the organization's Atlassian Admin API, which changes the groups of workspaces
        administered from admin.atlassian.com (`admin_managed` names them; None: detected from the latest
        snapshot). `signing`: the service's key, which signs the log's head after every row; a key that
        cannot sign stops the run here, before any call."""
        self.signing = signing or ServiceKey()
        if self.signing.signs:
            self.signing.probe()
        self.client, self.con = client, con
        self.api = BitbucketApi(client) if client is not None else None
        self.backends = Backends(con, self.api, admin_api, admin_managed)
        # The client's clock, so a simulated run dates its log and judges expiry on the same time line.
        self.clock = clock or (client.clock if client is not None else SystemClock())
        self.policy = policy or ProvisioningPolicy()
        self.run_id = run_id or uuid.uuid4().hex
        self.now = now or self.clock.now()  # the moment approval age and expiry are judged at
        self.approvals = approvals or ApproverPolicy()
        self._group_members = snapshot_group_members(con)
        self.people = snapshot_people(con, self.approvals)
        self._review_proofs: dict = {}  # signed review files read this run (reporting/review.py)
        self.report = ProvisioningReport()
        self.head: str | None = None  # the log's chain head after this run's last row
        self._members: dict[tuple[str, str], set[str]] = {}
        create_provisioning_tables(con)

    # ---- the job ----

    def provision(self, dry_run: bool = False) -> ProvisioningReport:
        if not dry_run:
            self.reconcile_intents()
        candidates = self._pending_requests()
        valid = []
        for request in candidates:
            problem = self._offline_problem(request)
            if problem:
                self._finish(request, "rejected", problem, dry_run=dry_run)
            else:
                valid.append(request)
        valid = self._without_conflicts(valid, dry_run)
        if len(valid) > self.policy.max_changes_per_run:
            raise ChangeCapExceeded(
                f"{len(valid)} approved requests exceed the cap of {self.policy.max_changes_per_run} "
                "changes per run: nothing was applied. Raise the cap (max_changes_per_run) or split the "
                "batch."
            )
        for request in valid:
            choice = self.backends.choice(request["workspace_slug"])
            if choice.problem:
                self._finish(request, "failed", choice.problem, dry_run=dry_run, backend=choice.backend)
                continue
            if dry_run:
                note = f"dry run: no call made; {choice.describe()}"
                self._log(
                    request, request["action"], "planned", None, note, dry_run=True, backend=choice.backend
                )
                self.report.planned.append({**request, "backend": choice.describe()})
                continue
            self._apply(request)
        return self.report

    def expire(self) -> ProvisioningReport:
        """End just-in-time grants whose time is up. Whether a membership is still covered is decided from its
        intended state: the latest decision about it (by approval time) wins, so a later removal ends an
        earlier add's cover and a later just-in-time request extends or shortens the expiry. Users are
        compared as one person (`People`), whether a request names them by `{uuid}` or account id."""
        self.reconcile_intents()
        due = self._rows(
            "select * from provisioning.access_requests where action = 'add' and status in ('applied', "
            "'no_change') and expires_at is not null and expires_at <= ? order by expires_at, request_id",
            [self.now],
        )
        memberships: dict[tuple[str, str, str], list[dict]] = {}
        for request in due:
            key = (request["workspace_slug"], request["group_slug"], self.people.key(request["user_id"]))
            memberships.setdefault(key, []).append(request)
        for (ws, group, user), ended in memberships.items():
            latest = max(self._decisions(ws, group, user), key=_decision_order)
            if (
                latest["action"] == "add"
                and latest["status"] != "expired"
                and (latest["expires_at"] is None or latest["expires_at"] > self.now)
            ):
                for request in ended:
                    note = f"expired; access kept because request {latest['request_id']} still covers it"
                    self._finish(request, "expired", note, action="expire")
                continue
            ended.sort(key=_decision_order)
            last = ended[-1]
            if not self._made_by_this_system(ws, group, user):
                why = (
                    f"the later removal {latest['request_id']} had ended it"
                    if latest["action"] == "remove"
                    else "the membership was not made by this system (it existed before the request)"
                )
                for request in ended:
                    self._finish(request, "expired", f"expired; nothing removed: {why}", action="expire")
                continue
            for request in ended[:-1]:
                note = f"expired; the membership ends with request {last['request_id']}"
                self._finish(request, "expired", note, action="expire")
            self._apply(last, action="remove", log_action="expire", success="expired")
        return self.report

    def _decisions(self, ws: str, group: str, user: str) -> list[dict]:
        """Every request that took effect on this membership: adds applied, found in place or expired since,
        and removals applied or found done."""
        rows = self._rows(
            "select * from provisioning.access_requests where workspace_slug = ? and group_slug = ? and "
            "((action = 'add' and status in ('applied', 'no_change', 'expired')) or "
            "(action = 'remove' and status in ('applied', 'no_change')))",
            [ws, group],
        )
        return [r for r in rows if self.people.key(r["user_id"]) == user]

    def _made_by_this_system(self, ws: str, group: str, user: str) -> bool:
        """Whether this system's last change to the membership (in the log's order) was the add that made it:
        a membership that existed before any request of ours, or that we removed since, is not removed at
        expiry."""
        rows = self._rows(
            "select user_uuid, action, outcome, http_status, error from provisioning.provisioning_log "
            "where not dry_run and workspace_slug = ? and group_slug = ? and "
            "((action in ('add', 'remove') and outcome = 'applied') or (action = 'expire' and outcome = "
            "'expired' and (http_status is not null or error = ?))) order by seq nulls first, attempted_at",
            [ws, group, RECONCILED],
        )
        changes = [r["action"] for r in rows if r["user_uuid"] and self.people.key(r["user_uuid"]) == user]
        return bool(changes) and changes[-1] == "add"

    # ---- crash recovery ----

    def reconcile_intents(self) -> None:
        for intent in self._rows("select * from provisioning.provisioning_intents order by recorded_at"):
            request = self._request(intent["request_id"])
            ws = intent["workspace_slug"]
            backend = self.backends.backend(ws)
            try:
                key = backend.member_key_of(ws, intent["user_uuid"])
            except UnknownUserError:
                key = None  # no longer a member of the workspace: in no group of it either
            members = self._live_members(backend, ws, intent["group_slug"], refresh=True)
            wanted_present = intent["action"] == "add"
            if (key in members) == wanted_present:
                outcome = (
                    "expired" if request["status"] == "applied" and request["action"] == "add" else "applied"
                )
                self._finish(
                    request,
                    outcome,
                    RECONCILED,
                    action="expire" if outcome == "expired" else request["action"],
                    user_uuid=intent["user_uuid"],
                    backend=backend.name,
                )
                self.report.reconciled.append(request["request_id"])
            else:
                self.con.execute(
                    "delete from provisioning.provisioning_intents where request_id = ? and action = ?",
                    [intent["request_id"], intent["action"]],
                )

    # ---- steps ----

    def _pending_requests(self) -> list[dict]:
        # Requests nobody approved yet stay pending: the job takes approved ones only.
        return self._rows(
            "select * from provisioning.access_requests where status = 'pending' "
            "and (approved_by is not null or approved_at is not null) order by approved_at nulls last, "
            "request_id"
        )

    def _offline_problem(self, request: dict) -> str | None:
        """Rules that need no call; the live ones follow in `_apply`."""
        if request["action"] not in ACTIONS:
            return f"action {request['action']!r} is not one of add, remove"
        proof = self._proof(request)
        if proof.problem:
            return proof.problem
        if proof.signer is not None and not request["approved_by"]:
            request["approved_by"] = proof.signer.principal  # the approver is the signer
        if not request["approved_by"]:
            return "no approver (approved_by is empty)"
        approval = self.approvals.approval_problem(
            request, self.policy.protected_groups, self._group_members, self.people
        )
        if approval:
            return approval
        if request["approved_at"] is None:
            return "approval has no time (approved_at is empty)"
        age = self.now - request["approved_at"]
        if age > timedelta(days=self.policy.max_approval_age_days):
            return f"approval is {age.days} days old; the limit is {self.policy.max_approval_age_days:g} days"
        if request["approved_at"] > self.now + timedelta(minutes=5):
            return "approval is dated in the future"
        if request["group_slug"] in self.policy.protected_groups and not request["allow_protected"]:
            return f"group {request['group_slug']!r} is protected; the request must set allow_protected"
        if (
            request["expires_at"] is not None
            and request["expires_at"] <= self.now
            and request["action"] == "add"
        ):
            return "expires_at is already past"
        snapshot_problem = self._snapshot_problem(request)
        return snapshot_problem

    def _proof(self, request: dict) -> SignatureCheck:
        """The approval's proof: its approver's signature, or, for a request a review import made, the
        reviewer's signed file (checked again here: the warehouse is not trusted to hold the truth)."""
        if request.get("review_file_sha256") and not request.get("approval_signature"):
            if not self.approvals.configured:
                return SignatureCheck()
            from ..reporting.review_import import review_request_proof  # reporting builds on provisioning

            return review_request_proof(self.con, request, self.approvals, self.people, self._review_proofs)
        return check_request_signature(request, self.approvals, self.policy.protected_groups, self.people)

    def _without_conflicts(self, requests: list[dict], dry_run: bool) -> list[dict]:
        """An add and a remove of the same membership in one run: which one wins would depend on their order,
        so both are refused, with each other's ids."""
        by_membership: dict[tuple[str, str, str], list[dict]] = {}
        for request in requests:
            key = (request["workspace_slug"], request["group_slug"], self._user_key(request))
            by_membership.setdefault(key, []).append(request)
        kept = []
        for same in by_membership.values():
            if len({r["action"] for r in same}) == 1:
                kept += same
                continue
            for request in same:
                others = ", ".join(r["request_id"] for r in same if r is not request)
                note = (
                    f"conflicts with request(s) {others}: an add and a remove of the same membership in one "
                    "run; nothing was applied for either, resolve and resubmit"
                )
                self._finish(request, "rejected", note, dry_run=dry_run)
        return sorted(kept, key=requests.index)

    def _user_key(self, request: dict) -> str:
        """The user as one person whether the request names a {uuid} or an account id."""
        return self.people.key(request["user_id"])

    def _snapshot_problem(self, request: dict) -> str | None:
        """User and group must exist in the workspace's latest complete snapshot (when there is one)."""
        try:
            groups = self.con.execute(
                "select count(*) from marts.dim_groups where workspace_slug = ? and group_slug = ?",
                [request["workspace_slug"], request["group_slug"]],
            ).fetchone()[0]
            users = self.con.execute(
                "select count(*) from staging.stg_bitbucket__workspace_members m "
                "join staging.stg_bitbucket__workspace_observations o on m.sync_id = o.sync_id "
                "and m.workspace_slug = o.workspace_slug and o.is_latest_for_workspace "
                "where m.workspace_slug = ? and (m.user_uuid = ? or m.account_id = ?)",
                [request["workspace_slug"], request["user_id"], request["user_id"]],
            ).fetchone()[0]
        except duckdb.CatalogException:
            return None  # no warehouse yet: the live checks decide
        if not groups:
            group, workspace = request["group_slug"], request["workspace_slug"]
            return f"group {group!r} is not in workspace {workspace!r} (latest snapshot)"
        if not users:
            ws = request["workspace_slug"]
            return f"user {request['user_id']!r} is not a member of workspace {ws!r} (latest snapshot)"
        return None

    def _apply(
        self,
        request: dict,
        action: str | None = None,
        log_action: str | None = None,
        success: str = "applied",
    ):
        action = action or request["action"]
        log_action = log_action or action
        ws, group = request["workspace_slug"], request["group_slug"]
        backend = self.backends.backend(ws)
        finish = partial(self._finish, request, action=log_action, backend=backend.name)
        try:
            user = self.api.workspace_member(ws, request["user_id"]).user
            refusal = backend.refusal(ws, group)  # known before any call that changes something
            members = None if refusal else self._live_members(backend, ws, group)
        except UnknownUserError:
            missing = f"user {request['user_id']!r} not found in workspace {ws!r} (live)"
            return finish("rejected", missing, http_status=404)
        except UnknownGroupError as exc:
            where = f" ({exc})" if backend.name == ADMIN_API else ""
            return finish(
                "rejected", f"group {group!r} not found in workspace {ws!r} (live){where}", http_status=404
            )
        except BitbucketError as exc:
            return finish("failed", _explain(exc, group), http_status=exc.status)
        user_uuid, key = user.uuid, backend.member_key(user)
        if refusal:
            return finish("failed", refusal, user_uuid=user_uuid)
        if key is None:
            note = (
                f"user {user_uuid} has no Atlassian account id, by which {backend.name} names group members"
            )
            return finish("failed", note, user_uuid=user_uuid)
        if (key in members) == (action == "add"):
            state = "already a member" if action == "add" else "not a member"
            outcome = success if log_action == "expire" else "no_change"
            return finish(outcome, f"{state}: nothing to do", user_uuid=user_uuid)
        self.con.execute(
            "insert or replace into provisioning.provisioning_intents values (?, ?, ?, ?, ?, ?, ?)",
            [request["request_id"], action, ws, group, user_uuid, self.run_id, self.clock.now()],
        )
        write = backend.add if action == "add" else backend.remove
        try:
            change = write(ws, group, key)
        except BitbucketError as exc:
            return finish("failed", _explain(exc, group), http_status=exc.status, user_uuid=user_uuid)
        if change.changed or change.retried:
            # The user was not in the wanted state when the intent was recorded: an "already so" answer to a
            # retried call means an earlier try of ours took effect (its response was lost). It is ours, and
            # a just-in-time grant made so will expire.
            outcome = success
            note = (
                None
                if change.changed
                else f"HTTP {change.status} on a retry: an earlier try of this call took effect"
            )
            (members.add if action == "add" else members.discard)(key)
        else:
            outcome = success if log_action == "expire" else "no_change"
            note = "already a member" if action == "add" else "not a member"
        return finish(outcome, note, http_status=change.status, user_uuid=user_uuid)

    # ---- bookkeeping ----

    def _finish(
        self,
        request: dict,
        outcome: str,
        note: str | None,
        *,
        action: str | None = None,
        http_status: int | None = None,
        user_uuid: str | None = None,
        dry_run: bool = False,
        backend: str | None = None,
    ) -> None:
        """Log the attempt, set the request's status and drop its intent, in one transaction."""
        self.report.outcomes[request["request_id"]] = outcome
        if dry_run:
            self._log(
                request,
                action or request["action"],
                outcome,
                http_status,
                note,
                dry_run=True,
                backend=backend,
            )
            return
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._log(
                request,
                action or request["action"],
                outcome,
                http_status,
                note,
                user_uuid=user_uuid,
                backend=backend,
            )
            self.con.execute(
                "update provisioning.access_requests set status = ?, status_reason = ?, updated_at = ?, "
                "approved_by = coalesce(approved_by, ?) where request_id = ?",
                [outcome, note, self.clock.now(), request["approved_by"], request["request_id"]],
            )
            self.con.execute(
                "delete from provisioning.provisioning_intents where request_id = ?", [request["request_id"]]
            )
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise

    def _log(
        self,
        request: dict,
        action: str,
        outcome: str,
        http_status: int | None,
        error: str | None,
        *,
        user_uuid: str | None = None,
        dry_run: bool = False,
        backend: str | None = None,
    ) -> None:
        self.head = audit_log.append(
            self.con,
            {
                "request_id": request["request_id"],
                "workspace_slug": request["workspace_slug"],
                "group_slug": request["group_slug"],
                "user_uuid": user_uuid
                or (request["user_id"] if request["user_id"].startswith("{") else None),
                "action": action,
                "outcome": outcome,
                "http_status": http_status,
                "error": error,
                "requested_by": request["requested_by"],
                "approved_by": request["approved_by"],
                "approval_ref": request.get("approval_ref"),
                "attempted_at": self.clock.now(),
                "run_id": self.run_id,
                "dry_run": dry_run,
                "backend": backend,
            },
            self.signing,
        )

    def _live_members(
        self, backend: MembershipBackend, ws: str, group: str, refresh: bool = False
    ) -> set[str]:
        """The group's members as `backend` names them (`{uuid}` or account id), read once per run."""
        key = (ws, group)
        if refresh or key not in self._members:
            self._members[key] = backend.members(ws, group)
        return self._members[key]

    def _request(self, request_id: str) -> dict:
        return self._rows("select * from provisioning.access_requests where request_id = ?", [request_id])[0]

    def _rows(self, sql: str, params: list[Any] | None = None) -> list[dict]:
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


RECONCILED = "the previous run's call had taken effect (reconciled after a crash)"


def _decision_order(request: dict) -> tuple:
    """Decisions in the order they were made: by approval time, then when they were recorded."""
    return (request["approved_at"] or request["created_at"], request["created_at"], request["request_id"])


def _explain(exc: BitbucketError, group: str) -> str:
    """A reason a person understands for a refusal by Bitbucket or by the Atlassian Admin API."""
    if exc.code == NOT_ALLOWED_TO_MANAGE_GROUP:
        return idp_refusal(group, str(exc))
    if exc.code in (LICENSE_LIMIT_EXCEEDED, TOO_MANY_LICENSE_BREACHES):
        return (
            f"the Admin API refused: group {group!r} grants an app whose user limit is reached. Raise the "
            "app's user limit or free a seat (remove or suspend someone's access to it), then resubmit. "
            f"{exc}"
        )
    if exc.code == NOT_ALLOWED_TO_MANAGE_ORG:
        return (
            "the organization API key may not manage groups: create one in admin.atlassian.com with "
            f"permission to manage users and groups and set it as BITBUCKET_ADMIN_API_KEY. {exc}"
        )
    if isinstance(exc, RateLimitExhaustedError) and exc.code == RATE_LIMITED:
        return (
            f"rate limited by the Atlassian Admin API after every retry; the next run will try again: {exc}"
        )
    if isinstance(exc, MissingScopesError):
        return f"the credential lacks scopes ({', '.join(exc.required)}): {exc}"
    if isinstance(exc, PermissionDeniedError) and "admin.atlassian.com" in str(exc):
        return f"Bitbucket refused: this workspace's groups are managed from admin.atlassian.com. {exc}"
    if isinstance(exc, PermissionDeniedError):
        return f"Bitbucket refused the change (403): {exc}"
    if isinstance(exc, RateLimitExhaustedError):
        return f"rate limited by Bitbucket after every retry; the next run will try again: {exc}"
    if isinstance(exc, ServerError):
        return f"Bitbucket kept failing (5xx or dropped connections) after every retry: {exc}"
    if isinstance(exc, AuthenticationError):
        return f"the credential was refused: {exc}"
    return str(exc)
