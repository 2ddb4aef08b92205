"""`bitbucket-access check`: who am I, which workspaces (administered or not), which scopes are missing, and
separate verdicts for syncing and for provisioning, whatever the order Bitbucket lists the workspaces in."""

from __future__ import annotations

from dataclasses import dataclass, field

from .client import BitbucketApi, BitbucketClient, BitbucketError, MissingScopesError, NotFoundError
from .client.admin_api import AtlassianAdminApi
from .client.api import User, administered_from_admin_atlassian
from .client.errors import PermissionDeniedError

PROBE_GROUP = (
    "bitbucket-access-scope-probe"  # never exists: a PUT to it reveals scopes without changing anything
)


@dataclass
class CheckReport:
    identity: str = ""
    credential_kind: str = ""
    workspaces: list[tuple[str, bool]] = field(default_factory=list)  # (slug, administrator)
    missing_for_sync: set[str] = field(default_factory=set)
    missing_for_provisioning: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # each makes the sync not ready
    provisioning_unknown: list[str] = field(default_factory=list)  # probe answers check does not understand
    # workspace -> why it cannot be changed
    provisioning_elsewhere: dict[str, str] = field(default_factory=dict)
    # workspace -> Admin API that changes it
    provisioning_admin_api: dict[str, str] = field(default_factory=dict)
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
        out += [f"provisioning in {slug}: {how}" for slug, how in self.provisioning_admin_api.items()]
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


def check_connection(
    client: BitbucketClient,
    admin_api: AtlassianAdminApi | None = None,
    admin_managed: list[str] | None = None,
) -> CheckReport:
    """`admin_api` and `admin_managed` as in provisioning (`provisioning/backends.py`)."""
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
            "access tokens cannot read permissions: use an Atlassian API token (BITBUCKET_EMAIL + "
            "BITBUCKET_API_TOKEN)"
        )
    if not report.workspaces:
        report.problems.append("the credential sees no workspace")
    elif not report.administered:
        report.problems.append(
            "the credential administers none of the workspaces it sees: a sync needs an owner"
        )
    for slug in report.administered:  # every one: a verdict must not depend on the order of the list
        _probe_reads(api, slug, report)
        why = _admin_managed(api, slug, admin_managed)
        if why:
            _probe_admin_api(admin_api, slug, why, report)
        else:
            _probe_provisioning(
                api, slug, me.uuid if me else "{00000000-0000-4000-8000-000000000000}", report
            )
    return report


def _admin_managed(api: BitbucketApi, slug: str, named: list[str] | None) -> str | None:
    """Why the workspace counts as administered from admin.atlassian.com, or None."""
    if named is not None:
        return "named in BITBUCKET_ADMIN_MANAGED_WORKSPACES" if slug in named else None
    try:
        sample = api.workspace_members_sample(slug)
    except BitbucketError:
        return None  # the read probes report it
    if administered_from_admin_atlassian(sample):
        return "detected: Bitbucket sends no added_on for its members"
    return None


def _probe_admin_api(admin_api: AtlassianAdminApi | None, slug: str, why: str, report: CheckReport) -> None:
    """Changes to such a workspace's groups go through the organization's Admin API: can its key make them?"""
    managed = f"administered from admin.atlassian.com ({why})"
    if admin_api is None:
        report.provisioning_elsewhere[slug] = (
            f"{managed}; set BITBUCKET_ADMIN_ORG_ID and BITBUCKET_ADMIN_API_KEY to change its groups "
            "through the Atlassian Admin API (the 1.0 groups API may refuse)"
        )
        return
    try:
        directory = admin_api.probe_write()
    except BitbucketError as exc:
        report.provisioning_elsewhere[slug] = f"{managed}; the Atlassian Admin API refuses: {exc}"
        return
    report.provisioning_admin_api[slug] = (
        f"{managed}; through the Atlassian Admin API (organization {admin_api.org_id}, directory "
        f"{directory}): the key may change group memberships"
    )


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
