"""Where a workspace's group memberships are changed: Bitbucket's 1.0 groups API, or the Atlassian Admin API
for workspaces administered from admin.atlassian.com (their groups are organization groups).

The choice is per workspace (`BackendChoice`): named in `BITBUCKET_ADMIN_MANAGED_WORKSPACES`, or, when that is
unset, detected from the latest snapshot (`marts.dim_workspaces.user_management`: Bitbucket omits `added_on`
for the members of such workspaces), or from the first page of members when no built snapshot has the
workspace yet. A workspace named there while no Admin API is configured cannot be
changed, and its requests fail saying which variables to set; a detected one falls back to the 1.0 API, which
may still accept the change.

Both backends answer the same questions, keyed by what each API names a member by: the 1.0 API by the
Bitbucket `{uuid}`, the Admin API by the Atlassian account id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import duckdb

from ..client import BitbucketApi, BitbucketError, UnknownGroupError
from ..client.admin_api import AtlassianAdminApi, OrgGroup
from ..client.api import MembershipChange, User, administered_from_admin_atlassian

CLASSIC = "bitbucket-1.0"
ADMIN_API = "atlassian-admin-api"
NOT_CONFIGURED = (
    "set BITBUCKET_ADMIN_ORG_ID and BITBUCKET_ADMIN_API_KEY (an organization API key) to change its groups"
)


@dataclass(frozen=True)
class BackendChoice:
    backend: str  # CLASSIC | ADMIN_API
    why: str  # how the workspace's kind was known
    problem: str | None = None  # set when no backend can change this workspace's groups

    def describe(self) -> str:
        via = "the Atlassian Admin API" if self.backend == ADMIN_API else "the Bitbucket 1.0 groups API"
        return f"via {via} ({self.why})"


class MembershipBackend(Protocol):
    name: str

    def member_key(self, user: User) -> str | None: ...
    def member_key_of(self, workspace: str, user_uuid: str) -> str | None: ...
    def refusal(self, workspace: str, group: str) -> str | None: ...
    def members(self, workspace: str, group: str) -> set[str]: ...
    def add(self, workspace: str, group: str, key: str) -> MembershipChange: ...
    def remove(self, workspace: str, group: str, key: str) -> MembershipChange: ...


class BitbucketGroupsBackend:
    """`/1.0/groups/{workspace}/{group}/members/{uuid}`: members by Bitbucket `{uuid}`."""

    name = CLASSIC

    def __init__(self, api: BitbucketApi):
        self.api = api

    def member_key(self, user: User) -> str | None:
        return user.uuid

    def member_key_of(self, workspace: str, user_uuid: str) -> str | None:
        return user_uuid

    def refusal(self, workspace: str, group: str) -> str | None:
        return None

    def members(self, workspace: str, group: str) -> set[str]:
        return {user.uuid for user in self.api.group_members(workspace, group)}

    def add(self, workspace: str, group: str, key: str) -> MembershipChange:
        return self.api.add_group_member(workspace, group, key)

    def remove(self, workspace: str, group: str, key: str) -> MembershipChange:
        return self.api.remove_group_member(workspace, group, key)


class AdminApiBackend:
    """Organization groups through the Admin API v2: members by Atlassian account id. A Bitbucket group slug
    is found as the organization group of the same name (the name the latest snapshot holds for it)."""

    name = ADMIN_API

    def __init__(self, admin: AtlassianAdminApi, api: BitbucketApi, group_names: dict[tuple[str, str], str]):
        self.admin, self.api, self.group_names = admin, api, group_names
        self._groups: dict[tuple[str, str], OrgGroup] = {}

    def group(self, workspace: str, slug: str) -> OrgGroup:
        key = (workspace, slug)
        if key not in self._groups:
            name = self.group_names.get(key, slug)
            found = self.admin.find_group(name)
            if found is None:
                raise UnknownGroupError(
                    f"group {name!r} (Bitbucket group {slug!r}) is not in organization {self.admin.org_id}'s "
                    "directories",
                    endpoint=self.admin.directories_endpoint,
                    status=404,
                    workspace=workspace,
                )
            self._groups[key] = found
        return self._groups[key]

    def member_key(self, user: User) -> str | None:
        return user.account_id

    def member_key_of(self, workspace: str, user_uuid: str) -> str | None:
        return self.api.workspace_member(workspace, user_uuid).user.account_id

    def refusal(self, workspace: str, group: str) -> str | None:
        org_group = self.group(workspace, group)
        if org_group.external_synced:
            return idp_refusal(org_group.name or group)
        return None

    def members(self, workspace: str, group: str) -> set[str]:
        return {user.account_id for user in self.admin.group_members(self.group(workspace, group))}

    def add(self, workspace: str, group: str, key: str) -> MembershipChange:
        return self.admin.add_member(self.group(workspace, group), key)

    def remove(self, workspace: str, group: str, key: str) -> MembershipChange:
        return self.admin.remove_member(self.group(workspace, group), key)


def idp_refusal(group: str, detail: str = "") -> str:
    said = f" Atlassian says: {detail}" if detail else ""
    return (
        f"group {group!r} is synced from your identity provider: change its membership in the identity "
        f"provider, not here (the Admin API refuses changes to synced groups).{said}"
    )


class Backends:
    """The backend of each workspace, chosen once per run."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        api: BitbucketApi | None,
        admin: AtlassianAdminApi | None,
        admin_managed: list[str] | None,
    ):
        self.con, self.api, self.admin, self.admin_managed = con, api, admin, admin_managed
        self._choices: dict[str, BackendChoice] = {}
        self._backends: dict[str, MembershipBackend] = {}

    def choice(self, workspace: str) -> BackendChoice:
        if workspace not in self._choices:
            self._choices[workspace] = self._choose(workspace)
        return self._choices[workspace]

    def backend(self, workspace: str) -> MembershipBackend:
        name = self.choice(workspace).backend
        if name not in self._backends:
            assert self.api is not None, "a backend makes calls: the provisioner needs a client"
            self._backends[name] = (
                AdminApiBackend(self.admin, self.api, self._group_names())
                if name == ADMIN_API and self.admin is not None
                else BitbucketGroupsBackend(self.api)
            )
        return self._backends[name]

    def _choose(self, workspace: str) -> BackendChoice:
        if self.admin_managed is not None:
            if workspace not in self.admin_managed:
                return BackendChoice(CLASSIC, "not named in BITBUCKET_ADMIN_MANAGED_WORKSPACES")
            why = "named in BITBUCKET_ADMIN_MANAGED_WORKSPACES"
            if self.admin is None:
                problem = (
                    f"workspace {workspace!r} is administered from admin.atlassian.com ({why}): "
                    f"{NOT_CONFIGURED}"
                )
                return BackendChoice(ADMIN_API, why, problem)
            return BackendChoice(ADMIN_API, f"{why}; organization {self.admin.org_id}")
        if not self._detected(workspace):
            return BackendChoice(CLASSIC, "managed in Bitbucket, as its members show")
        why = "administered from admin.atlassian.com, as its members show"
        if self.admin is None:
            return BackendChoice(
                CLASSIC, f"{why}; no Admin API configured, so the 1.0 API is tried and may refuse"
            )
        return BackendChoice(ADMIN_API, f"{why}; organization {self.admin.org_id}")

    def _detected(self, workspace: str) -> bool:
        try:
            row = self.con.execute(
                "select user_management from marts.dim_workspaces where workspace_slug = ?", [workspace]
            ).fetchone()
        except duckdb.CatalogException:
            row = None
        if row:
            return row[0] == "atlassian_admin"
        if self.api is None:  # a plan makes no call: without a snapshot, the workspace counts as classic
            return False
        # Not in a built snapshot yet: the same sign, read live from the first page of members. If Bitbucket
        # refuses that read, the request's own calls will meet (and explain) the same refusal: count it as
        # classic.
        try:
            sample = self.api.workspace_members_sample(workspace)
        except BitbucketError:
            return False
        return administered_from_admin_atlassian(sample)

    def _group_names(self) -> dict[tuple[str, str], str]:
        try:
            rows = self.con.execute(
                "select workspace_slug, group_slug, group_name from marts.dim_groups"
            ).fetchall()
        except duckdb.CatalogException:
            return {}
        return {(ws, slug): name for ws, slug, name in rows if name}
