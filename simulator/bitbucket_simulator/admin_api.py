"""The simulated Atlassian Admin API (organization REST API, v2 directory endpoints): the organization groups
of workspaces administered from admin.atlassian.com, and their memberships by account id.

Shapes follow Atlassian's published reference (developer.atlassian.com/cloud/admin/organization/rest/:
api-group-directories, api-group-groups, api-group-users, and its error codes); docs/simulator.md says which
parts are documented and which are assumptions. Served by the same app as the Bitbucket API, under
`/admin/v2/`.

- Authentication: an organization API key as a Bearer. A key belongs to one organization; keys made
  read-only here stand for keys created without the scopes that change groups (403 `ADMIN-403-3`).
- One directory holds the groups of every admin-managed workspace; a group's members are the workspace
  group's members, so Bitbucket's own views (`/1.0/groups`, the effective permissions) follow every change.
- Lists are cursor-paginated: `data` plus `links.next`, a cursor passed back as `cursor` (query parameter on
  GET, body field on the POST searches).
- A group synced from an identity provider (`externalSynced`) refuses membership changes (403 `ADMIN-403-5`);
  a group granting an app whose user limit is reached refuses additions (409 `ADMIN-409-3`).
- 429 `ADMIN-429-1` with `Retry-After` under the simulator's rate limit (its own bucket, `admin`).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .model import Group, Workspace

if TYPE_CHECKING:
    from .app import Simulator

SIM_ORG_ID = "7e9c4f2a-5b1d-4c8e-9a3f-0d6b2e8c1f47"
SIM_DIRECTORY_ID = "d1a2b3c4-0000-4e5f-8a9b-5151d1e2c3f4"
SIM_ORG_API_KEY = "ATSTT3xSimulatedOrgApiKey0000"
SIM_ORG_API_KEY_READ_ONLY = "ATSTT3xSimulatedOrgApiKeyReadOnly0000"
_GROUP_NAMESPACE = uuid.UUID("8f14e45f-ceea-467f-a0e6-1f1a1a1a0001")


class AdminError(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str = ""):
        super().__init__(title)
        self.status, self.code, self.title, self.detail = status, code, title, detail

    def body(self) -> dict:
        error = {
            "id": uuid.uuid4().hex,
            "status": str(self.status),
            "code": self.code,
            "title": self.title,
            "detail": self.detail,
        }
        return {"errors": [{k: v for k, v in error.items() if v}]}


@dataclass
class OrgKeys:
    """Organization API keys: key -> (organization id, may change groups)."""

    keys: dict[str, tuple[str, bool]] = field(
        default_factory=lambda: {
            SIM_ORG_API_KEY: (SIM_ORG_ID, True),
            SIM_ORG_API_KEY_READ_ONLY: (SIM_ORG_ID, False),
        }
    )


def group_id(ws: Workspace, group: Group) -> str:
    return str(uuid.uuid5(_GROUP_NAMESPACE, f"{ws.slug}/{group.slug}"))


class AdminApi:
    """Routes and handlers of the Admin API over a `Simulator` (its organisation, lock, rate limit and
    log)."""

    def __init__(
        self,
        sim: Simulator,
        keys: OrgKeys | None = None,
        page_limit: int = 100,
        directory_name: str = "Simulated directory",
    ):
        self.sim, self.keys = sim, keys or OrgKeys()
        self.page_limit = page_limit  # the most items one page holds, whatever `limit` asks
        self.directory_name = directory_name
        # Every membership change made, as `(method, group id, account id)`: a POST's subject is in its body,
        # which the request log does not keep, and tests count changes per membership.
        self.changes: list[tuple[str, str, str]] = []

    def routes(self) -> list[Route]:
        org = "/admin/v2/orgs/{org_id}"
        directory = org + "/directories/{directory_id}"
        return [
            self._route("GET", org + "/directories", self.list_directories),
            self._route("POST", directory + "/groups/search", self.search_groups),
            self._route("POST", directory + "/users/search", self.search_users),
            self._route(
                "POST", directory + "/groups/{group_id}/memberships", self.add_membership, write=True
            ),
            self._route(
                "DELETE",
                directory + "/groups/{group_id}/memberships/{account_id}",
                self.remove_membership,
                write=True,
            ),
        ]

    def _route(self, method: str, path: str, handler: Callable[..., Any], write: bool = False) -> Route:
        async def endpoint(request: Request) -> Response:
            try:
                key = self._authenticate(request)
                request.state.credential_kind = "org_api_key"
                limit = self.sim.rate_limit
                if limit is not None:
                    wait = limit.admit(f"orgkey:{key[:12]}", "admin")
                    if wait is not None:
                        error = AdminError(429, "ADMIN-429-1", "Rate limit exceeded", "Too many requests.")
                        return _json(error.body(), 429, {"Retry-After": str(max(1, round(wait)))})
                org_id, may_write = self.keys.keys[key]
                if request.path_params["org_id"] != org_id:
                    raise AdminError(
                        403,
                        "ADMIN-403-3",
                        "Not allowed to manage the org",
                        "This API key belongs to another organization.",
                    )
                if write and not may_write:
                    raise AdminError(
                        403,
                        "ADMIN-403-3",
                        "Not allowed to manage the org",
                        "This API key does not have the permission to manage groups.",
                    )
                if (
                    "directory_id" in request.path_params
                    and request.path_params["directory_id"] != SIM_DIRECTORY_ID
                ):
                    raise AdminError(404, "ADMIN-404-1", "Unknown resource", "No such directory.")
                body = orjson.loads(await request.body() or b"{}") if method == "POST" else {}
                with self.sim.lock:
                    return await handler(request, body if isinstance(body, dict) else {})
            except AdminError as exc:
                return _json(exc.body(), exc.status)
            except orjson.JSONDecodeError:
                return _json(AdminError(400, "ADMIN-400-24", "Invalid request body").body(), 400)

        endpoint.__name__ = f"admin_{handler.__name__}"
        return Route(path, endpoint, methods=[method])

    def _authenticate(self, request: Request) -> str:
        scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or value.strip() not in self.keys.keys:
            # No code: Atlassian documents none for a 401.
            raise AdminError(401, "", "Unauthorized", "Send a valid organization API key as a Bearer.")
        return value.strip()

    # ---- the organization's groups ----

    def _groups(self) -> list[tuple[Workspace, Group]]:
        return [
            (ws, g) for ws in self.sim.org.workspaces.values() if ws.admin_managed for g in ws.groups.values()
        ]

    def _group(self, identifier: str) -> tuple[Workspace, Group]:
        for ws, g in self._groups():
            if group_id(ws, g) == identifier:
                return ws, g
        raise AdminError(404, "ADMIN-404-10", "Group not found", f"No group with id {identifier}.")

    def _render_group(self, ws: Workspace, g: Group) -> dict:
        return {
            "id": group_id(ws, g),
            "name": g.name,
            "description": f"Bitbucket workspace {ws.slug}",
            "directoryId": SIM_DIRECTORY_ID,
            "externalSynced": g.idp_synced,
            "managedBy": "external" if g.idp_synced else "admins",
            "links": {
                "self": f"/admin/v2/orgs/{SIM_ORG_ID}/directories/{SIM_DIRECTORY_ID}/groups/{group_id(ws, g)}"
            },
        }

    def _render_user(self, user_uuid: str) -> dict:
        user = self.sim.org.users[user_uuid]
        return {
            "accountId": user.account_id,
            "accountType": "atlassian",
            "status": "active",
            "accountStatus": user.account_status,
            "name": user.display_name,
            "nickname": user.nickname,
            "email": user.email,
        }

    # ---- handlers ----

    async def list_directories(self, request: Request, body: dict) -> Response:
        items = [{"directoryId": SIM_DIRECTORY_ID, "name": self.directory_name}]
        return self._page(items, dict(request.query_params), lambda d: d)

    async def search_groups(self, request: Request, body: dict) -> Response:
        names = {str(n).casefold() for n in body.get("groupNames") or []}
        ids = set(body.get("groupIds") or [])
        items = [
            (ws, g)
            for ws, g in self._groups()
            if (not names or g.name.casefold() in names) and (not ids or group_id(ws, g) in ids)
        ]
        return self._page(items, body, lambda wg: self._render_group(*wg))

    async def search_users(self, request: Request, body: dict) -> Response:
        members: list[str] = []
        if body.get("groupIds"):
            for identifier in body["groupIds"]:
                members += [u for u in self._group(identifier)[1].members if u not in members]
        else:
            for ws in self.sim.org.workspaces.values():
                members += [u for u in ws.members if ws.admin_managed and u not in members]
        members = [u for u in members if self.sim.org.users[u].account_id]
        return self._page(members, body, self._render_user)

    async def add_membership(self, request: Request, body: dict) -> Response:
        ws, group = self._group(request.path_params["group_id"])
        user = self._member(ws, str(body.get("accountId") or ""))
        if group.idp_synced:
            raise AdminError(
                403,
                "ADMIN-403-5",
                "Not allowed to manage the group",
                f"{group.name} is synced from your identity provider ({self.directory_name}): "
                "manage its members there.",
            )
        if user.uuid in group.members:
            already = f"{user.display_name} is already a member of {group.name}."
            raise AdminError(409, "ADMIN-409-28", "Conflict", already)
        if group.user_limit_reached:
            raise AdminError(
                409,
                "ADMIN-409-3",
                "License limit exceeded",
                f"Adding a user to {group.name} would exceed the user limit of an app it grants access to.",
            )
        group.members.append(user.uuid)
        self.sim.org.touch()
        self.changes.append(("POST", group_id(ws, group), user.account_id))
        return Response(status_code=204)

    async def remove_membership(self, request: Request, body: dict) -> Response:
        ws, group = self._group(request.path_params["group_id"])
        user = self._member(ws, request.path_params["account_id"])
        if group.idp_synced:
            raise AdminError(
                403,
                "ADMIN-403-5",
                "Not allowed to manage the group",
                f"{group.name} is synced from your identity provider ({self.directory_name}): "
                "manage its members there.",
            )
        if user.uuid not in group.members:
            absent = f"{user.display_name} is not a member of {group.name}."
            raise AdminError(404, "ADMIN-404-8", "User not found", absent)
        group.members.remove(user.uuid)
        self.sim.org.touch()
        self.changes.append(("DELETE", group_id(ws, group), user.account_id))
        return Response(status_code=204)

    def _member(self, ws: Workspace, account_id: str):
        user = self.sim.org.user(account_id) if account_id else None
        if user is None or user.uuid not in ws.members:
            raise AdminError(
                404, "ADMIN-404-8", "User not found", f"No user {account_id!r} in this directory."
            )
        return user

    def _page(self, items: Sequence[Any], params: dict, render: Callable[[Any], dict]) -> Response:
        try:
            limit = min(int(params.get("limit") or self.page_limit), self.page_limit)
            offset = _decode_cursor(params.get("cursor"))
        except ValueError:
            raise AdminError(400, "ADMIN-400-1", "Invalid page cursor") from None
        chunk = items[offset : offset + limit]
        links: dict[str, str] = {"self": _encode_cursor(offset)}
        if offset + limit < len(items):
            links["next"] = _encode_cursor(offset + limit)
        if offset > 0:
            links["prev"] = _encode_cursor(max(0, offset - limit))
        return _json({"data": [render(x) for x in chunk], "links": links})


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(value: Any) -> int:
    if not value:
        return 0
    text = base64.urlsafe_b64decode(str(value) + "=" * (-len(str(value)) % 4)).decode()
    if not text.startswith("cursor:"):
        raise ValueError(value)
    return int(text.removeprefix("cursor:"))


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")
