"""The simulated Bitbucket Cloud HTTP API: a Starlette app over an `Organisation`.

Request flow: fault injection and the request log (ASGI middleware) → authentication → rate limit →
scope check (from the official spec) → role check (owner / project admin / repository admin) →
handler. Every 2.0 list is paginated with opaque `next` links; `q` and `sort` use the BBQL subset.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from . import bbql
from .admin_api import AdminApi, OrgKeys
from .auth import (
    GROUPS_READ,
    GROUPS_WRITE,
    AuthError,
    Credential,
    CredentialStore,
    OperationScopes,
    check_scopes,
    spec_scopes,
)
from .change_control import production_rules
from .faults import RATE_LIMIT_BODY, Faults, RateLimit
from .generate import advance
from .model import (
    PROJECT_PERMISSIONS,
    REPOSITORY_PERMISSIONS,
    Organisation,
    Project,
    Repository,
    Workspace,
    find_repository,
)
from .payloads import Payloads, error_body

# Default credentials of every simulated organisation (all belong to its operator user).
SIM_API_TOKEN = "ATATT3xSimulatedApiToken0000"
SIM_ACCESS_TOKEN = "ATCTT3xSimulatedWorkspaceAccessToken0000"
SIM_OAUTH_CLIENT_ID = "sim-oauth-client"
SIM_OAUTH_CLIENT_SECRET = "sim-oauth-secret-0000"
SIM_APP_PASSWORD = "ATBBSimulatedAppPassword0000"

REMOVED_PATHS = (
    "/2.0/workspaces",
    "/2.0/user/permissions/workspaces",
    "/2.0/user/permissions/repositories",
    "/2.0/repositories",
)
CHANGE_2770 = error_body(
    "CHANGE-2770 - Functionality has been deprecated",
    "Please read the changelog entry for more details.",
    {"announcement_url": "https://developer.atlassian.com/cloud/bitbucket/changelog#CHANGE-2770"},
)

# What Bitbucket's router answers for a path no API serves, as quoted in public issue threads
# (atlassian-api/atlassian-python-api#1146, #1471) and recorded by public clients (gildas/bitbucket-cli,
# testdata/error-noapi.json).
NO_API_HERE = error_body(
    "Resource not found",
    "There is no API hosted at this URL.\n\nFor information about our API's, please refer to the "
    "documentation at: https://developer.atlassian.com/bitbucket/api/2/reference/",
)


class JSONResponse(StarletteJSONResponse):
    """orjson-rendered JSON: list pages of `large` are big, and the simulator must never be the bottleneck."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ApiError(Exception):
    def __init__(self, status: int, message: str, detail: object = None):
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


@dataclass
class RequestRecord:
    """One line of the request log: enough to count calls, never a secret."""

    at: float
    method: str
    path: str
    query: str
    status: int
    credential: str  # api_token | access_token | oauth | anonymous | ""
    fault: str | None = None


def default_credentials(org: Organisation) -> CredentialStore:
    store = CredentialStore()
    operator = org.users.get(org.operator_uuid or "")
    if operator is None:
        return store
    store.add_api_token(operator.email, SIM_API_TOKEN, operator.uuid)
    first = next(iter(org.workspaces), None)
    if first:
        store.add_access_token(SIM_ACCESS_TOKEN, f"{first}-sync-token", first)
    store.add_oauth_consumer(SIM_OAUTH_CLIENT_ID, SIM_OAUTH_CLIENT_SECRET, operator.uuid)
    store.add_app_password(operator.nickname, SIM_APP_PASSWORD)
    return store


class Simulator:
    """State and behaviour of one simulated Bitbucket; `app` is the ASGI application serving it."""

    def __init__(
        self,
        org: Organisation,
        *,
        credentials: CredentialStore | None = None,
        rate_limit: RateLimit | None = None,
        faults: Faults | None = None,
        removed_status: int = 410,
        admin_keys: OrgKeys | None = None,
        admin_page_limit: int = 100,
        group_privileges_status: int | None = None,
        groups_status: dict[str, int] | None = None,
    ):
        """`group_privileges_status`: answer `/1.0/group-privileges` with this error status (404, 403, 410)
        instead, as Bitbucket may for a workspace where the 1.0 API is no longer served. `groups_status`:
        answer `/1.0/groups/{workspace}` of these workspaces with this error status instead (a workspace whose
        groups an administrator's credential cannot read: DrFaust92/terraform-provider-bitbucket#235 reports
        403 and 405 for workspaces administered from admin.atlassian.com)."""
        self.org = org
        self.admin = AdminApi(self, admin_keys, admin_page_limit)
        self.credentials = credentials or default_credentials(org)
        self.rate_limit = rate_limit
        self.faults = faults or Faults()
        self.removed_status = removed_status
        self.group_privileges_status = group_privileges_status
        self.groups_status = dict(groups_status or {})
        self.request_log: list[RequestRecord] = []
        self.odd_entries = 0  # entries given `user: null` by the odd_entry_rate fault, for tests to compare
        # Called after each API request is answered: how a test makes something happen in Bitbucket mid-sync.
        self.after_request: list[Callable[[RequestRecord], None]] = []
        self.lock = threading.RLock()
        self._effective_cache: tuple[int, dict[str, dict[str, str]]] = (-1, {})
        self._render_cache: dict[tuple, Any] = {}
        self._render_version = -1
        self.app = _FaultsAndLog(
            self, Starlette(routes=self._routes(), exception_handlers={404: self.no_api_here})
        )

    # ---- state helpers used by tests, benchmarks and the control endpoints ----

    def advance(self, days: int = 1, churn: float = 0.01) -> dict[str, int]:
        with self.lock:
            return advance(self.org, days, churn)

    def calls(
        self, method: str | None = None, prefix: str = "", status: int | None = None
    ) -> list[RequestRecord]:
        return [
            r
            for r in list(self.request_log)
            if (method is None or r.method == method)
            and r.path.startswith(prefix)
            and (status is None or r.status == status)
        ]

    def cached(self, key: tuple, render: Callable[..., Any], *args: Any) -> Any:
        """A rendered payload (or derived list), reused until the organisation changes (`org.touch()`)."""
        if self._render_version != self.org.version:
            self._render_cache.clear()
            self._render_version = self.org.version
        if key not in self._render_cache:
            self._render_cache[key] = render(*args)
        return self._render_cache[key]

    def effective(self, ws: Workspace, repo: Repository) -> dict[str, str]:
        version, cache = self._effective_cache
        if version != self.org.version:
            cache = {}
            self._effective_cache = (self.org.version, cache)
        key = f"{ws.slug}/{repo.slug}"
        if key not in cache:
            cache[key] = ws.effective_repository_permissions(repo)
        return cache[key]

    # ---- routing ----

    def _routes(self) -> list[Route]:
        r = self._route
        ws = "/2.0/workspaces/{workspace}"
        proj = ws + "/projects/{project_key}"
        repo = "/2.0/repositories/{workspace}/{repo_slug}"
        routes = [
            r("GET", "/2.0/user", self.get_user),
            r("GET", "/2.0/users/{selected_user}", self.get_other_user),
            r("GET", "/2.0/user/workspaces", self.list_user_workspaces),
            r("GET", "/2.0/user/workspaces/{workspace}/permission", self.get_user_workspace_permission),
            r(
                "GET",
                "/2.0/user/workspaces/{workspace}/permissions/repositories",
                self.list_user_repo_permissions,
            ),
            r("GET", ws, self.get_workspace),
            r("GET", ws + "/members", self.list_members),
            r("GET", ws + "/members/{member}", self.get_member),
            r("GET", ws + "/permissions", self.list_workspace_permissions, permission=True),
            r("GET", ws + "/permissions/repositories", self.list_effective, permission=True),
            r("GET", ws + "/permissions/repositories/{repo_slug}", self.list_effective_one, permission=True),
            r("GET", ws + "/projects", self.list_projects),
            r("GET", proj, self.get_project),
            r("GET", proj + "/default-reviewers", self.list_default_reviewers),
            # Public repositories can be read anonymously; private ones answer 404.
            r("GET", "/2.0/repositories/{workspace}", self.list_repositories, anonymous=True),
            r("GET", repo, self.get_repository, anonymous=True),
            # Change control (docs/simulator.md, "Change control"): admin-scoped except the branching model.
            r("GET", repo + "/branch-restrictions", self.list_branch_restrictions),
            r("GET", repo + "/effective-branching-model", self.get_effective_branching_model),
            r("GET", repo + "/override-settings", self.get_override_settings),
            r("GET", repo + "/deploy-keys", self.list_repository_deploy_keys),
            r("GET", proj + "/deploy-keys", self.list_project_deploy_keys),
        ]
        for base, scope in ((proj, "project"), (repo, "repository")):
            for who, ident in (("users", "selected_user_id"), ("groups", "group_slug")):
                path = f"{base}/permissions-config/{who}"
                routes.append(r("GET", path, self._grant_list(scope, who), permission=True))
                for method in ("GET", "PUT", "DELETE"):
                    handler = self._grant_item(scope, who, ident, method)
                    routes.append(
                        r(method, f"{path}/{{{ident}}}", handler, permission=True, write=method != "GET")
                    )
        groups_read = OperationScopes(GROUPS_READ["api_token"], GROUPS_READ["classic"])
        groups_write = OperationScopes(GROUPS_WRITE["api_token"], GROUPS_WRITE["classic"])
        routes += [
            r("GET", "/1.0/groups/{workspace}", self.list_groups_v1, permission=True, scopes=groups_read),
            r(
                "GET",
                "/1.0/group-privileges/{workspace}",
                self.list_group_privileges_v1,
                permission=True,
                scopes=groups_read,
            ),
            r(
                "GET",
                "/1.0/groups/{workspace}/{group_slug}/members",
                self.list_group_members_v1,
                permission=True,
                scopes=groups_read,
            ),
        ]
        for method in ("PUT", "DELETE"):
            routes.append(
                r(
                    method,
                    "/1.0/groups/{workspace}/{group_slug}/members/{member}",
                    self.change_group_member_v1,
                    permission=True,
                    write=True,
                    scopes=groups_write,
                )
            )
        routes += self.admin.routes()  # the Atlassian Admin API (admin_api.py)
        for path in REMOVED_PATHS:
            routes.append(Route(path, self.removed, methods=["GET"]))
        routes += [
            Route("/site/oauth2/access_token", self.oauth_token, methods=["POST"]),
            Route("/_sim/summary", self.sim_summary, methods=["GET"]),
            Route("/_sim/change-control", self.sim_change_control, methods=["GET"]),
            Route("/_sim/requests", self.sim_requests, methods=["GET", "DELETE"]),
            Route("/_sim/advance", self.sim_advance, methods=["POST"]),
            Route("/_sim/faults", self.sim_faults, methods=["POST"]),
            Route("/_sim/rate-limit", self.sim_rate_limit, methods=["POST"]),
        ]
        return routes

    def _route(
        self,
        method: str,
        path: str,
        handler: Callable[..., Any],
        *,
        permission: bool = False,
        write: bool = False,
        scopes: OperationScopes | None = None,
        anonymous: bool = False,
    ) -> Route:
        needed = scopes or spec_scopes().get((method, path)) or OperationScopes([], [])
        group = "repositories" if path.startswith("/2.0/repositories") else "api"

        async def endpoint(request: Request) -> Response:
            try:
                cred = self.credentials.authenticate(
                    request.headers.get("authorization"), request.client.host if request.client else "?"
                )
                request.state.credential_kind = cred.kind
                if self.rate_limit is not None:
                    wait = self.rate_limit.admit(cred.rate_key, group)
                    if wait is not None:
                        headers = (
                            {"Retry-After": str(max(1, round(wait)))} if self.rate_limit.retry_after else {}
                        )
                        return PlainTextResponse(RATE_LIMIT_BODY, status_code=429, headers=headers)
                if cred.kind == "anonymous" and not anonymous:
                    raise AuthError(
                        401,
                        "Authentication required: send an API token (Basic, with your email) or a Bearer.",
                    )
                if cred.kind != "anonymous":  # anonymous callers only reach public data
                    check_scopes(cred, needed, permission, write)
                with self.lock:
                    return await handler(request, cred)
            except AuthError as exc:
                headers = (
                    {"WWW-Authenticate": 'Basic realm="Bitbucket.org HTTP"'} if exc.status == 401 else {}
                )
                return JSONResponse(
                    error_body(exc.message, exc.detail), status_code=exc.status, headers=headers
                )
            except (ApiError, bbql.QueryError) as exc:
                status = getattr(exc, "status", 400)
                return JSONResponse(error_body(str(exc), getattr(exc, "detail", None)), status_code=status)

        endpoint.__name__ = handler.__name__
        return Route(path, endpoint, methods=[method])

    # ---- shared helpers ----

    def payloads(self, request: Request) -> Payloads:
        return Payloads(self.org, f"{request.url.scheme}://{request.url.netloc}")

    def workspace(self, cred: Credential, identifier: str) -> Workspace:
        ws = self.org.workspace(identifier)
        visible = ws is not None and (
            cred.workspace == ws.slug
            or cred.user_uuid in ws.members
            or not ws.is_private
            or cred.kind == "anonymous"
        )
        if visible:
            return ws
        raise ApiError(404, f"No workspace found with identifier {identifier!r}")

    def role(self, cred: Credential, ws: Workspace) -> str | None:
        if cred.workspace == ws.slug:
            return "member"
        m = ws.members.get(cred.user_uuid or "")
        return m.role if m else None

    def require_owner(self, cred: Credential, ws: Workspace) -> None:
        if self.role(cred, ws) != "owner":
            raise ApiError(
                403,
                f"Only users with admin permission for the workspace {ws.slug!r} may access this resource.",
            )

    def project(self, ws: Workspace, key: str) -> Project:
        if key not in ws.projects:
            raise ApiError(404, f"Project {key!r} not found in workspace {ws.slug!r}")
        return ws.projects[key]

    def repository(self, cred: Credential, ws: Workspace, identifier: str) -> Repository:
        repo = find_repository(ws, identifier)
        if repo is None or not self.can_see(cred, ws, repo):
            # Bitbucket answers 404, not 403, for private repositories the caller cannot see.
            raise ApiError(404, f"Repository {ws.slug}/{identifier} not found")
        return repo

    def can_see(self, cred: Credential, ws: Workspace, repo: Repository) -> bool:
        if not repo.is_private or cred.workspace == ws.slug or self.role(cred, ws) == "owner":
            return True
        return bool(cred.user_uuid) and cred.user_uuid in self.effective(ws, repo)

    def require_project_admin(self, cred: Credential, ws: Workspace, project: Project) -> None:
        if ws.effective_project_permission(project, cred.user_uuid or "") != "admin":
            raise ApiError(403, f"You must be an administrator of project {project.key!r} to do this.")

    def require_repo_admin(self, cred: Credential, ws: Workspace, repo: Repository) -> None:
        # A workspace access token reaches every repository of its workspace with the scopes it was given
        # (check_scopes has checked them): "Access tokens can interact with branch restriction APIs"
        # (Atlassian, "Access tokens"; docs/simulator.md).
        if cred.kind == "access_token" and cred.workspace == ws.slug:
            return
        if self.effective(ws, repo).get(cred.user_uuid or "") != "admin":
            raise ApiError(
                403, f"You must be an administrator of repository {ws.slug}/{repo.slug} to do this."
            )

    def page(
        self,
        request: Request,
        items: Sequence[Any],
        render: Callable[[Any], dict],
        fields: dict[str, bbql.Accessor] | None = None,
        with_size: bool = True,
        default_pagelen: int = 10,
    ) -> Response:
        """One page of a 2.0 collection with BBQL filtering/sorting and an opaque `next` link."""
        params = request.query_params
        if "q" in params:
            if fields is None:
                raise ApiError(400, "This endpoint does not support BBQL features")
            predicate = bbql.parse(params["q"], fields)
            items = [item for item in items if predicate(item)]
        if "sort" in params:
            if fields is None:
                raise ApiError(400, "This endpoint does not support sorting")
            key, descending = bbql.sort_key(params["sort"], fields)
            items = sorted(items, key=key, reverse=descending)
        try:
            pagelen = int(params.get("pagelen", default_pagelen))
        except ValueError as exc:
            raise ApiError(400, "pagelen must be an integer") from exc
        if not 1 <= pagelen <= 100:
            raise ApiError(400, f"Invalid pagelen {pagelen}: the maximum is 100")
        offset = _decode_page(params.get("page"), pagelen)
        chunk = items[offset : offset + pagelen]
        body: dict[str, Any] = {"pagelen": pagelen, "values": [render(x) for x in chunk]}
        if with_size:
            body["size"] = len(items)
            body["page"] = offset // pagelen + 1
        kept = {k: v for k, v in params.multi_items() if k != "page"}
        base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        if offset + pagelen < len(items):
            body["next"] = f"{base}?{urlencode([*kept.items(), ('page', _encode_page(offset + pagelen))])}"
        if with_size and offset > 0:
            body["previous"] = (
                f"{base}?{urlencode([*kept.items(), ('page', _encode_page(max(0, offset - pagelen)))])}"
            )
        _apply_fields(body, params.get("fields"))
        return JSONResponse(body)

    # ---- /2.0/user* ----

    async def get_user(self, request: Request, cred: Credential) -> Response:
        if cred.kind == "access_token":
            return JSONResponse(
                {
                    "type": "user",
                    "display_name": self.credentials_name(cred),
                    "uuid": "{00000000-0000-4000-8000-000000000000}",
                }
            )
        return JSONResponse(self.payloads(request).user(self.org.users[cred.user_uuid], full=True))

    def credentials_name(self, cred: Credential) -> str:
        return cred.rate_key.removeprefix("token:")

    async def get_other_user(self, request: Request, cred: Credential) -> Response:
        user = self.org.user(request.path_params["selected_user"])
        if user is None:
            raise ApiError(404, f"User {request.path_params['selected_user']!r} not found")
        return JSONResponse(self.payloads(request).user(user, full=True))

    async def list_user_workspaces(self, request: Request, cred: Credential) -> Response:
        p = self.payloads(request)
        mine = [ws for ws in self.org.workspaces.values() if self.role(cred, ws)]
        admin_filter = request.query_params.get("administrator")
        if admin_filter is not None:
            want = admin_filter.lower() == "true"
            mine = [ws for ws in mine if (self.role(cred, ws) == "owner") == want]
        fields = {
            "slug": lambda w: w.slug,
            "workspace.slug": lambda w: w.slug,
            "workspace.uuid": lambda w: w.uuid,
        }
        return self.page(
            request,
            mine,
            lambda w: p.workspace_access(w, self.role(cred, w) == "owner"),
            fields,
            default_pagelen=25,
        )

    async def get_user_workspace_permission(self, request: Request, cred: Credential) -> Response:
        ws = self.org.workspace(request.path_params["workspace"])
        if ws is None or cred.user_uuid not in ws.members:
            raise ApiError(403, "The user does not have access to the workspace.")
        return JSONResponse(
            self.payloads(request).membership(ws, ws.members[cred.user_uuid], with_permission=True)
        )

    async def list_user_repo_permissions(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        p = self.payloads(request)
        user = self.org.users.get(cred.user_uuid or "")
        rows = [
            (r, perm) for r in ws.repositories.values() if (perm := r.user_grants.get(cred.user_uuid or ""))
        ]
        fields = {"repository.name": lambda x: x[0].name, "permission": lambda x: x[1]}
        return self.page(request, rows, lambda x: p.repository_permission(ws, x[0], user, x[1]), fields)

    # ---- /2.0/workspaces/{workspace}* ----

    async def get_workspace(self, request: Request, cred: Credential) -> Response:
        return JSONResponse(
            self.payloads(request).workspace(self.workspace(cred, request.path_params["workspace"]))
        )

    def _member_fields(self) -> dict[str, bbql.Accessor]:
        users = self.org.users
        return {
            "user.uuid": lambda m: m.user_uuid,
            "user.account_id": lambda m: users[m.user_uuid].account_id,
            "user.display_name": lambda m: users[m.user_uuid].display_name,
            "user.nickname": lambda m: users[m.user_uuid].nickname,
            "permission": lambda m: m.role,
        }

    async def list_members(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        p = self.payloads(request)
        fields = self._member_fields()
        fields.pop("permission")
        tfa = _asks_2fa(request)
        return self.page(
            request,
            list(ws.members.values()),
            lambda m: self.cached(
                ("member", p.web, ws.slug, m.user_uuid, tfa), p.membership, ws, m, False, tfa
            ),
            fields,
            default_pagelen=50,
        )

    async def get_member(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        user = self.org.user(request.path_params["member"])
        if user is None or user.uuid not in ws.members:
            raise ApiError(404, f"{request.path_params['member']} is not a member of workspace {ws.slug!r}")
        return JSONResponse(self.payloads(request).membership(ws, ws.members[user.uuid], False))

    async def list_workspace_permissions(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        p = self.payloads(request)
        # Partial responses are documented as generic, but the staff answer shows
        # `+values.user.has_2fa_enabled` on `/members` only; `documented_shapes: [members_only_2fa]` makes
        # `/permissions` ignore it.
        tfa = _asks_2fa(request) and not self.org.shapes.members_only_2fa
        return self.page(
            request,
            list(ws.members.values()),
            lambda m: p.membership(ws, m, True, tfa),
            self._member_fields(),
        )

    def _effective_rows(self, ws: Workspace, repos: list[Repository]) -> list[tuple[Repository, str, str]]:
        users = self.org.users
        rows = []
        for repo in repos:
            eff = self.effective(ws, repo)
            rows += [(repo, u, eff[u]) for u in sorted(eff, key=lambda u: (users[u].display_name, u))]
        return rows

    def _effective_page(self, request: Request, ws: Workspace, repos: list[Repository]) -> Response:
        p = self.payloads(request)
        users = self.org.users
        fields = {
            "repository.name": lambda x: x[0].name,
            "repository.full_name": lambda x: f"{ws.slug}/{x[0].slug}",
            "repository.uuid": lambda x: x[0].uuid,
            "user.uuid": lambda x: x[1],
            "user.display_name": lambda x: users[x[1]].display_name,
            "permission": lambda x: x[2],
        }
        q = request.query_params.get("q", "")
        if q.startswith('repository.name="') and q.count('"') == 2:  # the common case: one repository
            name = q.split('"')[1]
            repos = [r for r in repos if r.name == name]
        if len(repos) == len(ws.repositories):  # the whole workspace: computed once per organisation version
            rows = self.cached(("effective_rows", ws.slug), self._effective_rows, ws, repos)
        else:
            rows = self._effective_rows(ws, repos)
        render = lambda x: p.repository_permission(ws, x[0], users[x[1]], x[2], effective_list=True)  # noqa: E731
        # Bitbucket leaves `size` out of this expensive listing.
        return self.page(request, rows, render, fields, with_size=False)

    async def list_effective(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        self.require_owner(cred, ws)
        return self._effective_page(request, ws, list(ws.repositories.values()))

    async def list_effective_one(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        repo = self.repository(cred, ws, request.path_params["repo_slug"])
        self.require_repo_admin(cred, ws, repo)
        return self._effective_page(request, ws, [repo])

    async def list_projects(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        p = self.payloads(request)
        fields = {
            "key": lambda x: x.key,
            "name": lambda x: x.name,
            "uuid": lambda x: x.uuid,
            "is_private": lambda x: x.is_private,
        }
        return self.page(request, list(ws.projects.values()), lambda x: p.project(ws, x), fields)

    async def get_project(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        return JSONResponse(
            self.payloads(request).project(ws, self.project(ws, request.path_params["project_key"]))
        )

    async def list_default_reviewers(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        project = self.project(ws, request.path_params["project_key"])
        self.require_project_admin(cred, ws, project)
        p = self.payloads(request)

        def render(u: str) -> dict:
            return {"type": "default_reviewer", "reviewer_type": "project", "user": p.user(self.org.users[u])}

        return self.page(request, project.default_reviewers, render)

    # ---- repositories ----

    async def list_repositories(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        p = self.payloads(request)
        if cred.workspace == ws.slug or self.role(cred, ws) == "owner":
            repos = list(ws.repositories.values())
        else:
            repos = [r for r in ws.repositories.values() if self.can_see(cred, ws, r)]
        role = request.query_params.get("role")
        if role:
            if role not in ("member", "contributor", "admin", "owner"):
                raise ApiError(400, f"Invalid role {role!r}")
            need = {"member": "read", "contributor": "write", "admin": "admin", "owner": "admin"}[role]
            rank = {"read": 1, "write": 2, "admin": 3}
            repos = [
                r for r in repos if rank.get(self.effective(ws, r).get(cred.user_uuid or ""), 0) >= rank[need]
            ]
        fields = {
            "slug": lambda r: r.slug,
            "name": lambda r: r.name,
            "uuid": lambda r: r.uuid,
            "full_name": lambda r: f"{ws.slug}/{r.slug}",
            "project.key": lambda r: r.project_key,
            "project.uuid": lambda r: ws.projects[r.project_key].uuid,
            "is_private": lambda r: r.is_private,
            "created_on": lambda r: r.created_on.isoformat(),
            "updated_on": lambda r: r.updated_on.isoformat(),
        }
        return self.page(
            request,
            repos,
            lambda r: self.cached(("repository", p.web, ws.slug, r.slug), p.repository, ws, r),
            fields,
        )

    async def get_repository(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        repo = self.repository(cred, ws, request.path_params["repo_slug"])
        return JSONResponse(self.payloads(request).repository(ws, repo))

    # ---- change control ----

    def _admin_repository(self, request: Request, cred: Credential) -> tuple[Workspace, Repository]:
        ws = self.workspace(cred, request.path_params["workspace"])
        repo = self.repository(cred, ws, request.path_params["repo_slug"])
        self.require_repo_admin(cred, ws, repo)
        return ws, repo

    async def list_branch_restrictions(self, request: Request, cred: Credential) -> Response:
        """Paginated (default pagelen 10), filtered by the spec's `kind` and `pattern` query parameters."""
        ws, repo = self._admin_repository(request, cred)
        p = self.payloads(request)
        rules = list(repo.branch_restrictions)
        for name in ("kind", "pattern"):
            if name in request.query_params:
                rules = [x for x in rules if getattr(x, name) == request.query_params[name]]
        return self.page(request, rules, lambda x: p.branch_restriction(ws, repo, x))

    async def get_effective_branching_model(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        repo = self.repository(cred, ws, request.path_params["repo_slug"])
        return JSONResponse(self.payloads(request).effective_branching_model(ws, repo))

    async def get_override_settings(self, request: Request, cred: Credential) -> Response:
        _, repo = self._admin_repository(request, cred)
        return JSONResponse(self.payloads(request).override_settings(repo))

    async def list_repository_deploy_keys(self, request: Request, cred: Credential) -> Response:
        ws, repo = self._admin_repository(request, cred)
        p = self.payloads(request)
        return self.page(request, list(repo.deploy_keys), lambda k: p.deploy_key(ws, repo, k))

    async def list_project_deploy_keys(self, request: Request, cred: Credential) -> Response:
        ws = self.workspace(cred, request.path_params["workspace"])
        project = self.project(ws, request.path_params["project_key"])
        self.require_project_admin(cred, ws, project)
        p = self.payloads(request)
        return self.page(request, list(project.deploy_keys), lambda k: p.project_deploy_key(ws, project, k))

    # ---- permissions-config (project and repository, users and groups) ----

    def _grant_target(
        self, request: Request, cred: Credential, scope: str
    ) -> tuple[Workspace, Any, dict[str, str], dict[str, str], str]:
        ws = self.workspace(cred, request.path_params["workspace"])
        p = self.payloads(request)
        if scope == "project":
            target = self.project(ws, request.path_params["project_key"])
            self.require_project_admin(cred, ws, target)
            href = f"{p.api}/workspaces/{ws.slug}/projects/{target.key}"
        else:
            target = self.repository(cred, ws, request.path_params["repo_slug"])
            self.require_repo_admin(cred, ws, target)
            href = f"{p.api}/repositories/{ws.slug}/{target.slug}"
        return ws, target, target.user_grants, target.group_grants, href

    def _grant_list(self, scope: str, who: str) -> Callable[..., Any]:
        async def handler(request: Request, cred: Credential) -> Response:
            ws, _, users, groups, href = self._grant_target(request, cred, scope)
            p = self.payloads(request)
            kind = f"{scope}_{who[:-1]}"
            if who == "users":
                render = lambda x: p.grant(kind, href, p.user(self.org.users[x[0]]), x[1], x[0])  # noqa: E731
                rows = list(users.items())
            else:
                render = lambda x: p.grant(kind, href, p.group_ref(ws, ws.groups[x[0]]), x[1], x[0])  # noqa: E731
                rows = list(groups.items())
            # "This endpoint does not support BBQL features"; size and page are left out too.
            return self.page(request, rows, render, None, with_size=False)

        handler.__name__ = f"{scope}_{who}_list"
        return handler

    def _grant_item(self, scope: str, who: str, ident: str, method: str) -> Callable[..., Any]:
        allowed = PROJECT_PERMISSIONS if scope == "project" else REPOSITORY_PERMISSIONS

        async def handler(request: Request, cred: Credential) -> Response:
            ws, _, users, groups, href = self._grant_target(request, cred, scope)
            p = self.payloads(request)
            raw = request.path_params[ident]
            if who == "users":
                user = self.org.user(raw)
                # A grant held by a non-member (a collaborator, an app user) can be read and removed; a new
                # one needs a workspace member (the spec's PUT).
                known = user is not None and (
                    user.uuid in ws.members or (method != "PUT" and user.uuid in users)
                )
                if not known:
                    raise ApiError(404, f"User {raw!r} is not a member of workspace {ws.slug!r}")
                key, grants, subject = user.uuid, users, p.user(user)
            else:
                if raw not in ws.groups:
                    raise ApiError(404, f"Group {raw!r} not found in workspace {ws.slug!r}")
                key, grants, subject = raw, groups, p.group_ref(ws, ws.groups[raw])
            kind = f"{scope}_{who[:-1]}"
            if method == "GET":
                if key not in grants:
                    raise ApiError(404, f"No explicit permission for {raw!r}")
                return JSONResponse(p.grant(kind, href, subject, grants[key], raw))
            if method == "DELETE":
                if key not in grants:
                    raise ApiError(404, f"No explicit permission for {raw!r}")
                del grants[key]
                self.org.touch()
                return Response(status_code=204)
            try:
                body = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError as exc:
                raise ApiError(400, "The request body is not valid JSON") from exc
            permission = body.get("permission") if isinstance(body, dict) else None
            if permission not in allowed:
                raise ApiError(
                    400, f"permission must be one of {', '.join(allowed)}", {"permission": permission}
                )
            if who == "users" and ws.members[key].role == "owner":  # PUT: `key` is a member (checked above)
                raise ApiError(400, "The workspace owner's permission cannot be changed")
            grants[key] = permission
            self.org.touch()
            return JSONResponse(p.grant(kind, href, subject, permission, raw))

        handler.__name__ = f"{scope}_{who}_{method.lower()}"
        return handler

    # ---- 1.0 groups ----

    def _workspace_v1(self, cred: Credential, identifier: str) -> Workspace:
        if identifier.startswith("{"):
            raise ApiError(403, "The 1.0 groups API takes the workspace slug, not its UUID")
        ws = self.workspace(cred, identifier)
        self.require_owner(cred, ws)
        return ws

    async def list_groups_v1(self, request: Request, cred: Credential) -> Response:
        ws = self._workspace_v1(cred, request.path_params["workspace"])
        if ws.slug in self.groups_status:
            raise ApiError(self.groups_status[ws.slug], f"Groups of workspace {ws.slug!r} are not available")
        p = self.payloads(request)
        return JSONResponse([p.group_v1(ws, g) for g in ws.groups.values()])

    async def list_group_privileges_v1(self, request: Request, cred: Credential) -> Response:
        """Every explicit group grant on every repository of the workspace (a bare array, not paginated)."""
        ws = self._workspace_v1(cred, request.path_params["workspace"])
        if self.group_privileges_status is not None:
            raise ApiError(self.group_privileges_status, "Resource not available")
        p = self.payloads(request)
        body = [
            p.group_privilege_v1(ws, r, ws.groups[slug], privilege)
            for r in ws.repositories.values()
            for slug, privilege in r.group_grants.items()
        ]
        return JSONResponse(body)

    async def list_group_members_v1(self, request: Request, cred: Credential) -> Response:
        ws = self._workspace_v1(cred, request.path_params["workspace"])
        group = ws.groups.get(request.path_params["group_slug"])
        if group is None:
            raise ApiError(404, f"Group {request.path_params['group_slug']!r} not found")
        p = self.payloads(request)
        return JSONResponse([p.user_v1(self.org.users[u]) for u in group.members])

    async def change_group_member_v1(self, request: Request, cred: Credential) -> Response:
        ws = self._workspace_v1(cred, request.path_params["workspace"])
        if ws.admin_managed:
            raise ApiError(
                403,
                f"Groups in workspace {ws.slug!r} are managed from admin.atlassian.com; "
                "the 1.0 groups API cannot change their members.",
            )
        group = ws.groups.get(request.path_params["group_slug"])
        if group is None:
            raise ApiError(
                404, f"Group {request.path_params['group_slug']!r} not found in workspace {ws.slug!r}"
            )
        user = self.org.user(request.path_params["member"])
        if user is None or user.uuid not in ws.members:
            raise ApiError(
                404, f"User {request.path_params['member']!r} is not a member of workspace {ws.slug!r}"
            )
        if request.method == "PUT":
            if user.uuid in group.members:
                raise ApiError(409, f"{user.display_name} is already a member of {group.slug}")
            group.members.append(user.uuid)
            self.org.touch()
            return JSONResponse(self.payloads(request).user_v1(user))
        if user.uuid not in group.members:
            raise ApiError(404, f"{user.display_name} is not a member of {group.slug}")
        group.members.remove(user.uuid)
        self.org.touch()
        return Response(status_code=204)

    # ---- removed endpoints, OAuth and the control API ----

    async def removed(self, request: Request) -> Response:
        if self.removed_status == 404:
            return JSONResponse(error_body("Resource not found"), status_code=404)
        return JSONResponse(CHANGE_2770, status_code=410)

    async def no_api_here(self, request: Request, exc: Exception) -> Response:
        """A path no route serves: under /1.0 and /2.0, Bitbucket's router answer (docs/simulator.md)."""
        if request.url.path.startswith(("/1.0/", "/2.0/")):
            return JSONResponse(NO_API_HERE, status_code=404)
        return PlainTextResponse("Not Found", status_code=404)

    async def oauth_token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            return JSONResponse(
                self.credentials.issue_oauth_token(request.headers.get("authorization"), form)
            )
        except AuthError as exc:
            return JSONResponse(
                {"error": exc.message, "error_description": exc.detail}, status_code=exc.status
            )

    async def sim_summary(self, request: Request) -> Response:
        with self.lock:
            return JSONResponse(
                {"organisation": self.org.name, "now": self.org.now.isoformat(), **self.org.counts()}
            )

    async def sim_change_control(self, request: Request) -> Response:
        """The simulator's own production-branch rules per repository (change_control.production_rules)."""
        with self.lock:
            return JSONResponse(production_rules(self.org))

    async def sim_requests(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.request_log.clear()
            return Response(status_code=204)
        since = int(request.query_params.get("since", 0))
        return JSONResponse([r.__dict__ for r in self.request_log[since:]])

    async def sim_advance(self, request: Request) -> Response:
        body = await request.json() if await request.body() else {}
        return JSONResponse(self.advance(int(body.get("days", 1)), float(body.get("churn", 0.01))))

    async def sim_faults(self, request: Request) -> Response:
        try:
            self.faults.configure(**(await request.json()))
        except (ValueError, TypeError) as exc:
            return JSONResponse(error_body(str(exc)), status_code=400)
        return Response(status_code=204)

    async def sim_rate_limit(self, request: Request) -> Response:
        body = await request.json() if await request.body() else None
        self.rate_limit = (
            None
            if not body
            else RateLimit(int(body["limit"]), float(body["window_seconds"]), bool(body.get("retry_after")))
        )
        return Response(status_code=204)


def _encode_page(offset: int) -> str:
    # Opaque on purpose: clients must follow `next`, not compute pages.
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_page(value: str | None, pagelen: int) -> int:
    if value is None:
        return 0
    if value.isdigit():
        if int(value) < 1:
            raise ApiError(400, "page must be 1 or more")
        return (int(value) - 1) * pagelen
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        if text.startswith("offset:"):
            return int(text.removeprefix("offset:"))
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError(400, f"Invalid page {value!r}")


def _asks_2fa(request: Request) -> bool:
    """`fields=+values.user.has_2fa_enabled` (the addition half of partial responses, for this one field)."""
    spec = request.query_params.get("fields") or ""
    return "+values.user.has_2fa_enabled" in spec.split(",")


def _apply_fields(body: dict, spec: str | None) -> None:
    """`fields=-values.links,...`: drop the named fields (the removal half of partial responses)."""
    if not spec:
        return
    body["values"] = copy.deepcopy(body["values"])  # rendered payloads may be shared through the cache
    for part in spec.split(","):
        if not part.startswith("-"):
            continue
        path = part[1:].split(".")
        targets = body["values"] if path[0] == "values" else [body]
        path = path[1:] if path[0] == "values" else path
        for obj in targets:
            for step in path[:-1]:
                obj = obj.get(step, {}) if isinstance(obj, dict) else {}
            if isinstance(obj, dict):
                obj.pop(path[-1], None)


class _FaultsAndLog:
    """ASGI middleware: records every request and injects the configured faults into API calls."""

    def __init__(self, sim: Simulator, app: Starlette):
        self.sim, self.app = sim, app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        is_api = path.startswith(("/2.0/", "/1.0/", "/admin/")) or path in REMOVED_PATHS
        record = RequestRecord(
            time.time(), scope["method"], path, scope.get("query_string", b"").decode(), 0, ""
        )
        fault = None
        faults = self.sim.faults
        if is_api and faults.active:
            delay = faults.delay()
            if delay:
                await asyncio.sleep(delay)
            fault = faults.draw()
        record.fault = fault
        try:
            if fault == "5xx":
                status = faults.status_for_5xx()
                body = json.dumps(error_body("Something went wrong", "Simulated server error")).encode()
                await _send(send, status, body, b"application/json")
                record.status = status
            elif fault == "429":
                await _send(send, 429, RATE_LIMIT_BODY.encode(), b"text/plain")
                record.status = 429
            elif fault in ("drop", "truncate", "malformed"):
                status, headers, body = await _capture(self.app, scope, receive)
                record.status = status
                if fault == "malformed":
                    await _send(send, 200, b"<html><body>502 Bad Gateway</body></html>", b"text/html")
                    record.status = 200
                elif fault == "truncate":
                    await _send(send, status, body[: len(body) // 2], b"application/json")
                else:
                    await send({"type": "http.response.start", "status": status, "headers": headers})
                    await send(
                        {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
                    )
                    raise DroppedConnection
            elif faults.odd_entry_rate and scope["method"] == "GET":
                status, headers, body = await _capture(self.app, scope, receive)
                body, changed = faults.null_users(body) if status == 200 else (body, 0)
                record.status, record.fault = status, "odd_entries" if changed else None
                self.sim.odd_entries += changed
                await _send(send, status, body, b"application/json")
            else:

                async def capture_status(message):
                    if message["type"] == "http.response.start":
                        record.status = message["status"]
                    await send(message)

                await self.app(scope, receive, capture_status)
        finally:
            record.credential = scope.get("state", {}).get("credential_kind", "")
            if is_api or path == "/site/oauth2/access_token":
                self.sim.request_log.append(record)
            if is_api:
                for hook in self.sim.after_request:
                    hook(record)


class DroppedConnection(Exception):
    """Raised mid-response so the server aborts the connection, as a dropped link would."""


async def _send(send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _capture(app, scope, receive) -> tuple[int, list, bytes]:
    status, headers, chunks = 0, [], []

    async def collect(message):
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], message.get("headers", [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, collect)
    return status, headers, b"".join(chunks)
