"""`bitbucket-access check`: who am I, which workspaces, admin or not, which scopes are missing."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from .client import BitbucketClient, BitbucketError, MissingScopesError, NotFoundError

PROBE_GROUP = "bitbucket-access-scope-probe"  # never exists: a PUT to it reveals scopes without changing anything


@dataclass
class CheckReport:
    identity: str = ""
    credential_kind: str = ""
    workspaces: list[tuple[str, bool]] = field(default_factory=list)
    missing_for_sync: set[str] = field(default_factory=set)
    missing_for_provisioning: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

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
        verdict = "ready to sync" if self.can_sync else "NOT ready to sync"
        verdict += " and to provision" if self.can_provision else (", not ready to provision" if self.can_sync else "")
        return [*out, f"verdict: {verdict}"]


def check_connection(client: BitbucketClient) -> CheckReport:
    report = CheckReport(credential_kind=client.credentials.kind)

    def probe(method: str, path: str, missing: set[str], workspace: str | None = None, ok=(200,)) -> None:
        try:
            client.request(method, path, params={"pagelen": 1} if method == "GET" else None,
                           json_body={} if method == "PUT" else None, workspace=workspace, ok=ok)  # fmt: skip
        except MissingScopesError as exc:
            missing.update(set(exc.required) - set(exc.granted))
        except NotFoundError:
            pass  # authorised, the object just does not exist (the provisioning probe)
        except BitbucketError as exc:
            report.problems.append(str(exc))

    me: dict = {}
    try:
        me = client.get("/2.0/user")
        report.identity = f"{me.get('display_name')} {me.get('uuid', '')}".strip()
    except MissingScopesError as exc:
        report.missing_for_sync.update(set(exc.required) - set(exc.granted))
    except BitbucketError as exc:
        report.problems.append(str(exc))
        return report
    try:
        report.workspaces = [
            (a["workspace"]["slug"], bool(a.get("administrator"))) for a in client.paginate("/2.0/user/workspaces")
        ]
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
        ws = quote(slug)
        if not admin:
            report.problems.append(f"not an administrator of {slug}: groups and permission lists cannot be read there")
            continue
        reads = ("/permissions", "/projects", "/permissions/repositories")
        for path in [f"/2.0/workspaces/{ws}{r}" for r in reads] + [f"/2.0/repositories/{ws}", f"/1.0/groups/{ws}"]:
            probe("GET", path, report.missing_for_sync, slug)
        try:
            repo = next(iter(client.paginate(f"/2.0/repositories/{ws}", {"pagelen": 1})), None)
        except BitbucketError:
            repo = None
        if repo:
            probe(
                "GET",
                f"/2.0/repositories/{ws}/{quote(repo['slug'])}/permissions-config/users",
                report.missing_for_sync,
                slug,
            )
        member = quote(me.get("uuid") or "{00000000-0000-4000-8000-000000000000}")
        probe("PUT", f"/1.0/groups/{ws}/{PROBE_GROUP}/members/{member}", report.missing_for_provisioning, slug)
        break  # scopes are per credential: one administered workspace tells all
    return report
