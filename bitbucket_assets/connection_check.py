"""`bitbucket-access check`: who am I, which workspaces, admin or not, which scopes are missing."""

from __future__ import annotations

from dataclasses import dataclass, field

from .client import BitbucketApi, BitbucketClient, BitbucketError, MissingScopesError, NotFoundError
from .client.api import User

PROBE_GROUP = "bitbucket-access-scope-probe"  # never exists: a PUT to it reveals scopes without changing anything


@dataclass
class CheckReport:
    identity: str = ""
    credential_kind: str = ""
    workspaces: list[tuple[str, bool]] = field(default_factory=list)
    missing_for_sync: set[str] = field(default_factory=set)
    missing_for_provisioning: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts that change no verdict (e.g. the approver policy)

    @property
    def can_sync(self) -> bool:
        return bool(self.workspaces) and not self.missing_for_sync and not self.problems

    @property
    def can_provision(self) -> bool:
        return self.can_sync and not self.missing_for_provisioning

    def lines(self) -> list[str]:
        out = [f"credential: {self.credential_kind}", f"identity: {self.identity or 'unknown'}"]
        for slug, admin in self.workspaces:
            out.append(f"workspace {slug}: {'administrator' if admin else 'member (not an administrator)'}")
        if self.missing_for_sync:
            out.append("missing scopes for a read-only sync: " + ", ".join(sorted(self.missing_for_sync)))
        if self.missing_for_provisioning:
            out.append("missing scopes for provisioning: " + ", ".join(sorted(self.missing_for_provisioning)))
        out += [f"problem: {p}" for p in self.problems]
        out += self.notes
        verdict = "ready to sync" if self.can_sync else "NOT ready to sync"
        verdict += " and to provision" if self.can_provision else (", not ready to provision" if self.can_sync else "")
        return [*out, f"verdict: {verdict}"]


def check_connection(client: BitbucketClient) -> CheckReport:
    api = BitbucketApi(client)
    report = CheckReport(credential_kind=client.credentials.kind)

    def probe(missing: set[str], call, *args) -> None:
        try:
            call(*args)
        except MissingScopesError as exc:
            missing.update(set(exc.required) - set(exc.granted))
        except NotFoundError:
            pass  # authorised, the object just does not exist (the provisioning probe)
        except BitbucketError as exc:
            report.problems.append(str(exc))

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
        return report
    for slug, admin in report.workspaces:
        if not admin:
            report.problems.append(f"not an administrator of {slug}: groups and permission lists cannot be read there")
            continue
        for _, call in api.sync_read_probes(slug):
            probe(report.missing_for_sync, call)
        try:
            repo = api.first_repository(slug)
        except BitbucketError:
            repo = None
        if repo:
            probe(report.missing_for_sync, api.repository_user_grants, slug, repo.slug)
        member = me.uuid if me else "{00000000-0000-4000-8000-000000000000}"
        probe(report.missing_for_provisioning, api.add_group_member, slug, PROBE_GROUP, member)
        break  # scopes are per credential: one administered workspace tells all
    return report
