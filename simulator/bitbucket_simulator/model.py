"""The simulated organisation: users, workspaces, groups, projects, repositories and their grants.

Plain dataclasses with no HTTP in them, so organisations can be built, evolved and inspected from
Python, and the server only translates them into Bitbucket's JSON.
"""

from __future__ import annotations

import fnmatch
import uuid as uuid_lib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

REPOSITORY_PERMISSIONS = ("read", "write", "admin")
PROJECT_PERMISSIONS = ("read", "write", "create-repo", "admin")
WORKSPACE_ROLES = ("member", "create-project", "owner")

_REPO_RANK = {"read": 1, "write": 2, "admin": 3}
# What a project grant gives on the project's repositories: `create-repo` lets you create
# repositories and gives write on the existing ones.
PROJECT_TO_REPOSITORY = {
    "read": "read",
    "write": "write",
    "create-repo": "write",
    "admin": "admin",
    "none": "none",
}


def repository_rank(permission: str) -> int:
    return _REPO_RANK[permission]


def highest(permissions: list[str]) -> str:
    """The highest repository permission of several; a lower grant never overrides a higher one."""
    return max(permissions, key=repository_rank)


def new_uuid(rng) -> str:
    """A `{uuid}` in Bitbucket's brace form, drawn from a seeded random generator."""
    return "{" + str(uuid_lib.UUID(int=rng.getrandbits(128), version=4)) + "}"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


@dataclass(slots=True)
class User:
    uuid: str
    account_id: str | None  # None for a "Former user" (a deleted account): Bitbucket keeps only the uuid
    display_name: str
    nickname: str | None
    email: str
    created_on: datetime
    account_status: str = "active"  # "inactive": the Atlassian account was deactivated
    is_contractor: bool = False  # not visible through the API; lets tests and the demo reason about it
    kind: str = (
        "user"  # the `type` Bitbucket gives the object: `user`, or `app_user` for an access token's bot
    )
    # Two-step verification as Bitbucket reports it (`has_2fa_enabled`); None: Bitbucket does not say.
    has_2fa_enabled: bool | None = True

    @property
    def is_former(self) -> bool:
        """A deleted account: served as "Former user" with no `account_id` and no `nickname`."""
        return self.account_id is None


@dataclass(slots=True)
class Membership:
    user_uuid: str
    role: str = "member"  # member | create-project | owner
    added_on: datetime | None = None
    last_accessed: datetime | None = None


@dataclass(slots=True)
class Group:
    slug: str
    name: str
    members: list[str] = field(default_factory=list)  # user uuids, in the order they were added
    permission: str | None = None  # 1.0 "default repository privilege": grants nothing by itself
    auto_add: bool = False
    # Organization groups (workspaces administered from admin.atlassian.com), as the Admin API sees them:
    # synced from an identity provider (changes refused), or granting an app whose user limit is reached.
    idp_synced: bool = False
    user_limit_reached: bool = False


# Branch restriction kinds that name who alone may push or merge (`users`, `groups`); the spec allows the
# lists on these two kinds only.
RESTRICTION_KINDS_WITH_EXEMPTIONS = ("push", "restrict_merges")
# Kinds carrying a number in `value` (minimum approvals, minimum builds, maximum commits behind).
RESTRICTION_KINDS_WITH_VALUE = (
    "require_approvals_to_merge",
    "require_default_reviewer_approvals_to_merge",
    "require_passing_builds_to_merge",
    "require_commits_behind",
)
RESTRICTION_KINDS = (
    "push",
    "delete",
    "force",
    "restrict_merges",
    "require_tasks_to_be_completed",
    "require_approvals_to_merge",
    "require_review_group_approvals_to_merge",
    "require_default_reviewer_approvals_to_merge",
    "require_no_changes_requested",
    "require_passing_builds_to_merge",
    "require_commits_behind",
    "reset_pullrequest_approvals_on_change",
    "smart_reset_pullrequest_approvals",
    "reset_pullrequest_changes_requested_on_change",
    "require_all_dependencies_merged",
    "enforce_merge_checks",
    "allow_auto_merge_when_builds_pass",
    "require_all_comments_resolved",
)
BRANCH_TYPES = ("feature", "bugfix", "release", "hotfix", "development", "production")


@dataclass(slots=True)
class BranchRestriction:
    """One branch restriction rule (the spec's `branchrestriction`): a kind, a matcher, and for `push` and
    `restrict_merges` the users and groups who alone may push or merge (empty lists deny everybody)."""

    id: int
    kind: str
    branch_match_kind: str = "glob"  # glob (+ pattern) | branching_model (+ branch_type)
    pattern: str = ""
    branch_type: str | None = None
    value: int | None = None
    users: list[str] = field(default_factory=list)  # user uuids
    groups: list[str] = field(default_factory=list)  # group slugs

    def matches(self, branch: str, production: str | None, development: str | None) -> bool:
        """Whether the rule applies to `branch`, given the branching model's production and development
        branches. Glob: `*` matches zero or more characters, every other character itself (the spec)."""
        if self.branch_match_kind == "branching_model":
            target = {"production": production, "development": development}.get(self.branch_type or "")
            return target is not None and target == branch
        return fnmatch.fnmatchcase(branch, self.pattern.replace("[", "[[]").replace("?", "[?]"))


@dataclass(slots=True)
class DeployKey:
    """A repository or project access key (SSH). Read-only on Bitbucket Cloud, but an audit asks who added it
    and whether it is still used."""

    id: int
    label: str
    key: str
    added_on: datetime
    last_used: datetime | None = None
    added_by: str | None = None  # user uuid: `owner` on repository keys, `created_by` on project keys
    comment: str = ""


@dataclass(slots=True)
class BranchingModel:
    """The production branch of a repository's or project's branching model: None when production is
    disabled; `use_mainbranch` tracks the repository's main branch. Development always exists (the spec)."""

    production: str | None = None
    production_use_mainbranch: bool = False
    development: str | None = None  # None: the main branch


@dataclass(slots=True)
class Project:
    uuid: str
    key: str
    name: str
    created_on: datetime
    updated_on: datetime
    description: str = ""
    is_private: bool = True
    user_grants: dict[str, str] = field(default_factory=dict)  # user uuid -> project permission
    group_grants: dict[str, str] = field(default_factory=dict)  # group slug -> project permission
    default_reviewers: list[str] = field(default_factory=list)
    # Project-level branch restrictions: enforced on every repository of the project, but not served by any
    # API (docs/simulator.md, "Change control"); the simulator keeps them to compare the marts against.
    branch_restrictions: list[BranchRestriction] = field(default_factory=list)
    branching_model: BranchingModel = field(default_factory=BranchingModel)
    deploy_keys: list[DeployKey] = field(default_factory=list)


@dataclass(slots=True)
class Repository:
    uuid: str
    slug: str
    name: str
    project_key: str
    created_on: datetime
    updated_on: datetime
    is_private: bool = True
    description: str = ""
    language: str = ""
    size: int = 0
    user_grants: dict[str, str] = field(default_factory=dict)  # user uuid -> repository permission
    group_grants: dict[str, str] = field(default_factory=dict)  # group slug -> repository permission
    mainbranch: str = "main"
    fork_policy: str = "no_public_forks"  # allow_forks | no_public_forks | no_forks
    branch_restrictions: list[BranchRestriction] = field(default_factory=list)
    # None: inherits the project's branching model (override-settings: `branching_model: false`).
    branching_model: BranchingModel | None = None
    deploy_keys: list[DeployKey] = field(default_factory=list)

    def effective_branching_model(self, project: Project | None) -> BranchingModel:
        return self.branching_model or (project.branching_model if project else BranchingModel())

    def production_branch(self, project: Project | None) -> tuple[str, str]:
        """The production branch and where it came from: the branching model's, else `mainbranch`."""
        model = self.effective_branching_model(project)
        if model.production_use_mainbranch:
            return self.mainbranch, "branching_model"
        if model.production:
            return model.production, "branching_model"
        return self.mainbranch, "mainbranch"


@dataclass(slots=True)
class Workspace:
    uuid: str
    slug: str
    name: str
    created_on: datetime
    is_private: bool = True
    # Administered from admin.atlassian.com: 1.0 group writes are refused and the member
    # payloads carry no `added_on` / `last_accessed`.
    admin_managed: bool = False
    # A user who owns the workspace's repositories (a personal workspace: the repository's `owner` is that
    # user, not the workspace as a team); None: the workspace owns them.
    repository_owner: str | None = None
    members: dict[str, Membership] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    repositories: dict[str, Repository] = field(default_factory=dict)

    def owners(self) -> list[str]:
        return [m.user_uuid for m in self.members.values() if m.role == "owner"]

    def groups_of(self, user_uuid: str) -> list[str]:
        return [g.slug for g in self.groups.values() if user_uuid in g.members]

    def effective_repository_permissions(self, repo: Repository) -> dict[str, str]:
        """user uuid -> the highest permission the user really holds on `repo` (docs/design.md, "Grant
        paths")."""
        found: dict[str, list[str]] = {}

        def add(user_uuid: str, permission: str, direct: bool = False) -> None:
            # Workspace members hold access, and so does anyone with a grant configured on the project or the
            # repository itself (outside collaborators, app users, former users whose grant nobody removed).
            # `none` (in the spec's permission enums) grants nothing.
            if (direct or user_uuid in self.members) and permission != "none":
                found.setdefault(user_uuid, []).append(permission)

        for owner in self.owners():
            add(owner, "admin")
        project = self.projects.get(repo.project_key)
        if project is not None:
            for user_uuid, perm in project.user_grants.items():
                add(user_uuid, PROJECT_TO_REPOSITORY[perm], direct=True)
            for slug, perm in project.group_grants.items():
                for user_uuid in self.groups[slug].members if slug in self.groups else ():
                    add(user_uuid, PROJECT_TO_REPOSITORY[perm])
        for user_uuid, perm in repo.user_grants.items():
            add(user_uuid, perm, direct=True)
        for slug, perm in repo.group_grants.items():
            for user_uuid in self.groups[slug].members if slug in self.groups else ():
                add(user_uuid, perm)
        return {u: highest(perms) for u, perms in found.items()}

    def effective_project_permission(self, project: Project, user_uuid: str) -> str | None:
        """The caller's project role, used for the simulator's own authorisation checks."""
        if user_uuid not in self.members:
            return None
        if self.members[user_uuid].role == "owner":
            return "admin"
        ranks = {"read": 1, "write": 2, "create-repo": 3, "admin": 4}
        perms = [project.user_grants[user_uuid]] if user_uuid in project.user_grants else []
        perms += [
            p
            for s, p in project.group_grants.items()
            if s in self.groups and user_uuid in self.groups[s].members
        ]
        perms = [p for p in perms if p != "none"]
        return max(perms, key=ranks.__getitem__) if perms else None


# The shapes Atlassian documents where they differ from the simulator's defaults (docs/simulator.md,
# "Documented shapes"); an organisation file turns each on by name (`documented_shapes`).
DOCUMENTED_SHAPES = ("member_users", "effective_users", "group_refs", "current_user", "members_only_2fa")


@dataclass(frozen=True)
class PayloadShapes:
    """Which of Atlassian's documented shapes the simulator serves instead of its richer defaults."""

    member_users: bool = False  # /workspaces/{ws}/permissions: users without account_id or links
    effective_users: bool = False  # the effective list: users as {type, display_name, uuid}
    group_refs: bool = False  # groups in permissions-config lists as {type: group, name, slug}, no owner
    current_user: bool = False  # /2.0/user with `username` and `has_2fa_enabled: null`
    # /workspaces/{ws}/permissions ignores `fields=+values.user.has_2fa_enabled` (only /members is documented)
    members_only_2fa: bool = False


@dataclass
class Organisation:
    """Everything the simulator serves, plus the clock the evolution step advances."""

    name: str
    now: datetime
    users: dict[str, User] = field(default_factory=dict)
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    # Users who run the pipeline (owners of every workspace): the simulator's default credentials.
    operator_uuid: str | None = None
    seed: int = 0
    version: int = 0  # bumped by every mutation so caches know when to drop
    shapes: PayloadShapes = field(default_factory=PayloadShapes)
    next_rule_id: int = 1  # branch restriction and deploy key ids, unique in the organisation

    def new_rule_id(self) -> int:
        self.next_rule_id += 1
        return self.next_rule_id - 1

    def touch(self) -> None:
        self.version += 1

    def user(self, identifier: str) -> User | None:
        """A user by `{uuid}` or Atlassian account id (the two identifiers Bitbucket accepts)."""
        if identifier in self.users:
            return self.users[identifier]
        if identifier.startswith("{") or len(identifier) == 36:
            braced = identifier if identifier.startswith("{") else "{" + identifier + "}"
            if braced in self.users:
                return self.users[braced]
        return self._by_account_id().get(identifier)

    def _by_account_id(self) -> dict[str, User]:
        cache = getattr(self, "_account_index", None)
        if cache is None or cache[0] != (len(self.users), self.version):
            cache = (
                (len(self.users), self.version),
                {u.account_id: u for u in self.users.values() if u.account_id},
            )
            self._account_index = cache
        return cache[1]

    def workspace(self, identifier: str) -> Workspace | None:
        """A workspace by slug or `{uuid}`."""
        if identifier in self.workspaces:
            return self.workspaces[identifier]
        for ws in self.workspaces.values():
            if ws.uuid == identifier or ws.uuid == "{" + identifier.strip("{}") + "}":
                return ws
        return None

    def iter_repositories(self) -> Iterator[tuple[Workspace, Repository]]:
        for ws in self.workspaces.values():
            for repo in ws.repositories.values():
                yield ws, repo

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "workspaces": len(self.workspaces),
            "groups": sum(len(w.groups) for w in self.workspaces.values()),
            "projects": sum(len(w.projects) for w in self.workspaces.values()),
            "repositories": sum(len(w.repositories) for w in self.workspaces.values()),
            "memberships": sum(len(w.members) for w in self.workspaces.values()),
        }


def find_repository(ws: Workspace, identifier: str) -> Repository | None:
    """A repository by slug or `{uuid}`."""
    if identifier in ws.repositories:
        return ws.repositories[identifier]
    braced = "{" + identifier.strip("{}") + "}"
    for repo in ws.repositories.values():
        if repo.uuid == braced:
            return repo
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)
