"""`bitbucket-access check`: who am I, which workspaces (administered or not), which scopes are missing, and
what a sync and provisioning would do, whatever the order Bitbucket lists the workspaces in.

`check` says what `sync` would do: "NOT ready to sync" only when a sync would fail (a missing scope, a
workspace filter it cannot honour, a read it cannot make); what a sync would only leave out (a workspace it
does not administer or whose groups it cannot read, list entries without the identity the model needs) is a
warning with counts. Provisioning gets a state per workspace, and the verdict is "ready" only where a
workspace can be provisioned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .client import BitbucketApi, BitbucketClient, BitbucketError, MissingScopesError, NotFoundError
from .client.admin_api import AtlassianAdminApi
from .client.api import SkippedEntry, User, administered_from_admin_atlassian
from .client.client import endpoint_family
from .client.errors import PermissionDeniedError
from .extraction.extract import choose_workspaces, groups_refused, groups_refused_reason, names_workspace

PROBE_GROUP = (
    "bitbucket-access-scope-probe"  # never exists: a PUT to it reveals scopes without changing anything
)


@dataclass(frozen=True)
class Provisioning:
    """Whether provisioning can change one workspace's groups: `ready`, `not ready` or `unknown` (an answer
    `check` does not understand), and how or why."""

    state: str
    detail: str


@dataclass
class CheckReport:
    identity: str = ""
    credential_kind: str = ""
    workspaces: list[tuple[str, bool]] = field(default_factory=list)  # (slug, administrator)
    covered: list[str] = field(default_factory=list)  # what a sync would extract
    sync_skips: dict[str, str] = field(default_factory=dict)  # workspace -> why a sync would leave it out
    missing_for_sync: set[str] = field(default_factory=set)
    missing_for_provisioning: set[str] = field(default_factory=set)
    # Change control (branch restrictions, deploy keys) needs admin scopes; a sync without them marks it "not
    # readable" for the workspace instead of failing, so they change no verdict.
    missing_for_change_control: set[str] = field(default_factory=set)
    change_control_refused: dict[str, str] = field(default_factory=dict)  # workspace -> what Bitbucket said
    problems: list[str] = field(default_factory=list)  # each would make a sync fail
    skipped_entries: Counter = field(default_factory=Counter)  # (workspace, endpoint family, reason) -> n
    provisioning_by_workspace: dict[str, Provisioning] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # facts that change no verdict (e.g. the approver policy)
    held_back: list[str] = field(default_factory=list)  # the warehouse's newest sync, held back as suspect

    @property
    def administered(self) -> list[str]:
        return [slug for slug, admin in self.workspaces if admin]

    @property
    def can_sync(self) -> bool:
        return bool(self.covered) and not self.missing_for_sync and not self.problems

    @property
    def provisioning(self) -> str:
        """ready (every covered workspace) | partly ready | not ready | unknown"""
        states = [self._state(slug) for slug in self.covered]
        if not self.can_sync or not states:
            return "not ready"
        if all(s == "ready" for s in states):
            return "ready"
        if "ready" in states:
            return "partly ready"
        return "unknown" if "unknown" in states else "not ready"

    @property
    def can_provision(self) -> bool:
        return self.provisioning == "ready"

    def _state(self, slug: str) -> str:
        known = self.provisioning_by_workspace.get(slug)
        return known.state if known else "not ready"

    def note_skipped(self, entry: SkippedEntry) -> None:
        """`on_skip` of the probes: an entry a sync would skip, counted."""
        self.skipped_entries[(entry.workspace, endpoint_family(entry.endpoint), entry.reason)] += 1

    def lines(self) -> list[str]:
        out = [f"credential: {self.credential_kind}", f"identity: {self.identity or 'unknown'}"]
        for slug, admin in self.workspaces:
            if slug in self.covered:
                role = "administrator: synced"
            elif not admin:
                role = "member (not an administrator): skipped by a sync"
            elif slug in self.sync_skips:
                role = f"skipped by a sync: {self.sync_skips[slug]}"
            else:
                role = "administrator: left out by BITBUCKET_WORKSPACES"
            out.append(f"workspace {slug}: {role}")
        if self.missing_for_sync:
            out.append("missing scopes for a read-only sync: " + ", ".join(sorted(self.missing_for_sync)))
        if self.missing_for_provisioning:
            out.append("missing scopes for provisioning: " + ", ".join(sorted(self.missing_for_provisioning)))
        if self.missing_for_change_control:
            out.append(
                "missing scopes for change control (branch restrictions, deploy keys; a sync marks it not "
                "readable): " + ", ".join(sorted(self.missing_for_change_control))
            )
        out += [
            f"warning: {slug}: change control not readable (a sync marks it so): {why}"
            for slug, why in sorted(self.change_control_refused.items())
        ]
        out += [f"problem: {p}" for p in self.problems]
        out += [
            f"warning: {workspace}: {n} entr{'y' if n == 1 else 'ies'} of {family} in the first page "
            f"would be skipped by a sync ({reason}; it records them in raw.anomalies)"
            for (workspace, family, reason), n in sorted(self.skipped_entries.items())
        ]
        for slug in self.covered:
            known = self.provisioning_by_workspace.get(slug)
            detail = known.detail if known else "not probed (a read above failed)"
            out.append(f"provisioning in {slug}: {self._state(slug)}: {detail}")
        out += self.notes
        out += self.held_back
        if not self.can_sync:
            return [*out, "verdict: NOT ready to sync"]
        ready = [slug for slug in self.covered if self._state(slug) == "ready"]
        others = [slug for slug in self.covered if slug not in ready]
        verdict = {
            "ready": "ready to sync and to provision",
            "partly ready": f"ready to sync; ready to provision in {', '.join(ready)}, not in "
            f"{', '.join(others)} (see above)",
            "not ready": "ready to sync, not ready to provision in any workspace (see above)",
            "unknown": "ready to sync, provisioning unknown (see above)",
        }[self.provisioning]
        return [*out, f"verdict: {verdict}"]


def check_connection(
    client: BitbucketClient,
    admin_api: AtlassianAdminApi | None = None,
    admin_managed: list[str] | None = None,
    workspaces: list[str] | None = None,
    control: BitbucketClient | None = None,
    control_workspace: str | None = None,
) -> CheckReport:
    """`admin_api` and `admin_managed` as in provisioning (`provisioning/backends.py`); `workspaces` as
    BITBUCKET_WORKSPACES (a sync covers those, or every workspace the credential administers); `control` and
    `control_workspace`: the second credential of change control (BITBUCKET_CHANGE_CONTROL_TOKEN) and its
    workspace."""
    report = CheckReport(credential_kind=client.credentials.kind)
    api = BitbucketApi(client, on_skip=report.note_skipped)  # entries a sync would skip: counted, not fatal
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
        accesses = api.user_workspaces()
    except BitbucketError as exc:
        report.problems.append(str(exc))
        return report
    report.workspaces = [(a.slug, a.administrator) for a in accesses]
    if client.credentials.kind == "access_token":
        report.problems.append(
            "access tokens cannot read permissions: use an Atlassian API token (BITBUCKET_EMAIL + "
            "BITBUCKET_API_TOKEN)"
        )
    try:
        selection = choose_workspaces(accesses, workspaces)
    except BitbucketError as exc:  # the filter names a workspace a sync could not cover: it would fail
        report.problems.append(str(exc))
        return report
    report.sync_skips.update(selection.skipped)
    if not report.workspaces:
        report.problems.append("the credential sees no workspace")
    elif not report.administered:
        report.problems.append(
            "the credential administers none of the workspaces it sees: a sync needs an owner"
        )
    for access in selection.covered:  # every one: a verdict must not depend on the order of the list
        slug = access.slug
        if not _probe_groups(api, slug, report, named=bool(workspaces)):
            continue
        report.covered.append(slug)
        _probe_reads(api, slug, report)
        why = _admin_managed(api, slug, admin_managed)
        if why:
            _probe_admin_api(admin_api, slug, why, report)
        else:
            _probe_provisioning(
                api, slug, me.uuid if me else "{00000000-0000-4000-8000-000000000000}", report
            )
    if control is not None and control_workspace:
        # As a sync matches it (any case, or the workspace's {uuid}) among the workspaces it covers, so that
        # `check` probes what a sync uses.
        named = [
            a.slug
            for a in selection.covered
            if a.slug in report.covered and names_workspace(control_workspace, a)
        ]
        if named:
            _probe_control_token(api, BitbucketApi(control), named[0], report)
        else:
            report.notes.append(
                f"warning: BITBUCKET_CHANGE_CONTROL_WORKSPACE ({control_workspace.strip()}) names no "
                "workspace a sync covers: the change-control token is not used"
            )
    return report


def _probe_control_token(api: BitbucketApi, control: BitbucketApi, slug: str, report: CheckReport) -> None:
    """The second credential's reads (branch restrictions, branching model, override settings) on the first
    repository of its workspace: said in a note; a refusal is a warning, as a sync then marks that workspace's
    change control not readable."""
    name = f"change-control token (BITBUCKET_CHANGE_CONTROL_TOKEN) for {slug}"
    try:
        repo = api.first_repository(slug)
        if repo is None:
            report.notes.append(f"{name}: not probed (the workspace has no repository)")
            return
        control.branch_restrictions(slug, repo.uuid)
        control.effective_branching_model(slug, repo.uuid)
        control.override_settings(slug, repo.uuid)
    except MissingScopesError as exc:
        missing = ", ".join(sorted(set(exc.required) - set(exc.granted)))
        report.notes.append(f"warning: {name}: missing scopes {missing} (a sync marks it not readable)")
    except BitbucketError as exc:
        report.notes.append(f"warning: {name}: {exc} (a sync marks its change control not readable)")
    else:
        report.notes.append(
            f"{name}: reads its branch restrictions, branching models and override settings, on a rate "
            "limit of its own"
        )


def _probe_groups(api: BitbucketApi, slug: str, report: CheckReport, named: bool) -> bool:
    """Whether a sync would cover the workspace as far as its groups go: a workspace that refuses them is
    skipped by a sync (a problem when BITBUCKET_WORKSPACES names it, as a sync then fails)."""
    try:
        api.groups(slug)
    except MissingScopesError as exc:
        report.missing_for_sync.update(set(exc.required) - set(exc.granted))
    except BitbucketError as exc:
        if not groups_refused(exc):
            report.problems.append(str(exc))
            return True
        reason = groups_refused_reason(exc)
        if named:
            report.problems.append(f"BITBUCKET_WORKSPACES names {slug}, but {reason}")
        else:
            report.sync_skips[slug] = reason
        return False
    return True


def _admin_managed(api: BitbucketApi, slug: str, named: list[str] | None) -> str | None:
    """Why the workspace counts as administered from admin.atlassian.com, or None."""
    if named is not None:
        return "named in BITBUCKET_ADMIN_MANAGED_WORKSPACES" if slug in named else None
    try:  # the first page again: its odd entries are counted by the read probes already
        sample = BitbucketApi(api.client, on_skip=lambda entry: None).workspace_members_sample(slug)
    except BitbucketError:
        return None  # the read probes report it
    if administered_from_admin_atlassian(sample):
        return "detected: Bitbucket sends no added_on for its members"
    return None


def _probe_admin_api(admin_api: AtlassianAdminApi | None, slug: str, why: str, report: CheckReport) -> None:
    """Changes to such a workspace's groups go through the organization's Admin API: can its key make them?"""
    managed = f"administered from admin.atlassian.com ({why})"
    if admin_api is None:
        report.provisioning_by_workspace[slug] = Provisioning(
            "not ready",
            f"{managed}; set BITBUCKET_ADMIN_ORG_ID and BITBUCKET_ADMIN_API_KEY to change its groups "
            "through the Atlassian Admin API (the 1.0 groups API may refuse)",
        )
        return
    try:
        directory = admin_api.probe_write()
    except BitbucketError as exc:
        report.provisioning_by_workspace[slug] = Provisioning(
            "not ready", f"{managed}; the Atlassian Admin API refuses: {exc}"
        )
        return
    report.provisioning_by_workspace[slug] = Provisioning(
        "ready",
        f"{managed}; through the Atlassian Admin API (organization {admin_api.org_id}, directory "
        f"{directory}): the key may change group memberships",
    )


def _probe_reads(api: BitbucketApi, slug: str, report: CheckReport) -> None:
    probes = list(api.sync_read_probes(slug))
    try:
        repo = api.first_repository(slug)
    except BitbucketError:
        repo = None
    if repo:  # read by {uuid}, as a sync reads it
        probes.append(("permissions-config", lambda: api.repository_user_grants(slug, repo.uuid)))
    for _, call in probes:  # (the groups were probed first: _probe_groups)
        try:
            call()
        except MissingScopesError as exc:
            report.missing_for_sync.update(set(exc.required) - set(exc.granted))
        except BitbucketError as exc:
            report.problems.append(str(exc))
    if repo:
        _probe_change_control(api, slug, repo.uuid, repo.project_key, report)


def _probe_change_control(
    api: BitbucketApi, slug: str, repository: str, project_key: str | None, report: CheckReport
) -> None:
    """The admin-scoped reads of change control, on the first repository and its project: a missing scope or a
    refusal is reported, and is no problem for a sync (which marks the workspace's change control not
    readable)."""
    calls = [
        lambda: api.branch_restrictions(slug, repository),
        lambda: api.repository_deploy_keys(slug, repository),
    ]
    if project_key:
        calls.append(lambda: api.project_deploy_keys(slug, project_key))
    for call in calls:
        try:
            call()
        except MissingScopesError as exc:
            report.missing_for_change_control.update(set(exc.required) - set(exc.granted))
        except PermissionDeniedError as exc:
            report.change_control_refused.setdefault(slug, str(exc))
        except BitbucketError as exc:
            report.problems.append(str(exc))


def _probe_provisioning(api: BitbucketApi, slug: str, member: str, report: CheckReport) -> None:
    """A PUT to a group that does not exist: 404 means the write would be authorised; 403 with scopes names
    them; a workspace managed from admin.atlassian.com refuses 1.0 group writes; anything else is unknown."""
    via = "through the Bitbucket 1.0 groups API"
    try:
        api.add_group_member(slug, PROBE_GROUP, member)
    except NotFoundError:
        report.provisioning_by_workspace[slug] = Provisioning("ready", via)
    except MissingScopesError as exc:
        report.missing_for_provisioning.update(set(exc.required) - set(exc.granted))
        report.provisioning_by_workspace[slug] = Provisioning("not ready", f"{via}: missing scopes (above)")
    except PermissionDeniedError as exc:
        if "admin.atlassian.com" in str(exc):
            report.provisioning_by_workspace[slug] = Provisioning(
                "not ready",
                "groups are managed from admin.atlassian.com; the 1.0 groups API refuses changes there",
            )
        else:
            report.provisioning_by_workspace[slug] = Provisioning("unknown", f"{via}: {exc}")
    except BitbucketError as exc:
        report.provisioning_by_workspace[slug] = Provisioning("unknown", f"{via}: {exc}")
    else:
        report.provisioning_by_workspace[slug] = Provisioning(
            "unknown", f"{via}: the probe group {PROBE_GROUP!r} unexpectedly accepted a member"
        )
