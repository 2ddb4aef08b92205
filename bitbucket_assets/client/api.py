"""The Bitbucket Cloud endpoints this project calls, as typed methods over `BitbucketClient`.

Every Bitbucket path the product uses is built here and nowhere else (the simulator keeps its own, as the
independent reference). Results are small dataclasses with optional fields plus the object's raw JSON:
Bitbucket sends sparse objects (a group may be only `owner`, `slug`, `name`; a "Former user" has no
`account_id`), so only the identity a caller needs (a uuid, a slug, a key) is required, and its absence
raises `MalformedResponseError` naming the endpoint and the field.

Path segments are quoted with no safe characters, so a `/` in a slug can never reach another endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from .client import BitbucketClient
from .errors import EndpointNotFoundError, MalformedResponseError, NotFoundError

T = TypeVar("T")

USER_WORKSPACES = "/2.0/user/workspaces"  # errors about the workspace list name this endpoint
# Partial response that adds two-step verification to member lists (an Atlassian staff answer).
TWO_STEP_FIELDS = "+values.user.has_2fa_enabled"


def _seg(value: str) -> str:
    return quote(value, safe="")


# ---- typed results ----


@dataclass(frozen=True)
class User:
    uuid: str
    account_id: str | None = None
    display_name: str | None = None
    nickname: str | None = None
    type: str | None = None  # `user`, `app_user`, ... as Bitbucket says
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class WorkspaceAccess:
    """An entry of `/2.0/user/workspaces`: a workspace the credential sees, and whether it administers it."""

    slug: str
    uuid: str | None
    name: str | None
    administrator: bool
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Workspace:
    uuid: str
    slug: str
    name: str | None = None
    is_private: bool | None = None
    created_on: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class WorkspaceMember:
    user: User
    permission: str | None = None  # owner | collaborator | member
    added_on: str | None = None
    last_accessed: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)
    # Two-step verification: True or False when Bitbucket says, None when it sends null (it does not say);
    # `has_2fa_reported` False when the field was absent (the list ignored `fields`).
    has_2fa_enabled: bool | None = None
    has_2fa_reported: bool = False


@dataclass(frozen=True)
class Group:
    slug: str
    name: str | None = None
    permission: str | None = None  # the group's default repository permission
    auto_add: bool | None = None
    members: tuple[User, ...] = ()
    raw: dict = field(default_factory=dict, repr=False, compare=False)  # without `members`


@dataclass(frozen=True)
class Project:
    uuid: str
    key: str
    name: str | None = None
    is_private: bool | None = None
    created_on: str | None = None
    updated_on: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Repository:
    uuid: str
    slug: str
    full_name: str | None = None
    name: str | None = None
    project_uuid: str | None = None
    project_key: str | None = None
    is_private: bool | None = None
    created_on: str | None = None
    updated_on: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class UserGrant:
    """A permissions-config entry for a user on a project or repository."""

    user: User
    permission: str
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class GroupGrant:
    """A permissions-config entry for a group on a project or repository."""

    group_slug: str
    group_name: str | None
    permission: str
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class EffectivePermission:
    """Bitbucket's own effective permission of a user on a repository."""

    repository_uuid: str
    repository_name: str | None
    user: User
    permission: str
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class BranchRestriction:
    """A branch restriction rule (`branch-restrictions`): a kind, a matcher (`glob` + `pattern`, or
    `branching_model` + `branch_type`) and, on `push` and `restrict_merges`, who alone may push or merge."""

    id: int
    kind: str
    branch_match_kind: str
    pattern: str | None = None
    branch_type: str | None = None
    value: int | None = None
    users: tuple[User, ...] = ()
    groups: tuple[tuple[str, str | None], ...] = ()  # (slug, name)
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class BranchingModel:
    """A repository's effective branching model: its production branch (None when production is disabled) and
    its development branch."""

    production: str | None
    production_use_mainbranch: bool | None
    development: str | None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class InheritanceState:
    """`override-settings`: which project settings the repository overrides (an object the spec leaves open;
    `branching_model` is the one key read)."""

    branching_model_overridden: bool | None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class DeployKey:
    """A repository or project access key, with who added it (`owner` / `created_by`) and when it was last
    used (None: never, or not said)."""

    id: int
    label: str | None
    added_on: str | None
    last_used: str | None
    added_by: User | None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the opaque `next` link to continue from (None on the last page)."""

    items: list[T]
    next_url: str | None
    size: int | None = None  # the whole list's length, when Bitbucket sends it


@dataclass(frozen=True)
class MembershipChange:
    """The answer to a group-membership write: `changed` is False when Bitbucket says it was already so;
    `retried` says the call took more than one try, so an earlier try may be what made it so."""

    status: int
    changed: bool
    retried: bool = False


@dataclass(frozen=True)
class SkippedEntry:
    """A list entry without the identity the model needs (a `user: null`, a group without a slug): skipped,
    so that one odd entry does not cost the whole snapshot, and reported so that it is never silent."""

    workspace: str
    endpoint: str
    page: int
    reason: str
    raw: Any = field(default=None, repr=False, compare=False)


class MissingFieldError(MalformedResponseError):
    """A required field is absent from a response object."""

    def __init__(self, name: str, endpoint: str):
        super().__init__(f"missing field `{name}` in a response object", endpoint=endpoint)
        self.field = name


class UnknownUserError(NotFoundError):
    """The user is not a member of the workspace (or not visible to the credential)."""


class UnknownGroupError(NotFoundError):
    """The group does not exist in the workspace."""


def administered_from_admin_atlassian(members: list[WorkspaceMember]) -> bool:
    """Whether a workspace's members look like those of a workspace administered from admin.atlassian.com: the
    2.0 spec's `workspace_membership` says `added_on` (and `last_accessed`) are absent for them."""
    return bool(members) and all(member.added_on is None for member in members)


# ---- the API ----


class BitbucketApi:
    """Typed calls over one `BitbucketClient` (which paces, retries and counts them)."""

    def __init__(self, client: BitbucketClient, on_skip: Callable[[SkippedEntry], None] | None = None):
        """`on_skip`: where list entries lacking their identity go. Without it such an entry is an error, as
        it must be where one entry is the whole answer (provisioning, `check`); a sync passes its snapshot
        writer."""
        self.client = client
        self.on_skip = on_skip

    # identity and workspaces

    def current_user(self) -> User:
        path = "/2.0/user"
        return _typed(_user, self.client.get(path), path)

    def user(self, user_id: str) -> User:
        """Any user by `{uuid}` or account id (`/2.0/users/{selected_user}`)."""
        path = f"/2.0/users/{_seg(user_id)}"
        return _typed(_user, self.client.get(path), path)

    def user_workspaces(self) -> list[WorkspaceAccess]:
        """Every workspace the credential sees (`/2.0/user/workspaces`; the 2026 replacement of
        `/2.0/workspaces`)."""
        path = USER_WORKSPACES

        def access(entry: Any, endpoint: str) -> WorkspaceAccess:
            ws = _required(entry, "workspace", endpoint)
            return WorkspaceAccess(
                slug=_required(ws, "slug", endpoint),
                uuid=ws.get("uuid"),
                name=ws.get("name"),
                administrator=bool(entry.get("administrator")),
                raw=entry,
            )

        return [_typed(access, entry, path) for entry in self.client.paginate(path)]

    def workspace(self, slug: str) -> Workspace:
        path = _workspace(slug)

        def workspace(ws: Any, endpoint: str) -> Workspace:
            return Workspace(
                uuid=_required(ws, "uuid", endpoint),
                slug=ws.get("slug") or slug,
                name=ws.get("name"),
                is_private=ws.get("is_private"),
                created_on=ws.get("created_on"),
                raw=ws,
            )

        return _typed(workspace, self.client.get(path, workspace=slug), path)

    def workspace_members(self, slug: str) -> list[WorkspaceMember]:
        """Members with their workspace role (`/permissions`: the same people as `/members`, plus the
        role), asking for two-step verification too (`TWO_STEP_FIELDS`)."""
        path = f"{_workspace(slug)}/permissions"
        return [
            item
            for number, (values, _, _) in enumerate(
                self.client.pages(path, {"fields": TWO_STEP_FIELDS}, workspace=slug), 1
            )
            for item in self._parse(values, _member, path, number, slug)
        ]

    def workspace_members_sample(self, slug: str) -> list[WorkspaceMember]:
        """The first page (10) of `/permissions`: enough to see which fields Bitbucket sends for members."""
        path = f"{_workspace(slug)}/permissions"
        values, _, _ = next(self.client.pages(path, {"pagelen": 10}, workspace=slug))
        return self._parse(values, _member, path, 1, slug)

    def workspace_member(self, slug: str, user_id: str) -> WorkspaceMember:
        """One member by `{uuid}` or account id; `UnknownUserError` when they are not a member."""
        path = f"{_workspace(slug)}/members/{_seg(user_id)}"
        try:
            return _typed(_member, self.client.get(path, workspace=slug), path)
        except NotFoundError as exc:
            raise UnknownUserError(
                f"user {user_id!r} is not a member of workspace {slug!r}",
                endpoint=exc.endpoint,
                status=404,
                workspace=slug,
            ) from None

    # groups (1.0 only: Bitbucket has no 2.0 group endpoints)

    def groups(self, slug: str) -> list[Group]:
        """Every group of a workspace with its members embedded (`/1.0/groups/{workspace}`, a bare array)."""
        path = f"/1.0/groups/{_seg(slug)}"
        body = self.client.get(path, workspace=slug)
        if not isinstance(body, list):
            raise MalformedResponseError("expected a JSON array of groups", endpoint=path, workspace=slug)

        def group(g: Any, endpoint: str) -> Group:
            return Group(
                slug=_required(g, "slug", endpoint),
                name=g.get("name"),
                permission=g.get("permission"),
                auto_add=g.get("auto_add"),
                members=tuple(self._parse(g.get("members") or [], _user, endpoint, 1, slug)),
                raw={k: v for k, v in g.items() if k != "members"},
            )

        return self._parse(body, group, path, 1, slug)

    def group_members(self, slug: str, group: str) -> list[User]:
        """The live members of one group; `UnknownGroupError` when the group does not exist."""
        path = f"{_group(slug, group)}/members"
        try:
            body = self.client.get(path, workspace=slug)
        except NotFoundError as exc:
            raise UnknownGroupError(
                f"group {group!r} not found in workspace {slug!r}",
                endpoint=exc.endpoint,
                status=404,
                workspace=slug,
            ) from None
        if not isinstance(body, list):
            raise MalformedResponseError("expected a JSON array of members", endpoint=path, workspace=slug)
        return self._parse(body, _user, path, 1, slug)

    def add_group_member(self, slug: str, group: str, user_uuid: str) -> MembershipChange:
        """PUT the membership; 409 means the user already was a member."""
        response = self.client.request(
            "PUT", self._membership(slug, group, user_uuid), json_body={}, workspace=slug, ok=(200, 409)
        )
        return MembershipChange(response.status_code, response.status_code != 409, response.attempts > 1)

    def remove_group_member(self, slug: str, group: str, user_uuid: str) -> MembershipChange:
        """DELETE the membership; a 404 in Bitbucket's error object means the user was not a member, one that
        says no API is hosted there (or is not Bitbucket's) raises `EndpointNotFoundError`."""
        path = self._membership(slug, group, user_uuid)
        response = self.client.request("DELETE", path, workspace=slug, ok=(204, 404))
        if response.status_code == 404:
            error = self.client.error(response, path, slug)
            if isinstance(error, EndpointNotFoundError):
                raise error
        return MembershipChange(response.status_code, response.status_code != 404, response.attempts > 1)

    @staticmethod
    def _membership(slug: str, group: str, user_uuid: str) -> str:
        return f"{_group(slug, group)}/members/{_seg(user_uuid)}"

    def group_privileges(self, slug: str) -> dict[str, list[GroupGrant]]:
        """Every group's explicit privilege on every repository of a workspace, in one call
        (`/1.0/group-privileges/{workspace}`, a bare array of `{repo, privilege, group, repository}`), by
        repository slug. Raises like any call when Bitbucket refuses it; the caller falls back to the
        per-repository lists."""
        path = f"/1.0/group-privileges/{_seg(slug)}"
        body = self.client.get(path, workspace=slug)
        if not isinstance(body, list):
            raise MalformedResponseError(
                "expected a JSON array of group privileges", endpoint=path, workspace=slug
            )
        out: dict[str, list[GroupGrant]] = {}
        for repository, grant in self._parse(body, _group_privilege, path, 1, slug):
            out.setdefault(repository, []).append(grant)
        return out

    # projects, repositories and their permission lists

    def project_pages(self, slug: str, resume_from: str | None = None) -> Iterator[Page[Project]]:
        return self._pages(f"{_workspace(slug)}/projects", slug, resume_from, _project)

    def repository_pages(self, slug: str, resume_from: str | None = None) -> Iterator[Page[Repository]]:
        return self._pages(f"/2.0/repositories/{_seg(slug)}", slug, resume_from, _repository)

    def effective_permission_pages(
        self, slug: str, resume_from: str | None = None
    ) -> Iterator[Page[EffectivePermission]]:
        """Bitbucket's own effective repository permissions of every user (administrators only)."""
        return self._pages(f"{_workspace(slug)}/permissions/repositories", slug, resume_from, _effective)

    def project(self, slug: str, project_key: str) -> Project:
        """One project, read by its key (`NotFoundError` when Bitbucket says it does not exist)."""
        path = f"{_workspace(slug)}/projects/{_seg(project_key)}"
        return _project(self.client.get(path, workspace=slug), path)

    def repository(self, slug: str, repository: str) -> Repository:
        """One repository, read by slug or `{uuid}` (which Bitbucket accepts in the path and which survives a
        rename); `NotFoundError` when Bitbucket says it does not exist."""
        path = _repository_path(slug, repository)
        return _repository(self.client.get(path, workspace=slug), path)

    def project_user_grants(self, slug: str, project_key: str) -> list[UserGrant]:
        return self._user_grants(f"{_workspace(slug)}/projects/{_seg(project_key)}", slug)

    def project_group_grants(self, slug: str, project_key: str) -> list[GroupGrant]:
        return self._group_grants(f"{_workspace(slug)}/projects/{_seg(project_key)}", slug)

    def repository_user_grants(self, slug: str, repository: str) -> list[UserGrant]:
        """A repository's users list; `repository` is its slug or `{uuid}` (a sync reads by `{uuid}`, so
        that a repository renamed since it was listed keeps its lists)."""
        return self._user_grants(_repository_path(slug, repository), slug)

    def repository_group_grants(self, slug: str, repository: str) -> list[GroupGrant]:
        return self._group_grants(_repository_path(slug, repository), slug)

    # change control (admin scopes: `admin:repository`, and `admin:project` for project keys)

    def branch_restrictions(self, slug: str, repository: str) -> list[BranchRestriction]:
        return self._entries(f"{_repository_path(slug, repository)}/branch-restrictions", slug, _restriction)

    def effective_branching_model(self, slug: str, repository: str) -> BranchingModel:
        path = f"{_repository_path(slug, repository)}/effective-branching-model"
        return _branching_model(self.client.get(path, workspace=slug), path)

    def override_settings(self, slug: str, repository: str) -> InheritanceState:
        path = f"{_repository_path(slug, repository)}/override-settings"
        body = self.client.get(path, workspace=slug)
        if not isinstance(body, dict):
            raise MalformedResponseError("expected a JSON object", endpoint=path, workspace=slug)
        overrides = body.get("override_settings")
        overridden = overrides.get("branching_model") if isinstance(overrides, dict) else None
        return InheritanceState(overridden if isinstance(overridden, bool) else None, body)

    def repository_deploy_keys(self, slug: str, repository: str) -> list[DeployKey]:
        path = f"{_repository_path(slug, repository)}/deploy-keys"
        return self._entries(path, slug, lambda k, e: _deploy_key(k, e, "owner"))

    def project_deploy_keys(self, slug: str, project_key: str) -> list[DeployKey]:
        path = f"{_workspace(slug)}/projects/{_seg(project_key)}/deploy-keys"
        return self._entries(path, slug, lambda k, e: _deploy_key(k, e, "created_by"))

    def workspace_members_2fa(self, slug: str) -> list[WorkspaceMember]:
        """`/members` with `fields=+values.user.has_2fa_enabled`: read only where `/permissions` ignored the
        field (`WorkspaceMember.has_2fa_enabled` is then absent from every entry)."""
        path = f"{_workspace(slug)}/members"
        return [
            item
            for page in self.client.pages(path, {"fields": TWO_STEP_FIELDS}, workspace=slug)
            for item in self._parse(page[0], _member, path, 1, slug)
        ]

    # what `check` probes

    def sync_read_probes(self, slug: str) -> list[tuple[str, Callable[[], Any]]]:
        """One call per kind of 2.0 list a sync reads in a workspace: the first page (of the sync's 100) of
        each, parsed as a sync parses it, so that entries a sync would skip reach `on_skip` here too. (The
        groups, which a sync reads first, are `groups`.)"""
        ws = _workspace(slug)
        lists: list[tuple[str, Callable[[Any, str], Any]]] = [
            (f"{ws}/permissions", _member),
            (f"{ws}/projects", _project),
            (f"{ws}/permissions/repositories", _effective),
            (f"/2.0/repositories/{_seg(slug)}", _repository),
        ]
        probes: list[tuple[str, Callable[[], Any]]] = [
            (path, lambda path=path, parse=parse: self._first_page(path, parse, slug))
            for path, parse in lists
        ]
        return probes

    def _first_page(self, path: str, parse: Callable[[Any, str], T], slug: str) -> list[T]:
        values, _, _ = next(self.client.pages(path, workspace=slug))
        return self._parse(values, parse, path, 1, slug)

    def first_repository(self, slug: str) -> Repository | None:
        path = f"/2.0/repositories/{_seg(slug)}"
        for values, _, _ in self.client.pages(path, {"pagelen": 1}, workspace=slug):
            return _typed(_repository, values[0], path, 1) if values else None
        return None

    # internals

    def _pages(
        self, path: str, slug: str, resume_from: str | None, parse: Callable[[Any, str], T]
    ) -> Iterator[Page[T]]:
        for number, (values, next_url, size) in enumerate(
            self.client.pages(path, workspace=slug, resume_from=resume_from), 1
        ):
            yield Page(self._parse(values, parse, path, number, slug), next_url, size)

    def _entries(self, path: str, slug: str, parse: Callable[[Any, str], T]) -> list[T]:
        """Every entry of every page of a 2.0 list."""
        return [item for page in self._pages(path, slug, None, parse) for item in page.items]

    def _parse(
        self, values: list, parse: Callable[[Any, str], T], endpoint: str, page: int, slug: str
    ) -> list[T]:
        """The entries of one page; one that lacks its identity goes to `on_skip` (or fails without one)."""
        items = []
        for value in values:
            try:
                items.append(_typed(parse, value, endpoint, page))
            except MissingFieldError as exc:
                if self.on_skip is None:
                    raise
                self.on_skip(SkippedEntry(slug, endpoint, page, f"entry without `{exc.field}`", value))
        return items

    def _user_grants(self, resource: str, slug: str) -> list[UserGrant]:
        return self._entries(f"{resource}/permissions-config/users", slug, _user_grant)

    def _group_grants(self, resource: str, slug: str) -> list[GroupGrant]:
        return self._entries(f"{resource}/permissions-config/groups", slug, _group_grant)


# ---- paths and parsing ----


def _workspace(slug: str) -> str:
    return f"/2.0/workspaces/{_seg(slug)}"


def _group(slug: str, group: str) -> str:
    return f"/1.0/groups/{_seg(slug)}/{_seg(group)}"


def _repository_path(slug: str, repository_slug: str) -> str:
    return f"/2.0/repositories/{_seg(slug)}/{_seg(repository_slug)}"


def _typed(parse: Callable[[Any, str], T], value: Any, endpoint: str, page: int | None = None) -> T:
    """`parse(value)`, where JSON of a shape the model cannot use (an array where an object belongs, an object
    where text belongs) is a `MalformedResponseError` naming the endpoint; a missing identity stays a
    `MissingFieldError` (a list skips such an entry)."""
    try:
        item = parse(value, endpoint)
    except MissingFieldError:
        raise
    except (AttributeError, TypeError, KeyError, IndexError, ValueError):
        item = None
    if item is None or not _scalar_fields(item):
        where = f"page {page}: " if page else ""
        raise MalformedResponseError(
            f"{where}an object of a shape Bitbucket does not send ({type(value).__name__})", endpoint=endpoint
        )
    return item


def _scalar_tuple(value: Any) -> bool:
    """A plain pair of a parsed result (such as a group's slug and name): text or nothing."""
    if not isinstance(value, tuple):
        return False
    return all(v is None or isinstance(v, str) for v in value)


def _scalar_fields(item: Any) -> bool:
    """Every field of a parsed result (or of each part of a pair) but its raw JSON holds text, a number, a
    boolean or nothing (or results of its own, such as a group's members)."""
    if isinstance(item, tuple):
        return all(_scalar_fields(part) if is_dataclass(part) else isinstance(part, str) for part in item)
    for f in fields(item):
        value = getattr(item, f.name)
        if f.name == "raw":
            ok = isinstance(value, dict)
        elif is_dataclass(value):
            ok = _scalar_fields(value)
        elif isinstance(value, tuple):  # results of its own, or plain pairs such as (group slug, name)
            ok = all(_scalar_fields(v) if is_dataclass(v) else _scalar_tuple(v) for v in value)
        else:
            ok = value is None or isinstance(value, str | int | float | bool)
        if not ok:
            return False
    return True


def _required(obj: Any, name: str, endpoint: str) -> Any:
    """A field the model needs, or an error naming the endpoint and the missing field."""
    if not isinstance(obj, dict) or obj.get(name) in (None, ""):
        raise MissingFieldError(name, endpoint)
    return obj[name]


def _user(obj: Any, endpoint: str) -> User:
    """A 2.0 user object, or a 1.0 one (no `type`; `is_team` says whether it is a team)."""
    kind = obj.get("type") if isinstance(obj, dict) else None
    if kind is None and isinstance(obj, dict) and isinstance(obj.get("is_team"), bool):
        kind = "team" if obj["is_team"] else "user"
    return User(
        uuid=_required(obj, "uuid", endpoint),
        account_id=obj.get("account_id") or None,
        display_name=obj.get("display_name"),
        nickname=obj.get("nickname") or None,
        type=kind,
        raw=obj,
    )


def _member(entry: Any, endpoint: str) -> WorkspaceMember:
    user = _required(entry, "user", endpoint)
    tfa = user.get("has_2fa_enabled") if isinstance(user, dict) else None
    return WorkspaceMember(
        user=_user(user, endpoint),
        permission=entry.get("permission"),
        added_on=entry.get("added_on"),
        last_accessed=entry.get("last_accessed"),
        raw=entry,
        has_2fa_enabled=tfa if isinstance(tfa, bool) else None,
        has_2fa_reported=isinstance(user, dict) and "has_2fa_enabled" in user,
    )


def _project(p: Any, endpoint: str) -> Project:
    return Project(
        uuid=_required(p, "uuid", endpoint),
        key=_required(p, "key", endpoint),
        name=p.get("name"),
        is_private=p.get("is_private"),
        created_on=p.get("created_on"),
        updated_on=p.get("updated_on"),
        raw=p,
    )


def _repository(r: Any, endpoint: str) -> Repository:
    slug = (r.get("slug") if isinstance(r, dict) else None) or _required(r, "full_name", endpoint).split(
        "/", 1
    )[1]
    project = r.get("project") or {}
    return Repository(
        uuid=_required(r, "uuid", endpoint),
        slug=slug,
        full_name=r.get("full_name"),
        name=r.get("name"),
        project_uuid=project.get("uuid"),
        project_key=project.get("key"),
        is_private=r.get("is_private"),
        created_on=r.get("created_on"),
        updated_on=r.get("updated_on"),
        raw=r,
    )


def _user_grant(item: Any, endpoint: str) -> UserGrant:
    permission = _required(item, "permission", endpoint)
    return UserGrant(user=_user(_required(item, "user", endpoint), endpoint), permission=permission, raw=item)


def _group_grant(item: Any, endpoint: str) -> GroupGrant:
    permission = _required(item, "permission", endpoint)
    group = _required(item, "group", endpoint)
    return GroupGrant(_required(group, "slug", endpoint), group.get("name"), permission, item)


def _group_privilege(entry: Any, endpoint: str) -> tuple[str, GroupGrant]:
    """`(repository slug, grant)` from a 1.0 group-privileges entry (`repo` is `workspace/slug`). The raw JSON
    kept is the entry with its group reduced to slug and name: the embedded member list is the group's, not
    the grant's."""
    repository = (entry.get("repository") or {}).get("slug") if isinstance(entry, dict) else None
    repository = repository or str(_required(entry, "repo", endpoint)).split("/", 1)[-1]
    group = _required(entry, "group", endpoint)
    grant = GroupGrant(
        _required(group, "slug", endpoint),
        group.get("name"),
        _required(entry, "privilege", endpoint),
        {k: v for k, v in entry.items() if k != "group"}
        | {"group": {"slug": group["slug"], "name": group.get("name")}},
    )
    return repository, grant


def _restriction(item: Any, endpoint: str) -> BranchRestriction:
    kind = _required(item, "kind", endpoint)
    rule_id = _required(item, "id", endpoint)
    if not isinstance(rule_id, int) or isinstance(rule_id, bool):
        raise MalformedResponseError(
            f"branch restriction id {rule_id!r} is not an integer", endpoint=endpoint
        )
    value = item.get("value")
    groups = []
    for g in item.get("groups") or []:
        groups.append((_required(g, "slug", endpoint), g.get("name") if isinstance(g, dict) else None))
    return BranchRestriction(
        id=rule_id,
        kind=str(kind),
        branch_match_kind=str(item.get("branch_match_kind") or "glob"),  # the spec's default
        pattern=item.get("pattern"),
        branch_type=item.get("branch_type"),
        value=value if isinstance(value, int) and not isinstance(value, bool) else None,
        users=tuple(_user(u, endpoint) for u in item.get("users") or []),
        groups=tuple(groups),
        raw=item,
    )


def _branching_model(body: Any, endpoint: str) -> BranchingModel:
    if not isinstance(body, dict):
        raise MalformedResponseError("expected a JSON object", endpoint=endpoint)

    def target(name: str) -> tuple[str | None, bool | None]:
        part = body.get(name)
        if not isinstance(part, dict):
            return None, None
        branch = part.get("branch") if isinstance(part.get("branch"), dict) else {}
        use_main = part.get("use_mainbranch")
        name = part.get("name") or branch.get("name")
        return (name if isinstance(name, str) else None), (use_main if isinstance(use_main, bool) else None)

    production, use_main = target("production")
    development, _ = target("development")
    return BranchingModel(production, use_main, development, body)


def _deploy_key(item: Any, endpoint: str, by: str) -> DeployKey:
    key_id = _required(item, "id", endpoint)
    adder = item.get(by)
    return DeployKey(
        id=key_id,
        label=item.get("label"),
        # The schema names `added_on`; the spec's examples carry `created_on` only.
        added_on=item.get("added_on") or item.get("created_on"),
        last_used=item.get("last_used"),
        added_by=_user(adder, endpoint) if isinstance(adder, dict) and adder.get("uuid") else None,
        raw=item,
    )


def _effective(e: Any, endpoint: str) -> EffectivePermission:
    repo = _required(e, "repository", endpoint)
    return EffectivePermission(
        repository_uuid=_required(repo, "uuid", endpoint),
        repository_name=repo.get("name"),
        user=_user(_required(e, "user", endpoint), endpoint),
        permission=_required(e, "permission", endpoint),
        raw=e,
    )
