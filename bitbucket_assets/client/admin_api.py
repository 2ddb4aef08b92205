"""The Atlassian Admin API (organization API, v2 directory endpoints) for workspaces administered from
admin.atlassian.com, whose groups are organization groups that the 1.0 groups API may refuse to change.

Documented at developer.atlassian.com/cloud/admin/organization/rest/ (api-group-directories, api-group-groups,
api-group-users): `https://api.atlassian.com/admin/v2/orgs/{orgId}/...`, an organization API key as a Bearer,
cursor pagination (`links.next` is a cursor passed back as `cursor`), errors as `{"errors": [{code, title,
detail}]}`. Group memberships are by Atlassian account id. The v1
`/admin/v1/orgs/{orgId}/directory/groups/...` membership endpoints stopped working after 2026-06-30, so
nothing here uses them.

The HTTP side (pacing, retries on 429/5xx honouring `Retry-After`, typed errors) is `BitbucketClient`'s, given
the organization key and the Admin API root.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..settings import DEFAULT_ADMIN_API_URL
from .api import MembershipChange, _required, _seg, _typed
from .client import BitbucketClient
from .credentials import Credentials
from .errors import MalformedResponseError, NotFoundError

PAGE_LIMIT = 100
PROBE_GROUP_ID = (
    "00000000-0000-4000-8000-00000000b17b"  # never a group: a write to it reveals permission only
)

# Error codes the Admin API documents (the `code` of its error objects) that change what a caller should say.
GROUP_NOT_FOUND = "ADMIN-404-10"
USER_NOT_FOUND = "ADMIN-404-8"
NOT_ALLOWED_TO_MANAGE_ORG = "ADMIN-403-3"
NOT_ALLOWED_TO_MANAGE_GROUP = "ADMIN-403-5"
LICENSE_LIMIT_EXCEEDED = "ADMIN-409-3"
TOO_MANY_LICENSE_BREACHES = "ADMIN-400-32"
CONFLICT = "ADMIN-409-28"
RATE_LIMITED = "ADMIN-429-1"


@dataclass(frozen=True)
class Directory:
    directory_id: str
    name: str | None


@dataclass(frozen=True)
class OrgGroup:
    """An organization group. `external_synced` (`externalSynced`): created by an identity provider's sync, so
    its membership can only be changed there."""

    group_id: str
    name: str | None
    directory_id: str
    external_synced: bool
    managed_by: str | None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class OrgUser:
    account_id: str
    name: str | None
    nickname: str | None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


class AtlassianAdminApi:
    """Typed calls of one organization over a `BitbucketClient` pointed at the Admin API root."""

    def __init__(self, client: BitbucketClient, org_id: str, directory_id: str | None = None):
        self.client, self.org_id = client, org_id
        self.directory_id = directory_id  # None: found from the organization's directories
        self._directories: list[Directory] | None = None

    @classmethod
    def connect(
        cls,
        org_id: str,
        api_key: str,
        api_url: str = DEFAULT_ADMIN_API_URL,
        directory_id: str | None = None,
        **client_options: Any,
    ) -> AtlassianAdminApi:
        """An Admin API of organization `org_id` with its API key; `client_options` as for
        `BitbucketClient`."""
        client = BitbucketClient(Credentials.org_api_key(api_key), api_url, **client_options)
        return cls(client, org_id, directory_id)

    @property
    def _org(self) -> str:
        return f"/admin/v2/orgs/{_seg(self.org_id)}"

    @property
    def directories_endpoint(self) -> str:
        """The endpoint errors about finding a group name (the organization's directories)."""
        return f"{self._org}/directories"

    def directories(self) -> list[Directory]:
        """The organization's directories (read once per instance: they do not change during a run)."""
        if self._directories is None:
            path = self.directories_endpoint
            self._directories = [_typed(_directory, d, path) for d in self._pages("GET", path, {})]
        return self._directories

    def find_group(self, name: str) -> OrgGroup | None:
        """The group with this name (case-insensitive, as Atlassian group names are), in the configured
        directory or in any of the organization's; None when there is none. Two directories holding the name
        is an error naming them: which one a workspace uses is then a setting (BITBUCKET_ADMIN_DIRECTORY_ID).
        """
        directories = (
            [self.directory_id] if self.directory_id else [d.directory_id for d in self.directories()]
        )
        found = []
        for directory in directories:
            path = f"{self._org}/directories/{_seg(directory)}/groups/search"
            for g in self._pages("POST", path, {"groupNames": [name]}):
                if str(g.get("name") or "").casefold() == name.casefold():
                    found.append(_typed(partial(_group, directory=directory), g, path))
        if len(found) > 1:
            where = ", ".join(sorted(g.directory_id for g in found))
            raise MalformedResponseError(
                f"group {name!r} exists in several directories ({where}): set BITBUCKET_ADMIN_DIRECTORY_ID",
                endpoint=self.directories_endpoint,
            )
        return found[0] if found else None

    def group_members(self, group: OrgGroup) -> list[OrgUser]:
        path = f"{self._org}/directories/{_seg(group.directory_id)}/users/search"
        return [_typed(_user, u, path) for u in self._pages("POST", path, {"groupIds": [group.group_id]})]

    def add_member(self, group: OrgGroup, account_id: str) -> MembershipChange:
        """POST the membership. An answer that the user already is a member (409 Conflict) is
        `changed=False`."""
        path = f"{self._org}/directories/{_seg(group.directory_id)}/groups/{_seg(group.group_id)}/memberships"
        response = self.client.request(
            "POST", path, json_body={"accountId": account_id}, ok=(200, 201, 204, 409)
        )
        if response.status_code == 409:
            error = self.client.error(response, path)
            # another conflict (a user limit reached) is a refusal, not "already so"
            if error.code != CONFLICT:
                raise error
        return MembershipChange(response.status_code, response.status_code != 409, response.attempts > 1)

    def remove_member(self, group: OrgGroup, account_id: str) -> MembershipChange:
        """DELETE the membership. 404 for the user (not for the group) means they were not a member."""
        path = (
            f"{self._org}/directories/{_seg(group.directory_id)}/groups/{_seg(group.group_id)}"
            f"/memberships/{_seg(account_id)}"
        )
        response = self.client.request("DELETE", path, ok=(200, 204, 404))
        if response.status_code == 404 and self.client.error(response, path).code == GROUP_NOT_FOUND:
            raise NotFoundError(
                f"group {group.name!r} not found in directory {group.directory_id}",
                endpoint=path,
                status=404,
                code=GROUP_NOT_FOUND,
            )
        return MembershipChange(response.status_code, response.status_code != 404, response.attempts > 1)

    def probe_write(self) -> str:
        """Whether the key may change memberships, without changing any: a membership POST to a group that
        does not exist is answered 404 (group not found) when the key is allowed, 403 when it is not. Returns
        the directory probed."""
        directory = self.directory_id or next((d.directory_id for d in self.directories()), None)
        if directory is None:
            raise NotFoundError("the organization has no directory", endpoint=f"{self._org}/directories")
        path = f"{self._org}/directories/{_seg(directory)}/groups/{PROBE_GROUP_ID}/memberships"
        try:
            self.client.request("POST", path, json_body={"accountId": "bitbucket-access-probe"}, ok=())
        except NotFoundError:
            return directory
        raise MalformedResponseError(
            "a membership POST to a group that does not exist was accepted", endpoint=path
        )

    def _pages(self, method: str, path: str, body: dict[str, Any]) -> Iterator[dict]:
        """Every item of a cursor-paginated list (`data`, `links.next`): GET takes the cursor as a query
        parameter, the POST searches in the body. A cursor already followed, or more pages than the client's
        `max_pages`, is a malformed answer: the list would never end."""
        cursor: str | None = None
        followed: set[str] = set()
        page = 1
        while True:
            if method == "GET":
                params = {"limit": PAGE_LIMIT, **({"cursor": cursor} if cursor else {})}
                response = self.client.request("GET", path, params=params)
            else:
                payload = {**body, "limit": PAGE_LIMIT, **({"cursor": cursor} if cursor else {})}
                response = self.client.request("POST", path, json_body=payload)
            parsed = response.parsed
            data = parsed.get("data") if isinstance(parsed, dict) else None
            if not isinstance(data, list):
                raise MalformedResponseError(f"page {page} has no `data` list", endpoint=path)
            yield from (item for item in data if isinstance(item, dict))
            links = parsed.get("links") if isinstance(parsed.get("links"), dict) else {}
            cursor = links.get("next") or None
            if cursor is None:
                return
            problem = (
                "is not text"
                if not isinstance(cursor, str)
                else "was already followed"
                if cursor in followed
                else f"leads past {self.client.max_pages} pages"
                if page >= self.client.max_pages
                else None
            )
            if problem:
                raise MalformedResponseError(
                    f"the cursor of page {page} {problem}: the list would never end", endpoint=path
                )
            page += 1
            followed.add(cursor)


def _directory(d: dict, endpoint: str) -> Directory:
    return Directory(_required(d, "directoryId", endpoint), d.get("name"))


def _user(u: dict, endpoint: str) -> OrgUser:
    return OrgUser(_required(u, "accountId", endpoint), u.get("name"), u.get("nickname"), u)


def _group(g: dict, endpoint: str, directory: str) -> OrgGroup:
    return OrgGroup(
        group_id=_required(g, "id", endpoint),
        name=g.get("name"),
        directory_id=g.get("directoryId") or directory,
        external_synced=bool(g.get("externalSynced")),
        managed_by=g.get("managedBy"),
        raw=g,
    )
