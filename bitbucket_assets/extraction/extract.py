"""Pulling one snapshot of a Bitbucket Cloud organisation through the typed API into a `SnapshotWriter`.

Calls per workspace: `/2.0/user/workspaces` (once), `/permissions` (members with their roles; the
same users as `/members`, so `/members` is not called), `/1.0/groups/{ws}` (groups with members embedded),
projects and repositories at pagelen 100, and one call per permissions-config list (project and
repository, users and groups), run concurrently. Users come from every payload that shows one (member list,
1.0 group members, permission lists, the effective list): no call per user.
Nothing here calls an endpoint removed by CHANGE-2770 (the paths live in `client/api.py`).

Work is committed in checkpoints (a workspace's members and groups; then each page of projects,
repositories and effective permissions with everything fetched for it), so a sync that was killed or
ran out of retries resumes where it stopped and re-fetches at most the page that was in flight.

Repositories' permission lists are read in two passes (extraction/refresh.py): the first reads those that are
new or due while Bitbucket's effective list is fetched beside it (the other rate-limit bucket); then the
refresh plan names the repositories whose effective access changed, they are read, and every other
repository's lists are carried forward from the sync that last read them. `--full` reads every list.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import NoneType
from typing import Any

from ..client import (
    BitbucketApi,
    BitbucketClient,
    BitbucketError,
    EndpointNotFoundError,
    EndpointRemovedError,
    NotFoundError,
    PermissionDeniedError,
)
from ..client.admin_api import AtlassianAdminApi
from ..client.api import (
    USER_WORKSPACES,
    EffectivePermission,
    Group,
    GroupGrant,
    Page,
    Project,
    Repository,
    SkippedEntry,
    User,
    UserGrant,
    WorkspaceAccess,
    WorkspaceMember,
    administered_from_admin_atlassian,
)
from .change_control import READABLE as CHANGE_CONTROL_READABLE
from .change_control import STAGE as CHANGE_CONTROL_STAGE
from .change_control import ChangeControlReader, RulesPrefetch
from .change_control import plan as plan_change_control
from .gone import Gone, Listed, read_or_gone
from .prefetch import Prefetch
from .progress import Listener, SyncProgress
from .refresh import (
    RefreshPolicy,
    WorkspaceRefresh,
    changed_repositories,
    last_effective_pairs,
    lists_instead_of_effective,
    plan_workspace,
    previous_sync,
    refresh_summary,
)
from .snapshot import SnapshotWriter
from .vanished import Breaker

log = logging.getLogger(__name__)

CLASSIC_GROUPS = "bitbucket-1.0"  # raw.workspaces.group_source: where a workspace's group members were read
ADMIN_GROUPS = "atlassian-admin-api"
BULK_GROUP_LISTS = "bulk: the 1.0 group-privileges list"  # raw.workspaces.repository_group_lists
# Each commit costs more than writing a page of 100 rows; a resumed sync reads at most this many pages again.
EFFECTIVE_PAGES_PER_CHECKPOINT = 10
# How far Bitbucket's clock (a repository's `created_on`) may be behind ours: a repository created up to this
# long before the bulk group list was read is treated as created after it, and its groups list is read on its
# own.
CLOCK_SKEW = timedelta(minutes=15)


@dataclass
class ExtractionOptions:
    workspaces: list[str] | None = None  # slugs or {uuid}s; None: every workspace the credential sees
    effective_permissions: bool = True  # Bitbucket's own effective permissions, when the caller is admin
    progress: list[Listener] = field(default_factory=list)  # told at every checkpoint (progress.py)
    # Workspaces administered from admin.atlassian.com read their group members from the organization's groups
    # through the Admin API, when one is given. `admin_managed`: their slugs; None: detected (no member has
    # `added_on`, which Bitbucket omits for such workspaces).
    admin_api: AtlassianAdminApi | None = None
    admin_managed: list[str] | None = None
    refresh: RefreshPolicy = field(default_factory=RefreshPolicy)  # which repositories' lists are read again
    # The circuit breaker on disappearance (vanished.py), and whether this sync accepts what it would hold
    # back (`sync --accept-vanished`): publish a held snapshot, or publish despite the breaker.
    breaker: Breaker = field(default_factory=Breaker)
    accept_vanished: bool = False
    # A second credential for change control (a workspace access token, whose rate limit is its own): the
    # branch restrictions, effective branching models and override settings of `change_control_workspace` are
    # read with it, beside the main credential's reads; deploy keys stay on the main credential (the spec
    # lists only API tokens for them). Its calls are counted with the main client's.
    change_control_client: BitbucketClient | None = None
    change_control_workspace: str | None = None


NOT_ADMINISTERED = (
    f"not an administrator ({USER_WORKSPACES} says administrator: false): its members, groups and permission "
    "lists answer 403 to this credential"
)


@dataclass
class WorkspaceSelection:
    """The workspaces a sync covers, and those it leaves out with the reason (never silently)."""

    covered: list[WorkspaceAccess]
    skipped: dict[str, str]  # slug -> reason
    # slug -> lists read per reason and carried (refresh.py)
    refresh: dict[str, dict] = field(default_factory=dict)


def select_workspaces(api: BitbucketApi, wanted: list[str] | None) -> WorkspaceSelection:
    """`/2.0/user/workspaces`, filtered by slug or `{uuid}` (`choose_workspaces`)."""
    return choose_workspaces(api.user_workspaces(), wanted)


def choose_workspaces(accesses: list[WorkspaceAccess], wanted: list[str] | None) -> WorkspaceSelection:
    """The workspaces a sync covers: by default every workspace the credential administers; the others are
    skipped with the reason. A filter entry the credential cannot see, or does not administer, is a
    configuration error raised before anything else is fetched."""
    if not wanted:
        return WorkspaceSelection(
            [a for a in accesses if a.administrator],
            {a.slug: NOT_ADMINISTERED for a in accesses if not a.administrator},
        )
    found, missing = [], []
    for entry in wanted:
        key = entry.strip()
        braced = key if key.startswith("{") else "{" + key + "}"
        match = next((a for a in accesses if key == a.slug or braced == a.uuid), None)
        (found.append(match) if match else missing.append(key))
    if missing:
        visible = ", ".join(a.slug for a in accesses) or "none"
        raise PermissionDeniedError(
            f"BITBUCKET_WORKSPACES names {', '.join(missing)}, which this credential cannot see (visible: "
            f"{visible}) — correct BITBUCKET_WORKSPACES, or leave it unset to sync every workspace the "
            "credential administers",
            endpoint=USER_WORKSPACES,
        )
    refused = [a.slug for a in found if not a.administrator]
    if refused:
        raise PermissionDeniedError(
            f"BITBUCKET_WORKSPACES names {', '.join(refused)}, which this credential does not administer: a "
            "sync needs an administrator's credential there (or leave it out of BITBUCKET_WORKSPACES)",
            endpoint=USER_WORKSPACES,
        )
    return WorkspaceSelection(found, {})


def groups_refused(exc: BitbucketError) -> bool:
    """Whether an error reading `/1.0/groups/{workspace}` is that workspace refusing it (403, 404, 405, 410,
    or no API hosted there), rather than a credential without the scope or a failure a retry may fix."""
    return isinstance(
        exc, PermissionDeniedError | NotFoundError | EndpointNotFoundError | EndpointRemovedError
    ) or (type(exc) is BitbucketError and exc.status == 405)


def groups_refused_reason(exc: BitbucketError) -> str:
    return (
        f"its groups cannot be read ({exc}): without them every access through a group would be missing, "
        "so the workspace keeps its last observed state"
    )


def read_groups(
    api: BitbucketApi, writer: SnapshotWriter, selection: WorkspaceSelection, named: bool
) -> dict[str, list[Group]]:
    """Every covered workspace's groups, read before anything else of any workspace (a resumed sync skips the
    workspaces whose groups it committed). A workspace that refuses them is skipped with the reason, like one
    the credential does not administer, and the others go on; named in BITBUCKET_WORKSPACES, it is a
    configuration error. The Atlassian Admin API is not asked instead: it lists the organization's groups, not
    which of them a workspace uses, nor the slugs its permission lists name."""
    groups: dict[str, list[Group]] = {}
    for access in list(selection.covered):
        if writer.checkpoint_done(access.slug, "members"):
            continue
        try:
            groups[access.slug] = api.groups(access.slug)
        except BitbucketError as exc:
            if not groups_refused(exc):
                raise
            reason = groups_refused_reason(exc)
            if named:
                raise PermissionDeniedError(
                    f"BITBUCKET_WORKSPACES names {access.slug}, but {reason} (or leave it out of "
                    "BITBUCKET_WORKSPACES)",
                    endpoint=exc.endpoint,
                    status=exc.status,
                    workspace=access.slug,
                ) from None
            selection.covered.remove(access)
            selection.skipped[access.slug] = reason
    return groups


def names_workspace(configured: str | None, access: WorkspaceAccess) -> bool:
    """Whether BITBUCKET_CHANGE_CONTROL_WORKSPACE names this workspace: by slug in any case (Bitbucket's
    slugs are lower case), or by `{uuid}`, with or without braces."""
    if not configured:
        return False
    wanted = configured.strip().strip("{}").lower()
    return wanted in {access.slug.lower(), (access.uuid or "").strip("{}").lower()} - {""}


def extract_snapshot(
    api: BitbucketApi, writer: SnapshotWriter, options: ExtractionOptions
) -> WorkspaceSelection:
    """Extract every selected workspace; returns what was covered and skipped. Raises on anything
    incomplete."""
    selection = select_workspaces(api, options.workspaces)
    groups = read_groups(api, writer, selection, named=bool(options.workspaces))
    for slug, reason in selection.skipped.items():
        log.warning("workspace %s skipped: %s", slug, reason)
    progress = SyncProgress(api.client, options.progress)
    effective = _EffectiveLists()
    extractors: list[_WorkspaceExtractor] = []
    failed = False
    with ThreadPoolExecutor(max_workers=api.client.max_workers, thread_name_prefix="bitbucket") as pool:
        try:
            lists_instead = lists_instead_of_effective(
                writer.con, [a.slug for a in selection.covered], options.refresh, api.client.requests_per_hour
            )
            extractors = [
                _WorkspaceExtractor(api, writer, pool, access, options, progress, lists_instead, effective)
                for access in selection.covered
            ]
            if options.change_control_client is not None and not any(
                names_workspace(options.change_control_workspace, a) for a in selection.covered
            ):
                log.warning(
                    "BITBUCKET_CHANGE_CONTROL_WORKSPACE names %s, which this sync does not cover: its token "
                    "reads nothing, the main credential reads every workspace's rules",
                    options.change_control_workspace,
                )
            for extractor in extractors:
                extractor.groups = groups.get(extractor.slug)
                extractor.start_rules_prefetch()
            for extractor in extractors:
                extractor.run()
            # Who can change production code, on its rolling schedule, in the repositories bucket while the
            # effective lists (the other bucket) are still being fetched; a workspace whose rules a second
            # credential reads ahead (`RulesPrefetch`) last, to give those reads the most time.
            # The workspaces whose rules the main credential reads share its day (`plan_change_control`).
            pooled = [e.slug for e in extractors if e.reads_rules_with_main_credential()]
            for extractor in sorted(extractors, key=lambda e: e.rules_prefetch is not None):
                extractor.change_control(pooled if extractor.slug in pooled else ())
            effective.drain()
            for extractor in extractors:  # every effective list is in: the plan can compare
                extractor.effective_read()
                extractor.refresh_changed()
            selection.refresh = refresh_summary(writer.con, writer.sync_id, [e.refresh for e in extractors])
        except BaseException:
            # workers waiting on pacing or backoff stop now instead of finishing their waits
            api.client.interrupt()
            failed = True
            raise
        finally:
            effective.close()
            for extractor in extractors:
                if extractor.rules_prefetch is not None:
                    extractor.rules_prefetch.close(interrupt=failed)
    return selection


class _EffectiveLists:
    """The effective lists being fetched beside the sync's other work, written one workspace after another.

    A workspace's effective list is started once its members are read and goes on while the next workspaces
    are extracted: the other bucket (effective lists) and the repositories bucket (lists) are busy at once
    across workspaces, so a day lasts about as long as the busier bucket's calls rather than the sum, per
    workspace, of the longer one. Only the oldest list is written (its later ones wait, a few pages fetched
    ahead), so an `effective` checkpoint commits one workspace's rows and no other's."""

    def __init__(self) -> None:
        self.waiting: deque[tuple[_WorkspaceExtractor, Prefetch]] = deque()

    @property
    def active(self) -> bool:
        return bool(self.waiting)

    def add(self, extractor: _WorkspaceExtractor, pages: Prefetch) -> None:
        self.waiting.append((extractor, pages))

    def ready(self) -> None:
        """Write the pages fetched so far. On a simulated clock, first let the list being written catch up
        with the sync's time (`Prefetch.catch_up`): its pages take their turn in the bucket before the sync's
        later calls."""
        while self.waiting:
            extractor, pages = self.waiting[0]
            pages.catch_up()
            extractor.write_effective_pages(pages.ready())
            if not pages.finished:
                if not pages.behind():
                    return
                continue  # it had filled its queue: written now, it goes on
            self.waiting.popleft()
            pages.close()

    def drain(self) -> None:
        """Write every remaining page, waiting for each."""
        while self.waiting:
            extractor, pages = self.waiting[0]
            extractor.write_effective_pages(pages.rest())
            self.waiting.popleft()
            pages.close()

    def close(self) -> None:
        while self.waiting:
            self.waiting.popleft()[1].close()


class _NotFetched(Exception):
    """A list left out because another list of the same page failed."""


@dataclass(frozen=True)
class _ListTarget:
    """A project or repository whose permission lists are read, the key columns of its rows, and why it is
    read (`read_reason`; None for projects, which are read every time)."""

    resource: Listed
    keys: dict
    reason: str | None


class _WorkspaceExtractor:
    def __init__(
        self,
        api: BitbucketApi,
        writer: SnapshotWriter,
        pool,
        access: WorkspaceAccess,
        options,
        progress: SyncProgress,
        lists_instead: dict[str, str],
        effective: _EffectiveLists,
    ):
        self.api, self.writer, self.pool, self.options = api, writer, pool, options
        self.effective = effective  # every workspace's effective list fetched beside, written in turn
        self.progress = progress
        # Every repository's group grants from one bulk call, or None: one groups list per repository.
        self.repository_groups: dict[str, list[GroupGrant]] | None = None
        self.bulk_read_at: datetime | None = None  # when that call was made (`_created_after_bulk`)
        self.admin = access.administrator
        self.slug, self.access = access.slug, access
        self.base: dict[str, Any] = {}
        self.effective_list = "read"  # or `not read: <why>` (_decide_effective)
        # why this workspace reads its lists instead, or None
        self.lists_instead = lists_instead.get(self.slug)
        self.refresh = WorkspaceRefresh(self.slug, "full")
        self.effective_unsaved = 0  # effective pages written since its last checkpoint
        self.gone: set[str] = set()  # repositories deleted since they were listed (_resource_gone)
        self.groups: list[Group] | None = None  # read before every workspace's members (read_groups)
        self.rules_prefetch: RulesPrefetch | None = None  # rules read ahead by a second credential

    def run(self) -> None:
        """The first pass: members and groups, projects, repositories (the lists that are new or due) and, on
        a thread of its own, Bitbucket's effective list, which goes on beside the next workspaces
        (`_EffectiveLists`)."""
        if self.writer.checkpoint_done(self.slug, "members"):  # resumed: the workspace row is committed
            self.base = {"workspace_uuid": self.writer.workspace_uuid(self.slug), "workspace_slug": self.slug}
        else:
            self._members_and_groups()
            self.writer.checkpoint(self.slug, "members", None)
            self.progress.stage_done(self.slug, "members")
        self._decide_effective()
        if (pages := self._effective_prefetch()) is not None:
            self.effective.add(self, pages)
        self._paged("projects", self.api.project_pages, self._projects_page)
        if self.writer.resume_point(self.slug, "repositories") != "":
            self.repository_groups = self._bulk_group_privileges()
        self.refresh = plan_workspace(
            self.writer.con, self.writer.sync_id, self.slug, self.options.refresh, self.effective_list
        )
        self._paged("repositories", self.api.repository_pages, self._repositories_page)

    def _rules_api(self) -> BitbucketApi:
        """The credential that reads this workspace's rule lists: the second one where it is meant for it."""
        control = self.options.change_control_client
        if control is not None and names_workspace(self.options.change_control_workspace, self.access):
            return BitbucketApi(control, on_skip=self.api.on_skip)
        return self.api

    def start_rules_prefetch(self) -> None:
        """With a second credential for this workspace, its rule lists are read from the sync's start, beside
        everything else (`RulesPrefetch`), for the repositories the previous sync listed; the first sync of a
        workspace reads them in its change-control stage."""
        rules_api = self._rules_api()
        previous = previous_sync(self.writer.con, self.slug)
        if (
            rules_api is self.api
            or previous is None
            or self.writer.checkpoint_done(self.slug, CHANGE_CONTROL_STAGE)
        ):
            return
        policy = self.options.refresh
        targets, _ = plan_change_control(
            self.writer.con,
            self.writer.sync_id,
            self.slug,
            policy.change_control_days,
            policy.full,
            listed_in=previous,
        )
        self.rules_prefetch = RulesPrefetch(self.api, rules_api, self.slug, targets)

    def effective_read(self) -> None:
        """Once the effective list is in: record its size, the next sync's estimate of its cost."""
        if self.effective_list == "read":
            self.writer.set_workspace_field(
                self.slug,
                "effective_pairs",
                self.writer.counted("effective_repository_permissions", self.slug),
            )

    def refresh_changed(self) -> None:
        """The second pass: read the repositories whose effective access the plan says changed, then carry
        every other repository's lists forward. Committed in batches; a resumed sync asks the plan again, and
        the plan leaves out what this sync has read."""
        if self.writer.checkpoint_done(self.slug, "refresh"):
            return
        if self.refresh.incremental:
            changed = changed_repositories(self.writer.con, self.writer.sync_id, self.slug)
            if changed:
                log.info(
                    "workspace %s: %d repositories' effective access changed; reading their lists",
                    self.slug,
                    len(changed),
                )
            for start in range(0, len(changed), 100):
                targets = [
                    self._repository_target(uuid, slug, reason)
                    for uuid, slug, reason in changed[start : start + 100]
                ]
                self._permission_lists(targets, self._repository_lists())
                self.writer.checkpoint(self.slug, "refresh", f"after {start + len(targets)}")
        self.writer.carry_forward(self.refresh)
        self.writer.checkpoint(self.slug, "refresh", None)

    def reads_rules_with_main_credential(self) -> bool:
        """Whether the main credential reads this workspace's rules, and did in its last sync (a workspace
        where Bitbucket refused them would otherwise keep a place in the plan it never uses)."""
        if self._rules_api() is not self.api:
            return False
        previous = previous_sync(self.writer.con, self.slug)
        row = self.writer.con.execute(
            "SELECT change_control FROM raw.workspaces WHERE sync_id = ? AND workspace_slug = ?",
            [previous, self.slug],
        ).fetchone()
        # "readable", or "readable; project deploy keys not readable: ..." (the repositories' lists were read)
        return row is None or row[0] is None or row[0].startswith(CHANGE_CONTROL_READABLE)

    def change_control(self, shared_with: Sequence[str] = ()) -> None:
        """This workspace's change-control stage; `shared_with`: the workspaces whose day it shares."""
        policy = self.options.refresh
        ChangeControlReader(
            self.api,
            self.rules_prefetch.rules_api if self.rules_prefetch is not None else self._rules_api(),
            self.writer,
            self.pool,
            self.slug,
            self.base,
            policy.change_control_days,
            policy.full,
            self._resource_gone,
            self.progress,
            lambda futures: self._effective_ready(waiting_for=futures),
            self.rules_prefetch,
            shared_with,
        ).run()

    def _decide_effective(self) -> None:
        """Read Bitbucket's effective list (where the credential administers the workspace), unless reading
        every repository's lists is cheaper or shortens the day (refresh.lists_instead_of_effective); the
        workspace's row says which (`raw.workspaces.effective_list`)."""
        if not self.options.effective_permissions:
            why = "not read: switched off (ExtractionOptions.effective_permissions)"
        elif not self.admin:
            why = "not read: the credential does not administer this workspace"
        elif self.lists_instead:
            why = (
                f"not read: {self.lists_instead}; every repository's lists are read instead "
                "(nothing reconciled)"
            )
        else:
            why = "read"
        self.effective_list = why
        self.writer.set_workspace_field(self.slug, "effective_list", why)
        # the last known size, for the next sync's estimate (refresh.lists_instead_of_effective)
        if why != "read":
            self.writer.set_workspace_field(
                self.slug, "effective_pairs", last_effective_pairs(self.writer.con, self.slug)
            )

    def _effective_prefetch(self) -> Prefetch | None:
        if self.effective_list != "read":
            return None
        start = self.writer.resume_point(self.slug, "effective")
        if start == "":
            return None
        pages = self.api.effective_permission_pages(self.slug, start)
        return Prefetch(pages, self.api.client.clock, name=f"effective-{self.slug}")

    def write_effective_pages(self, pages: Iterator[Page]) -> None:
        """Effective-list pages, committed every `EFFECTIVE_PAGES_PER_CHECKPOINT` pages and at the last: a
        resumed sync reads at most that many again."""
        for page in pages:
            self._effective_page(page.items)
            self.effective_unsaved += 1
            if page.next_url is None or self.effective_unsaved >= EFFECTIVE_PAGES_PER_CHECKPOINT:
                self.writer.checkpoint(self.slug, "effective", page.next_url)
                self.effective_unsaved = 0
            self.progress.page(self.slug, "effective", page, 0)

    def _paged(self, stage: str, pages: Callable[[str, str | None], Iterator[Page]], handle) -> None:
        """Each page and what it needs are committed together with the `next` link to continue from. The
        effective-list pages fetched beside are written as they arrive, each with its own checkpoint."""
        start = self.writer.resume_point(self.slug, stage)
        if start == "":
            return  # this stage finished before the previous run stopped
        # Per entry: a project's two permission lists; a repository's users list, and its groups list unless
        # the workspace's group grants came in bulk (an estimate: an incremental sync reads fewer).
        lists = {"projects": 2, "repositories": 1 if self.repository_groups is not None else 2}.get(stage, 0)
        for page in pages(self.slug, start):
            handle(page.items)
            self.writer.checkpoint(self.slug, stage, page.next_url)
            self.progress.page(self.slug, stage, page, lists)
            self._effective_ready()

    def _effective_ready(self, waiting_for: list[Future] | None = None) -> None:
        """Write the effective-list pages fetched so far; with `waiting_for`, keep doing so until those are
        done."""
        pending = set(waiting_for or ())
        while True:
            self.effective.ready()
            if not pending:
                return
            done, pending = wait(
                pending, timeout=0.05 if self.effective.active else None, return_when=FIRST_EXCEPTION
            )
            if any(f.exception() is not None for f in done):
                return  # the caller raises it; the rest are interrupted with the client

    def _members_and_groups(self) -> None:
        add, slug = self.writer.add, self.slug
        ws = self.api.workspace(slug)
        self.base = {"workspace_uuid": ws.uuid, "workspace_slug": slug}
        base = self.base
        members = self.api.workspace_members(slug)
        two_step, two_step_source = self._two_step(members)
        org_groups = self._org_groups(members)
        add(
            "workspaces",
            {
                **base,
                "name": ws.name,
                "is_private": ws.is_private,
                "administrator": self.admin,
                "created_on": ws.created_on,
                "raw": ws.raw,
                "group_source": CLASSIC_GROUPS if org_groups is None else ADMIN_GROUPS,
                "two_step_source": two_step_source,
            },
        )
        for m in members:
            user = m.user
            self._saw(user, "workspace_members")
            add(
                "workspace_members",
                {
                    **base,
                    "user_uuid": user.uuid,
                    "account_id": user.account_id,
                    "permission": m.permission,
                    "added_on": m.added_on,
                    "last_accessed": m.last_accessed,
                    "raw": m.raw,
                    "has_2fa_enabled": two_step.get(user.uuid),
                },
            )
        for g in self.groups if self.groups is not None else self.api.groups(slug):
            group_members = g.members if org_groups is None else org_groups.members(g)
            add(
                "groups",
                {
                    **base,
                    "group_slug": g.slug,
                    "name": g.name,
                    "default_permission": g.permission,
                    "auto_add": g.auto_add,
                    "member_count": len(group_members),
                    "raw": g.raw,
                },
            )
            for member in group_members:
                self._saw(member, "group_members")
                add(
                    "group_members",
                    {
                        **base,
                        "group_slug": g.slug,
                        "user_uuid": member.uuid,
                        "account_id": member.account_id,
                        "display_name": member.display_name,
                        "raw": member.raw,
                    },
                )

    def _two_step(self, members: list[WorkspaceMember]) -> tuple[dict[str, bool | None], str]:
        """Each member's two-step verification, and where it came from: `/permissions` (asked for with
        `fields`), else `/members` (the list Atlassian's answer names: one more read, only where
        `/permissions` ignored the field), else `not reported` (every member's is then unknown)."""
        if any(m.has_2fa_reported for m in members) or not members:
            return {m.user.uuid: m.has_2fa_enabled for m in members}, "permissions"
        listed = self.api.workspace_members_2fa(self.slug)
        if any(m.has_2fa_reported for m in listed):
            return {m.user.uuid: m.has_2fa_enabled for m in listed}, "members"
        return {}, "not reported"

    def _org_groups(self, members: list[WorkspaceMember]) -> _OrgGroupMembers | None:
        """The Admin API's view of the groups of a workspace administered from admin.atlassian.com, or None:
        read them from `/1.0/groups` (Atlassian does not document what that returns for such workspaces)."""
        admin, named = self.options.admin_api, self.options.admin_managed
        managed = self.slug in named if named is not None else administered_from_admin_atlassian(members)
        if admin is None or not managed:
            return None
        return _OrgGroupMembers(admin, self.api, self.writer, self.slug, members)

    def _saw(self, user: User, source: str) -> None:
        """A payload of `source` (identities.SOURCES) showed a user: members, and also people who hold access
        without membership (outside collaborators, app users, former users). The sync's directory merges every
        sighting when the snapshot is finished."""
        self.writer.saw(user, source, self.slug)

    def _projects_page(self, projects: list[Project]) -> None:
        targets = []
        for p in projects:
            keys = {"project_uuid": p.uuid, "project_key": p.key}
            self.writer.add(
                "projects",
                {
                    **self.base,
                    **keys,
                    "name": p.name,
                    "is_private": p.is_private,
                    "created_on": p.created_on,
                    "updated_on": p.updated_on,
                    "raw": p.raw,
                },
            )
            targets.append(_ListTarget(Listed("project", self.slug, p.key, p.uuid), keys, None))
        lists = {"users": self.api.project_user_grants, "groups": self.api.project_group_grants}
        self._permission_lists(targets, lists)

    def _repositories_page(self, repositories: list[Repository]) -> None:
        targets, late, bulk = [], [], self.repository_groups
        for r in repositories:
            keys = {"repository_uuid": r.uuid, "repository_slug": r.slug}
            self.writer.add(
                "repositories",
                {
                    **self.base,
                    **keys,
                    "full_name": r.full_name,
                    "name": r.name,
                    "project_uuid": r.project_uuid,
                    "project_key": r.project_key,
                    "is_private": r.is_private,
                    "created_on": r.created_on,
                    "updated_on": r.updated_on,
                    "raw": r.raw,
                },
            )
            reason = self.refresh.reason(r.uuid)
            if bulk is not None and self._created_after_bulk(r):
                # The bulk answer predates it, yet groups with `auto_add` reach it from birth: both its lists.
                why = reason or "new: created after the bulk group list was read"
                late.append(self._repository_target(r.uuid, r.slug, why))
                continue
            if bulk is not None:  # every repository's group grants are today's, from the one bulk call
                self._write_list("repository", r.uuid, keys, "groups", bulk.get(r.slug, []), "bulk")
            if reason is not None:  # else: the plan decides after the effective list (refresh_changed)
                targets.append(self._repository_target(r.uuid, r.slug, reason))
        self._permission_lists(targets, self._repository_lists())
        if late:
            self._permission_lists(
                late, {"users": self.api.repository_user_grants, "groups": self.api.repository_group_grants}
            )

    def _repository_target(self, uuid: str, slug: str, reason: str | None) -> _ListTarget:
        return _ListTarget(
            Listed("repository", self.slug, slug, uuid),
            {"repository_uuid": uuid, "repository_slug": slug},
            reason,
        )

    def _created_after_bulk(self, repository: Repository) -> bool:
        """Created (by Bitbucket's `created_on`, less `CLOCK_SKEW`) after the bulk group list was read, which
        on a sync that takes hours happens to a few repositories a day."""
        if self.bulk_read_at is None or not repository.created_on:
            return False
        try:
            created = datetime.fromisoformat(repository.created_on)
        except ValueError:
            return False  # not a timestamp: nothing says it is late, and the bulk answer stands
        return created.tzinfo is not None and created >= self.bulk_read_at - CLOCK_SKEW

    def _repository_lists(self) -> dict[str, Callable]:
        """The per-repository lists to read: users, and groups unless they came in bulk."""
        lists = {"users": self.api.repository_user_grants}
        if self.repository_groups is None:
            lists["groups"] = self.api.repository_group_grants
        return lists

    def _bulk_group_privileges(self) -> dict[str, list[GroupGrant]] | None:
        """`/1.0/group-privileges/{workspace}`: the group grants of every repository in one call instead of
        one per repository. Where Bitbucket refuses it (404, 405, 410, 403), the per-repository lists are read
        instead, and the workspace's row in the snapshot says which (`raw.workspaces.repository_group_lists`).
        """
        self.bulk_read_at = self.api.client.clock.now()
        try:
            grants, source = self.api.group_privileges(self.slug), BULK_GROUP_LISTS
        except BitbucketError as exc:
            # A routing 404 here says the bulk endpoint is not served (any more): the per-repository lists
            # give the same grants at more calls, so it is a refusal, not a failure.
            refused = isinstance(
                exc, NotFoundError | EndpointNotFoundError | PermissionDeniedError | EndpointRemovedError
            ) or (type(exc) is BitbucketError and exc.status == 405)
            if not refused:  # 5xx, 429, missing scopes, a malformed answer: a failure, not a refusal
                raise
            log.warning(
                "workspace %s: the 1.0 group-privileges list was refused (%s); reading each repository's "
                "list",
                self.slug,
                exc,
            )
            grants, source = None, f"per repository: the 1.0 group-privileges list answered HTTP {exc.status}"
        self.writer.set_workspace_field(self.slug, "repository_group_lists", source)
        return grants

    def _effective_page(self, entries: list[EffectivePermission]) -> None:
        for e in entries:
            if e.repository_uuid in self.gone:
                continue  # read before the repository was deleted; it is not in this snapshot
            self._saw(e.user, "effective_permissions")
            self.writer.add(
                "effective_repository_permissions",
                {
                    **self.base,
                    "repository_uuid": e.repository_uuid,
                    "repository_name": e.repository_name,
                    "user_uuid": e.user.uuid,
                    "permission": e.permission,
                    "raw": e.raw,
                },
            )

    def _permission_lists(self, targets: list[_ListTarget], lists: dict[str, Callable]) -> None:
        """Permissions-config lists (`lists`: kind -> fetch) of projects or repositories (`targets`), fetched
        concurrently (bounded by the pool) and written in order, each with a fetch-log row. A resource whose
        lists and own read answer 404 was deleted since it was listed: it is left out (gone.py)."""
        jobs = [(target, kind, fetch) for target in targets for kind, fetch in lists.items()]
        clock = self.api.client.clock
        handed_over, failed = clock.fork(), threading.Event()

        def fetch(job: tuple[_ListTarget, str, Callable]) -> tuple[list | Gone, float | None]:
            if failed.is_set():
                raise _NotFetched  # another list failed: the sync stops without spending calls on the rest
            clock.join(handed_over)  # on a simulated clock, the job starts when it was handed over
            target, _, read = job
            try:
                grants = read_or_gone(
                    self.api, target.resource, lambda: read(self.slug, target.resource.path_id)
                )
                return grants, clock.fork()
            except BaseException:
                failed.set()
                raise

        futures = [self.pool.submit(fetch, job) for job in jobs]
        self._effective_ready(waiting_for=futures)  # the effective list goes on meanwhile
        if failed.is_set():
            wait(futures)
            raise next(
                f.exception() for f in futures if not isinstance(f.exception(), _NotFetched | NoneType)
            )
        results = [future.result() for future in futures]
        clock.join(max((t for _, t in results if t is not None), default=None))
        gone = {
            job[0].resource.uuid: grants
            for job, (grants, _) in zip(jobs, results, strict=True)
            if isinstance(grants, Gone)
        }
        for (target, kind, _), (grants, _) in zip(jobs, results, strict=True):
            if target.resource.uuid not in gone:
                resource = target.resource
                self._write_list(resource.kind, resource.uuid, target.keys, kind, grants, target.reason)
        for uuid, what in gone.items():
            self._resource_gone(uuid, what)

    def _resource_gone(self, uuid: str, gone: Gone) -> None:
        """A project or repository listed earlier in this sync that Bitbucket now says does not exist: deleted
        (or made invisible to the credential) while the sync ran, which on a day-long sync of thousands of
        repositories is routine. It is left out of the snapshot, as if listed after the deletion, and reported
        as an anomaly; the circuit breaker (vanished.py) still weighs it."""
        log.warning("workspace %s: %s; left out of this snapshot", self.slug, gone.reason)
        self.writer.drop_resource(gone.resource.kind, self.slug, uuid)
        if gone.resource.kind == "repository":
            self.gone.add(uuid)
        self.writer.note_gone(gone)

    def _write_list(
        self, scope: str, rid: str, keys: dict, kind: str, grants: list, reason: str | None
    ) -> None:
        for grant in grants:
            if isinstance(grant, UserGrant):
                self._saw(grant.user, f"{scope}_permissions")
        observed = {"observed_sync_id": self.writer.sync_id} if scope == "repository" else {}
        _write_grants(self.writer, scope, {**self.base, **keys, **observed}, grants)
        self.writer.add(
            "fetch_log",
            {
                **self.base,
                "resource_type": scope,
                "resource_id": rid,
                "list": kind,
                "rows": len(grants),
                "fetched_at": self.writer.clock.now(),
                "observed_sync_id": self.writer.sync_id,
                "read_reason": reason,
            },
        )


def _write_grants(
    writer: SnapshotWriter, scope: str, base: dict, grants: list[UserGrant] | list[GroupGrant]
) -> None:
    for grant in grants:
        if isinstance(grant, UserGrant):
            table = f"{scope}_user_permissions"
            row = {"user_uuid": grant.user.uuid, "account_id": grant.user.account_id}
        else:
            table = f"{scope}_group_permissions"
            row = {"group_slug": grant.group_slug, "group_name": grant.group_name}
        writer.add(table, {**base, **row, "permission": grant.permission, "raw": grant.raw})


class _OrgGroupMembers:
    """Members of a workspace's groups as the organization's groups hold them (Admin API, by account id),
    turned into Bitbucket users: from the workspace's member list, else one `/2.0/users/{account id}` call. A
    group the organization does not hold keeps its 1.0 members, and the snapshot's anomalies say so."""

    def __init__(
        self,
        admin: AtlassianAdminApi,
        api: BitbucketApi,
        writer: SnapshotWriter,
        slug: str,
        members: list[WorkspaceMember],
    ):
        self.admin, self.api, self.writer, self.slug = admin, api, writer, slug
        self.by_account = {m.user.account_id: m.user for m in members if m.user.account_id}

    def members(self, group: Group) -> tuple[User, ...]:
        org_group = self.admin.find_group(group.name or group.slug)
        if org_group is None:
            reason = (
                f"group {group.slug!r} is not an organization group: the members Bitbucket lists were kept"
            )
            self.writer.note_skipped(SkippedEntry(self.slug, self.admin.directories_endpoint, 1, reason))
            return group.members
        users = []
        for member in self.admin.group_members(org_group):
            user = self.by_account.get(member.account_id)
            if user is None:
                user = self.by_account[member.account_id] = self.api.user(member.account_id)
            users.append(user)
        return tuple(users)
