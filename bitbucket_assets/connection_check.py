"""`bitbucket-access check`: who am I, which workspaces (administered or not), which scopes are missing, and
separate verdicts for syncing and for provisioning, whatever the order Bitbucket lists the workspaces in."""

from __future__ import annotations

from dataclasses import dataclass, field

from .client import BitbucketApi, BitbucketClient, BitbucketError, MissingScopesError, NotFoundError
from .client.api import User
from .client.errors import PermissionDeniedError

PROBE_GROUP = "bitbucket-access-scope-probe"  # never exists: a PUT to it reveals scopes without changing anything


@dataclass
class CheckReport:
    identity: str = ""
    credential_kind: str = ""
    workspaces: list[tuple[str, bool]] = field(default_factory=list)  # (slug, administrator)
    missing_for_sync: set[str] = field(default_factory=set)
    missing_for_provisioning: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # each makes the sync not ready
    provisioning_unknown: list[str] = field(default_factory=list)  # probe answers check does not understand
    provisioning_elsewhere: dict[str, str] = field(default_factory=dict)  # workspace -> why the 1.0 API refuses
    notes: list[str] = field(default_factory=list)  # facts that change no verdict (e.g. the approver policy)

    @property
    def administered(self) -> list[str]:
        return [slug for slug, admin in self.workspaces if admin]

    @property
    def can_sync(self) -> bool:
        return bool(self.administered) and not self.missing_for_sync and not self.problems

    @property
    def provisioning(self) -> str:
        """ready | not ready | unknown"""
        if not self.can_sync or self.missing_for_provisioning:
            return "not ready"
        return "unknown" if self.provisioning_unknown else "ready"

    @property
    def can_provision(self) -> bool:
        return self.provisioning == "ready"

    def lines(self) -> list[str]:
        out = [f"credential: {self.credential_kind}", f"identity: {self.identity or 'unknown'}"]
        for slug, admin in self.workspaces:
            role = "administrator: synced" if admin else "member (not an administrator): skipped by a sync"
            out.append(f"workspace {slug}: {role}")
        if self.missing_for_sync:
            out.append("missing scopes for a read-only sync: " + ", ".join(sorted(self.missing_for_sync)))
        if self.missing_for_provisioning:
            out.append("missing scopes for provisioning: " + ", ".join(sorted(self.missing_for_provisioning)))
        out += [f"problem: {p}" for p in self.problems]
        out += [f"provisioning unknown: {p}" for p in self.provisioning_unknown]
        out += [f"provisioning in {slug}: {why}" for slug, why in self.provisioning_elsewhere.items()]
        out += self.notes
        if not self.can_sync:
            return [*out, "verdict: NOT ready to sync"]
        verdict = {
            "ready": "ready to sync and to provision",
            "not ready": "ready to sync, not ready to provision",
            "unknown": "ready to sync, provisioning unknown (see above)",
        }[self.provisioning]
        if self.provisioning == "ready" and self.provisioning_elsewhere:
            verdict += f" (except in {', '.join(self.provisioning_elsewhere)})"
        return [*out, f"verdict: {verdict}"]


def check_connection(client: BitbucketClient) -> CheckReport:
    api = BitbucketApi(client)
    report = CheckReport(credential_kind=client.credentials.kind)
    me: User | None = None
    try:
        me = api.current_user()
        report.identity = f"{me.display_name} {me.uuid}".strip()
    except MissingScopesError as exc:
        report.missing_for_sync.update(set(exc.required) - set(exc.granted))
    except BitbucketError as exc:
        report.problems.append(str(exc))
        return report
    try:
        report.workspaces = [(a.slug, a.administrator) for a in api.user_workspaces()]
    except BitbucketError as exc:
        report.problems.append(str(exc))
        return report
    if client.credentials.kind == "access_token":
        report.problems.append(
            "access tokens cannot read permissions: use an Atlassian API token (BITBUCKET_EMAIL + BITBUCKET_API_TOKEN)"
        )
    if not report.workspaces:
        report.problems.append("the credential sees no workspace")
    elif not report.administered:
        report.problems.append("the credential administers none of the workspaces it sees: a sync needs an owner")
    for slug in report.administered:  # every one: a verdict must not depend on the order of the list
        _probe_reads(api, slug, report)
        _probe_provisioning(api, slug, me.uuid if me else "{00000000-0000-4000-8000-000000000000}", report)
    return report


def _probe_reads(api: BitbucketApi, slug: str, report: CheckReport) -> None:
    probes = list(api.sync_read_probes(slug))
    try:
        repo = api.first_repository(slug)
    except BitbucketError:
        repo = None
    if repo:
        probes.append(("permissions-config", lambda: api.repository_user_grants(slug, repo.slug)))
    for _, call in probes:
        try:
            call()
        except MissingScopesError as exc:
            report.missing_for_sync.update(set(exc.required) - set(exc.granted))
        except BitbucketError as exc:
            report.problems.append(str(exc))


def _probe_provisioning(api: BitbucketApi, slug: str, member: str, report: CheckReport) -> None:
    """A PUT to a group that does not exist: 404 means the write would be authorised; 403 with scopes names
    them; a workspace managed from admin.atlassian.com refuses 1.0 group writes; anything else is unknown."""
    try:
        api.add_group_member(slug, PROBE_GROUP, member)
    except NotFoundError:
        pass
    except MissingScopesError as exc:
        report.missing_for_provisioning.update(set(exc.required) - set(exc.granted))
    except PermissionDeniedError as exc:
        if "admin.atlassian.com" in str(exc):
            report.provisioning_elsewhere[slug] = (
                "groups are managed from admin.atlassian.com; the 1.0 groups API refuses changes there"
            )
        else:
            report.provisioning_unknown.append(f"{slug}: {exc}")
    except BitbucketError as exc:
        report.provisioning_unknown.append(f"{slug}: {exc}")
