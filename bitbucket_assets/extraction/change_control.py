"""Reading who can change production code: each repository's branch restrictions, effective branching model,
override settings and deploy keys, and each project's deploy keys (docs/design.md, "Change control").

Four calls per repository in the `/2.0/repositories/*` bucket cannot all go into one day for a large
organisation, so they are read on a rolling schedule, as the permission lists are: a sync reads the
repositories never read (the first pass is spread over the rolling period) and the oldest, about 1/N of
them (N = `RefreshPolicy.change_control_days`), and carries every other repository's rows forward from the
sync that read them, with `observed_sync_id`, so each snapshot is whole and says how old each list is.
Project deploy keys (one call per project, the other bucket) are read every sync.

These reads need admin scopes (`admin:repository`, `admin:project`). A workspace where Bitbucket refuses them
(403) is marked "not readable" (`raw.workspaces.change_control`) and keeps its last observation; the sync goes
on. A repository deleted while the sync runs is left out (gone.py); any other error fails the sync as usual.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import NoneType
from typing import Any

from ..client import BitbucketApi, MissingScopesError, PermissionDeniedError
from ..client.api import BranchingModel, BranchRestriction, DeployKey, InheritanceState
from .gone import Gone, Listed, read_or_gone
from .progress import SyncProgress
from .refresh import previous_sync
from .snapshot import SnapshotWriter

log = logging.getLogger(__name__)

READABLE = "readable"
STAGE = "change_control"
# A repository's change-control lists, in `raw.change_control_reads.list`.
LISTS = ("branch_restrictions", "branching_model", "override_settings", "deploy_keys")
REPOSITORIES_PER_CHECKPOINT = 50
# Rows carried forward from the sync that read them, with the column naming the repository.
CARRIED = {
    "branch_restrictions": "repository_uuid",
    "branch_restriction_exemptions": "repository_uuid",
    "branching_models": "repository_uuid",
    "deploy_keys": "resource_id",
    "change_control_reads": "resource_id",
}


@dataclass(frozen=True)
class Target:
    """A repository whose change control is read in this sync, and why (`new`, `due: ...`)."""

    uuid: str
    slug: str
    reason: str


@dataclass(frozen=True)
class RepositoryControl:
    """What Bitbucket answered for one repository's four lists."""

    restrictions: list[BranchRestriction]
    model: BranchingModel
    inheritance: InheritanceState
    keys: list[DeployKey]


# A day's share divided by this is kept for repositories never read, however many reads are due (`plan`).
NEVER_READ_DIVISOR = 4


class _Stop(Exception):
    """A read left out because another read of the batch failed."""


def plan(
    con,
    sync_id: str,
    workspace: str,
    rolling_days: int,
    full: bool = False,
    listed_in: str | None = None,
    shared_with: Sequence[str] = (),
) -> tuple[list[Target], int]:
    """The repositories of `workspace` whose change control is read now, and how many it has in all.

    Read: those N days old or older, the oldest first, up to 1.25 shares (so nothing gets older than N days
    once the first pass is through, unless more fall due on one day: the rest wait a day), then those never
    read (the first pass, spread over the period; then those created since), then the oldest, these two up to
    the day's share, ceil(repositories / N); those never read get at least a quarter of the share, as long as
    the day reads no more than 1.25 shares (`never_read_budget`).
    Repositories this workspace's stage read before the sync was resumed are not read again. `shared_with`:
    the other workspaces whose change control the same credential reads in this sync. The rate limit is the
    credential's, not a workspace's: the plan, and the day's share, are over all of them, so a small workspace
    where many repositories are created gets the reads a large one can spare (`large`, N = 21, a share per
    workspace: three workspaces of 1,300 repositories, 25 created a day in each against 20 reads to spare,
    kept about 190 repositories each never read; coverage stayed at 97 %). Each workspace's stage asks in
    turn and reads its part: the plan is made from the previous syncs' reads, so every stage sees the same
    one. `listed_in`: plan over the repositories another sync listed (the previous one, before this sync has
    listed any: `RulesPrefetch`)."""
    pool = [workspace, *sorted(set(shared_with) - {workspace})]
    rows = con.execute(
        """
        WITH pool AS (
            SELECT unnest($2::VARCHAR[]) AS workspace_slug, unnest($3::VARCHAR[]) AS previous
        ),
        repos AS (
            SELECT r.workspace_slug, r.repository_uuid, r.repository_slug
            FROM raw.repositories r JOIN pool USING (workspace_slug)
            WHERE r.sync_id = $5
        ),
        last AS (
            SELECT c.workspace_slug, c.resource_id, min(c.fetched_at) AS fetched_at
            FROM raw.change_control_reads c
            JOIN pool p ON p.workspace_slug = c.workspace_slug AND c.sync_id = p.previous
            WHERE c.resource_type = 'repository'
            GROUP BY ALL
        ),
        done AS (  -- what this workspace's stage read before the sync was resumed
            SELECT DISTINCT resource_id FROM raw.change_control_reads
            WHERE sync_id = $1 AND resource_type = 'repository' AND workspace_slug = $6
        )
        SELECT r.repository_uuid, r.repository_slug, l.fetched_at,
               date_diff('hour', l.fetched_at, $4::TIMESTAMPTZ) / 24.0 AS age_days,
               r.repository_uuid IN (SELECT resource_id FROM done) AS done,
               r.workspace_slug
        FROM repos r
        LEFT JOIN last l ON l.resource_id = r.repository_uuid AND l.workspace_slug = r.workspace_slug
        ORDER BY l.fetched_at NULLS FIRST, hash(r.repository_uuid), r.repository_uuid
        """,
        [
            sync_id,
            pool,
            [previous_sync(con, slug) or "" for slug in pool],
            _now(con, sync_id),
            listed_in or sync_id,
            workspace,
        ],
    ).fetchall()
    total = len(rows)
    share = total if full else math.ceil(total / rolling_days)
    # A resumed sync: what the workspace read counts against the share.
    read_before = sum(1 for r in rows if r[4])
    budget = share - read_before
    chosen: list[tuple[Target, str]] = []
    due = {
        uuid
        for uuid, _, fetched_at, age, done, _ in rows
        if not done and not full and fetched_at is not None and age >= rolling_days - 0.5
    }
    # Due first, whatever else waits: nothing read gets older than N days, as long as no more than 1.25 shares
    # fall due on one day. Repositories never read (the first pass, then those created since) take what is
    # left of the day's share, then the oldest: taken before the due ones, the backlog created during the
    # first pass and the first due ones landed on one day (`large`, N = 21, day 23: 12.7 h). Those never read
    # get at least a quarter of the share even when due reads fill it: once the first pass is through, the due
    # reads leave free only what deleted repositories freed, about as many as are created, and the backlog
    # created during the first pass was never read (`large`, N = 21: coverage stuck at 97 %). Not past a
    # quarter share over the day's share, though, and due reads take no more than that either, the oldest
    # first; the rest wait a day, and are the oldest then. The first sync of `large` lasts more than a day, so
    # the reads of its first two days fall due on one day: 1,744 repositories on day 23 (N = 21), 14.0 h, with
    # the plan per credential (with a share per workspace, 1,236 and 11.8 h: megacorp, likely, had read some
    # of its oldest early); with this ceiling, 1,192 and 11.6 h, every day after the first under 12 h.
    room = share + math.ceil(share / NEVER_READ_DIVISOR) - read_before
    waiting = 0
    for uuid, slug, *_, slug_of in rows:  # the oldest first
        if uuid in due:
            if room > 0:
                chosen.append((Target(uuid, slug, f"due: {rolling_days} days old"), slug_of))
                budget -= 1
                room -= 1
            else:
                waiting += 1
    if waiting:
        log.info(
            "workspace %s: %d repositories due for change control in its plan (shared with %s) wait a day: "
            "over 1.25 shares are due today",
            workspace,
            waiting,
            ", ".join(pool[1:]) or "no other workspace",
        )
    read_new = sum(1 for _, _, fetched_at, _, done, _ in rows if done and fetched_at is None)
    never_read = never_read_budget(share, budget, read_new)
    for uuid, slug, fetched_at, _, done, slug_of in rows:
        if done or uuid in due:
            continue
        if fetched_at is None:
            if full or never_read > 0:
                chosen.append((Target(uuid, slug, "full" if full else "new"), slug_of))
                never_read -= 1
                budget -= 1
        elif full:
            chosen.append((Target(uuid, slug, "full"), slug_of))
        elif budget > 0:
            chosen.append((Target(uuid, slug, "due: oldest"), slug_of))
            budget -= 1
    mine = [target for target, slug_of in chosen if slug_of == workspace]
    return mine, sum(1 for row in rows if row[5] == workspace)


def never_read_budget(share: int, budget: int, read_new: int = 0) -> int:
    """How many repositories never read `plan` reads: what the due reads (and a resumed sync's earlier reads)
    left of the day's share, `budget`, or a quarter of the share if more, as long as the day reads no more
    than 1.25 shares (a negative budget is the share overrun). `read_new`: repositories never read before that
    this sync read before it was resumed, counted against the quarter."""
    quarter = math.ceil(share / NEVER_READ_DIVISOR)
    return max(budget, min(quarter - read_new, quarter + min(budget, 0)))


def carry(con, sync_id: str, previous: str, workspace: str) -> None:
    """Copy the previous observation's change control of every repository and project of this sync that this
    sync did not read, with the sync that read it (`observed_sync_id`) and today's slug."""
    args = [sync_id, previous, workspace]
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE carried_control AS
        SELECT 'repository' AS resource_type, repository_uuid AS resource_id, repository_slug AS resource_key
        FROM raw.repositories WHERE sync_id = $1 AND workspace_slug = $2
        UNION ALL
        SELECT 'project', project_uuid, project_key FROM raw.projects
        WHERE sync_id = $1 AND workspace_slug = $2
        """,
        [sync_id, workspace],
    )
    con.execute(
        "DELETE FROM carried_control c WHERE EXISTS (SELECT 1 FROM raw.change_control_reads t "
        "WHERE t.sync_id = $1 AND t.resource_type = c.resource_type AND t.resource_id = c.resource_id)",
        [sync_id],
    )
    renamed = {"branch_restrictions": "repository_slug", "branching_models": "repository_slug"}
    for table, column in CARRIED.items():
        typed = (
            "c.resource_type = p.resource_type"
            if column == "resource_id"
            else "c.resource_type = 'repository'"
        )
        slug = f", c.resource_key AS {renamed[table]}" if table in renamed else ""
        slug += ", c.resource_key AS resource_key" if table == "deploy_keys" else ""
        con.execute(
            f"""
            INSERT INTO raw.{table} BY NAME
            SELECT p.* REPLACE ($1 AS sync_id,
                                coalesce(p.observed_sync_id, p.sync_id) AS observed_sync_id{slug})
            FROM raw.{table} p JOIN carried_control c ON c.resource_id = p.{column} AND {typed}
            WHERE p.sync_id = $2 AND p.workspace_slug = $3
            """,
            args,
        )
    con.execute("DROP TABLE carried_control")


def _now(con, sync_id: str) -> Any:
    """The sync's own clock (its start), so that a simulated day ages what it reads like a real one."""
    row = con.execute("SELECT started_at FROM raw.syncs WHERE sync_id = ?", [sync_id]).fetchone()
    return row[0]


RULES = ("branch_restrictions", "branching_model", "override_settings")


def _rule_read(api: BitbucketApi, name: str, workspace: str, uuid: str) -> Any:
    if name == "branch_restrictions":
        return api.branch_restrictions(workspace, uuid)
    if name == "branching_model":
        return api.effective_branching_model(workspace, uuid)
    return api.override_settings(workspace, uuid)


class RulesPrefetch:
    """A workspace's rule lists (branch restrictions, branching model, override settings) read with a second
    credential from the start of the sync, beside everything else.

    The second credential has a rate limit of its own. Read within the change-control stage, its calls would
    set that stage's pace while the main credential's repositories bucket, with only deploy keys to read,
    idled: the day would last the sum of the two. So the sync plans the workspace's reads at its start, over
    the repositories the previous sync listed (this one has listed none yet), and fetches them on threads of
    their own; the stage plans again over today's list, takes each answer read ahead when it gets to its
    repository (on a simulated clock, not before it was fetched), and reads the rest itself: repositories new
    today, and those that moved into the day's share as new ones took places in it. The first error stops the
    reads ahead: the list it came from raises it, and the lists left unread raise a refusal (403) again or are
    read in the stage, so that any other error on a repository today's plan dropped cannot fail the sync."""

    def __init__(self, api: BitbucketApi, rules_api: BitbucketApi, slug: str, targets: list[Target]):
        self.api, self.rules_api, self.slug = api, rules_api, slug
        self.clock = rules_api.client.clock
        self.error: BaseException | None = None
        self._pool = ThreadPoolExecutor(rules_api.client.max_workers, thread_name_prefix=f"rules-{slug}")
        started = self.clock.fork()
        self._planned = {t.uuid for t in targets}
        self._answers = {
            (t.uuid, name): self._pool.submit(self._read, started, t, name) for t in targets for name in RULES
        }
        self.read_at: dict[tuple[str, str], Any] = {}  # when each list taken from here was read

    def has(self, uuid: str) -> bool:
        return uuid in self._planned

    def _read(self, started: float | None, target: Target, name: str) -> tuple[Any, float | None, Any]:
        if self.error is not None:
            raise _Stop
        self.clock.join(started)
        try:
            resource = Listed("repository", self.slug, target.slug, target.uuid)
            # A 404 is confirmed with the same credential: the main one's bucket would otherwise be reserved
            # at this thread's time, hours ahead of the main credential's own work on a simulated clock.
            answer = read_or_gone(
                self.rules_api, resource, lambda: _rule_read(self.rules_api, name, self.slug, target.uuid)
            )
        except BaseException as exc:
            if self.error is None:
                self.error = exc
            raise
        return answer, self.clock.fork(), self.clock.now()

    def answer(self, uuid: str, name: str) -> Any:
        """The list as read ahead, waiting for it (the calling thread's time goes on from its read's), or read
        now: when the reads ahead stopped before it, or when it answered `Gone` (observed before today's
        listing, which has the repository: gone.py counts a 404 only after the listing)."""
        future = self._answers.pop((uuid, name))  # held no longer than needed
        try:
            answer, fetched_at, read_at = future.result()
        except _Stop:
            if isinstance(self.error, MissingScopesError | PermissionDeniedError):
                raise self.error from None  # refused: asking again would be refused too ("not readable")
        else:
            if not isinstance(answer, Gone):
                self.clock.join(fetched_at)
                self.read_at[(uuid, name)] = read_at
                return answer
        return _rule_read(self.rules_api, name, self.slug, uuid)

    def close(self, interrupt: bool = False) -> None:
        """Stop: reads not started are dropped, one in flight finishes, or, with `interrupt` (the sync
        failed), ends with its client."""
        if self.error is None:
            self.error = _Stop("the change-control stage ended")
        self._pool.shutdown(wait=False, cancel_futures=True)
        if interrupt:
            self.rules_api.client.interrupt()


class ChangeControlReader:
    """One workspace's change-control stage (run after its repositories are listed and its permission lists
    read or carried)."""

    def __init__(
        self,
        api: BitbucketApi,
        rules_api: BitbucketApi,
        writer: SnapshotWriter,
        pool,
        slug: str,
        base: dict,
        rolling_days: int,
        full: bool,
        drop: Callable[[str, Gone], None],
        progress: SyncProgress,
        waiting: Callable[[list[Future]], None],
        prefetch: RulesPrefetch | None = None,
        shared_with: Sequence[str] = (),
    ):
        """`rules_api`: the credential that reads branch restrictions, branching models and override settings
        (the main one, or a workspace access token with its own rate limit); deploy keys are read with `api`.
        `waiting(futures)`: what to do while reads are in flight (write the effective list's pages fetched
        beside them). `prefetch`: the rule lists being read ahead with a second credential. `shared_with`: the
        workspaces whose change control the same credential reads in this sync (`plan`)."""
        self.api, self.writer, self.pool, self.slug, self.base = api, writer, pool, slug, base
        self.rules_api = rules_api
        self.progress, self.waiting = progress, waiting
        self.rolling_days, self.full, self.drop = rolling_days, full, drop
        self.prefetch = prefetch
        self.shared_with = shared_with
        self.status = READABLE

    def run(self) -> None:
        if self.writer.checkpoint_done(self.slug, STAGE):
            return
        targets, total = plan(
            self.writer.con,
            self.writer.sync_id,
            self.slug,
            self.rolling_days,
            self.full,
            shared_with=self.shared_with,
        )
        log.info(
            "workspace %s: reading change control of %d of %d repositories", self.slug, len(targets), total
        )
        batches = math.ceil(len(targets) / REPOSITORIES_PER_CHECKPOINT)
        try:
            for number, start in enumerate(range(0, len(targets), REPOSITORIES_PER_CHECKPOINT), 1):
                self._batch(targets[start : start + REPOSITORIES_PER_CHECKPOINT])
                self.writer.checkpoint(self.slug, STAGE, f"after {start + REPOSITORIES_PER_CHECKPOINT}")
                left = max(0, len(targets) - start - REPOSITORIES_PER_CHECKPOINT)
                self.progress.batch(self.slug, STAGE, number, batches + 1, left * len(LISTS))
        except (MissingScopesError, PermissionDeniedError) as exc:
            self.status = f"not readable: {exc}"
            self.writer.discard_buffered(CARRIED)
        finally:
            if self.prefetch is not None:
                self.prefetch.close()
        try:
            self._project_keys()
        except (MissingScopesError, PermissionDeniedError) as exc:
            self.status += f"; project deploy keys not readable: {exc}"
            self.writer.discard_buffered(CARRIED)
        if self.status != READABLE:
            log.warning("workspace %s: change control %s", self.slug, self.status)
        self.writer.set_workspace_field(self.slug, "change_control", self.status)
        previous = previous_sync(self.writer.con, self.slug)
        if previous is not None:
            self.writer.in_snapshot(lambda con: carry(con, self.writer.sync_id, previous, self.slug), CARRIED)
        self.writer.checkpoint(self.slug, STAGE, None)
        self.progress.stage_done(self.slug, STAGE)

    def _batch(self, targets: list[Target]) -> None:
        jobs: list[tuple[Target, str, Callable[[], Any]]] = []
        ahead = self.prefetch
        for t in targets:
            reads: dict[str, Callable[[], Any]] = {
                name: (
                    (lambda u=t.uuid, n=name: ahead.answer(u, n))
                    if ahead is not None and ahead.has(t.uuid)
                    else (lambda u=t.uuid, n=name: _rule_read(self.rules_api, n, self.slug, u))
                )
                for name in RULES
            }
            reads["deploy_keys"] = lambda u=t.uuid: self.api.repository_deploy_keys(self.slug, u)
            jobs += [(t, name, read) for name, read in reads.items()]
        results = self._fetch(jobs, lambda t: Listed("repository", self.slug, t.slug, t.uuid))
        answers: dict[str, dict[str, Any]] = {}
        for (target, name, _), result in zip(jobs, results, strict=True):
            answers.setdefault(target.uuid, {})[name] = result
        for target in targets:
            got = answers[target.uuid]
            gone = next((v for v in got.values() if isinstance(v, Gone)), None)
            if gone is not None:
                self.drop(target.uuid, gone)
                continue
            self._write(
                target,
                RepositoryControl(
                    got["branch_restrictions"],
                    got["branching_model"],
                    got["override_settings"],
                    got["deploy_keys"],
                ),
            )

    def _fetch(self, jobs: list, resource: Callable[[Any], Listed]) -> list[Any]:
        """Run the reads on the pool; on a simulated clock each starts when it was handed over and the batch
        ends when its last read did (as extract.py's permission lists)."""
        clock = self.api.client.clock
        handed_over, failed = clock.fork(), threading.Event()

        def fetch(job) -> tuple[Any, Any]:
            if failed.is_set():
                raise _Stop
            clock.join(handed_over)
            target, _, read = job
            try:
                return read_or_gone(self.api, resource(target), read), clock.fork()
            except BaseException:
                failed.set()
                raise

        futures: list[Future] = [self.pool.submit(fetch, job) for job in jobs]
        self.waiting(futures)
        wait(futures)
        errors = [f.exception() for f in futures]
        real = [e for e in errors if not isinstance(e, _Stop | NoneType)]
        if real:
            raise real[0]
        results = [f.result() for f in futures]
        clock.join(max((t for _, t in results if t is not None), default=None))
        return [r for r, _ in results]

    def _read(self, name: str, rid: str, rows: int, reason: str, kind: str = "repository") -> None:
        # A list read ahead (RulesPrefetch) was read when it was, not when the stage writes it.
        read_at = self.prefetch.read_at.get((rid, name)) if self.prefetch is not None else None
        self.writer.add(
            "change_control_reads",
            {
                **self.base,
                "resource_type": kind,
                "resource_id": rid,
                "list": name,
                "rows": rows,
                "fetched_at": read_at or self.writer.clock.now(),
                "observed_sync_id": self.writer.sync_id,
                "read_reason": reason,
            },
        )

    def _write(self, target: Target, control: RepositoryControl) -> None:
        add, observed = self.writer.add, {"observed_sync_id": self.writer.sync_id}
        keys = {**self.base, "repository_uuid": target.uuid}
        for rule in control.restrictions:
            add(
                "branch_restrictions",
                {
                    **keys,
                    **observed,
                    "repository_slug": target.slug,
                    "restriction_id": rule.id,
                    "kind": rule.kind,
                    "branch_match_kind": rule.branch_match_kind,
                    "pattern": rule.pattern,
                    "branch_type": rule.branch_type,
                    "value": rule.value,
                    "raw": rule.raw,
                },
            )
            exempt = [("user", u.uuid, u.account_id, u.display_name) for u in rule.users]
            exempt += [("group", slug, None, name) for slug, name in rule.groups]
            for principal_type, principal_id, account_id, name in exempt:
                add(
                    "branch_restriction_exemptions",
                    {
                        **keys,
                        **observed,
                        "restriction_id": rule.id,
                        "principal_type": principal_type,
                        "principal_id": principal_id,
                        "account_id": account_id,
                        "principal_name": name,
                    },
                )
        add(
            "branching_models",
            {
                **keys,
                **observed,
                "repository_slug": target.slug,
                "production_branch": control.model.production,
                "production_use_mainbranch": control.model.production_use_mainbranch,
                "development_branch": control.model.development,
                "branching_model_overridden": control.inheritance.branching_model_overridden,
                "raw": control.model.raw,
                "override_raw": control.inheritance.raw,
            },
        )
        self._keys("repository", target.uuid, target.slug, control.keys)
        counts = {
            "branch_restrictions": len(control.restrictions),
            "branching_model": 1,
            "override_settings": 1,
            "deploy_keys": len(control.keys),
        }
        for name in LISTS:
            self._read(name, target.uuid, counts[name], target.reason)

    def _keys(self, kind: str, rid: str, key: str, keys: list[DeployKey]) -> None:
        for k in keys:
            self.writer.add(
                "deploy_keys",
                {
                    **self.base,
                    "resource_type": kind,
                    "resource_id": rid,
                    "resource_key": key,
                    "key_id": k.id,
                    "label": k.label,
                    "added_on": k.added_on,
                    "last_used": k.last_used,
                    "added_by_uuid": k.added_by.uuid if k.added_by else None,
                    "added_by_account_id": k.added_by.account_id if k.added_by else None,
                    "added_by_name": k.added_by.display_name if k.added_by else None,
                    "raw": k.raw,
                    "observed_sync_id": self.writer.sync_id,
                },
            )

    def _project_keys(self) -> None:
        """Every project's deploy keys (one call each, every sync)."""
        projects = self.writer.con.execute(
            "SELECT project_uuid, project_key FROM raw.projects WHERE sync_id = ? AND workspace_slug = ? "
            "ORDER BY project_key",
            [self.writer.sync_id, self.slug],
        ).fetchall()
        jobs = [
            ((uuid, key), "deploy_keys", lambda k=key: self.api.project_deploy_keys(self.slug, k))
            for uuid, key in projects
        ]
        results = self._fetch(jobs, lambda p: Listed("project", self.slug, p[1], p[0]))
        for (uuid, key), result in zip(projects, results, strict=True):
            if isinstance(result, Gone):
                self.drop(uuid, result)
                continue
            self._keys("project", uuid, key, result)
            self._read("deploy_keys", uuid, len(result), "every sync", kind="project")
