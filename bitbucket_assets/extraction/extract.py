"""Pulling one snapshot of a Bitbucket Cloud organisation through `BitbucketClient` into a `SnapshotWriter`.

Calls per workspace: `/2.0/user/workspaces` (once), `/permissions` (members with their roles; the
same users as `/members`, so `/members` is not called), `/1.0/groups/{ws}` (groups with members embedded),
projects and repositories at pagelen 100, and one call per permissions-config list (project and
repository, users and groups), run concurrently. Users come from the membership payloads: no call per
user. Nothing here calls an endpoint removed by CHANGE-2770.

Work is committed in checkpoints (a workspace's members and groups; then each page of projects,
repositories and effective permissions with everything fetched for it), so a sync that was killed or
ran out of retries resumes where it stopped and re-fetches at most the page that was in flight.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ..client import BitbucketClient, MalformedResponseError, PermissionDeniedError
from .snapshot import SnapshotWriter

log = logging.getLogger(__name__)


@dataclass
class ExtractionOptions:
    workspaces: list[str] | None = None  # slugs or {uuid}s; None: every workspace the credential sees
    effective_permissions: bool = True  # Bitbucket's own effective permissions, when the caller is admin


def select_workspaces(client: BitbucketClient, wanted: list[str] | None) -> list[dict]:
    """`/2.0/user/workspaces`, filtered by slug or `{uuid}`; an unknown filter entry is an error."""
    accesses = list(client.paginate("/2.0/user/workspaces"))
    if not wanted:
        return accesses
    found, missing = [], []
    for entry in wanted:
        key = entry.strip()
        braced = key if key.startswith("{") else "{" + key + "}"
        match = next((a for a in accesses if key == a["workspace"]["slug"] or braced == a["workspace"]["uuid"]), None)
        (found.append(match) if match else missing.append(key))
    if missing:
        visible = ", ".join(a["workspace"]["slug"] for a in accesses) or "none"
        raise PermissionDeniedError(
            f"BITBUCKET_WORKSPACES names {', '.join(missing)}, which this credential cannot see (visible: {visible})",
            endpoint="/2.0/user/workspaces",
        )
    return found


def extract_snapshot(client: BitbucketClient, writer: SnapshotWriter, options: ExtractionOptions) -> list[str]:
    """Extract every selected workspace; returns their slugs. Raises on anything incomplete."""
    accesses = select_workspaces(client, options.workspaces)
    slugs = []
    with ThreadPoolExecutor(max_workers=client.max_workers, thread_name_prefix="bitbucket") as pool:
        for access in accesses:
            extractor = _WorkspaceExtractor(client, writer, pool, access, options)
            extractor.run()
            slugs.append(extractor.slug)
    return slugs


class _WorkspaceExtractor:
    def __init__(self, client: BitbucketClient, writer: SnapshotWriter, pool, access: dict, options):
        self.client, self.writer, self.pool, self.options = client, writer, pool, options
        self.admin = bool(access.get("administrator"))
        self.slug = _field(_field(access, "workspace", "/2.0/user/workspaces"), "slug", "/2.0/user/workspaces")
        self.wpath = f"/2.0/workspaces/{quote(self.slug)}"
        self.base: dict[str, Any] = {}

    def run(self) -> None:
        if self.writer.checkpoint_done(self.slug, "members"):  # resumed: the workspace row is committed
            self.base = {"workspace_uuid": self.writer.workspace_uuid(self.slug), "workspace_slug": self.slug}
        else:
            ws = self.client.get(self.wpath, workspace=self.slug)
            self.base = {"workspace_uuid": _field(ws, "uuid", self.wpath), "workspace_slug": self.slug}
            self._members_and_groups(ws)
            self.writer.checkpoint(self.slug, "members", None)
        self._paged("projects", f"{self.wpath}/projects", self._projects_page)
        self._paged("repositories", f"/2.0/repositories/{quote(self.slug)}", self._repositories_page)
        if self.options.effective_permissions and self.admin:
            self._paged("effective", f"{self.wpath}/permissions/repositories", self._effective_page)

    def _paged(self, stage: str, path: str, handle) -> None:
        """Each page and what it needs are committed together with the `next` link to continue from."""
        start = self.writer.resume_point(self.slug, stage)
        if start == "":
            return  # this stage finished before the previous run stopped
        for values, next_url in self.client.pages(start or path, workspace=self.slug):
            handle(values)
            self.writer.checkpoint(self.slug, stage, next_url)

    def _members_and_groups(self, ws: dict) -> None:
        add, base, slug = self.writer.add, self.base, self.slug
        add(
            "workspaces",
            {
                **base,
                "name": ws.get("name"),
                "is_private": ws.get("is_private"),
                "administrator": self.admin,
                "created_on": ws.get("created_on"),
                "raw": ws,
            },
        )
        path = f"{self.wpath}/permissions"
        for m in self.client.paginate(path, workspace=slug):
            user = _field(m, "user", path)
            uuid = _field(user, "uuid", path)
            if self.writer.first_sighting(uuid):
                add(
                    "users",
                    {
                        "user_uuid": uuid,
                        "account_id": user.get("account_id"),
                        "display_name": user.get("display_name"),
                        "nickname": user.get("nickname"),
                        "raw": user,
                    },
                )
            add(
                "workspace_members",
                {
                    **base,
                    "user_uuid": uuid,
                    "account_id": user.get("account_id"),
                    "permission": m.get("permission"),
                    "added_on": m.get("added_on"),
                    "last_accessed": m.get("last_accessed"),
                    "raw": m,
                },
            )
        path = f"/1.0/groups/{quote(slug)}"
        groups = self.client.get(path, workspace=slug)
        if not isinstance(groups, list):
            raise MalformedResponseError("expected a JSON array of groups", endpoint=path, workspace=slug)
        for g in groups:
            gslug = _field(g, "slug", path)
            members = g.get("members") or []
            add(
                "groups",
                {
                    **base,
                    "group_slug": gslug,
                    "name": g.get("name"),
                    "default_permission": g.get("permission"),
                    "auto_add": g.get("auto_add"),
                    "member_count": len(members),
                    "raw": {k: v for k, v in g.items() if k != "members"},
                },
            )
            for member in members:
                add(
                    "group_members",
                    {
                        **base,
                        "group_slug": gslug,
                        "user_uuid": _field(member, "uuid", path),
                        "account_id": member.get("account_id"),
                        "display_name": member.get("display_name"),
                        "raw": member,
                    },
                )

    def _projects_page(self, values: list[dict]) -> None:
        targets = []
        for p in values:
            key = _field(p, "key", f"{self.wpath}/projects")
            keys = {"project_uuid": _field(p, "uuid", f"{self.wpath}/projects"), "project_key": key}
            self.writer.add(
                "projects",
                {
                    **self.base,
                    **keys,
                    "name": p.get("name"),
                    "is_private": p.get("is_private"),
                    "created_on": p.get("created_on"),
                    "updated_on": p.get("updated_on"),
                    "raw": p,
                },
            )
            targets.append((f"{self.wpath}/projects/{quote(key)}", keys["project_uuid"], keys))
        self._permission_lists("project", targets)

    def _repositories_page(self, values: list[dict]) -> None:
        path = f"/2.0/repositories/{self.slug}"
        targets = []
        for r in values:
            rslug = r.get("slug") or _field(r, "full_name", path).split("/", 1)[1]
            keys = {"repository_uuid": _field(r, "uuid", path), "repository_slug": rslug}
            project = r.get("project") or {}
            self.writer.add(
                "repositories",
                {
                    **self.base,
                    **keys,
                    "full_name": r.get("full_name"),
                    "name": r.get("name"),
                    "project_uuid": project.get("uuid"),
                    "project_key": project.get("key"),
                    "is_private": r.get("is_private"),
                    "created_on": r.get("created_on"),
                    "updated_on": r.get("updated_on"),
                    "raw": r,
                },
            )
            targets.append((f"/2.0/repositories/{quote(self.slug)}/{quote(rslug)}", keys["repository_uuid"], keys))
        self._permission_lists("repository", targets)

    def _effective_page(self, values: list[dict]) -> None:
        path = f"{self.wpath}/permissions/repositories"
        for e in values:
            repo, user = _field(e, "repository", path), _field(e, "user", path)
            self.writer.add(
                "effective_repository_permissions",
                {
                    **self.base,
                    "repository_uuid": _field(repo, "uuid", path),
                    "repository_name": repo.get("name"),
                    "user_uuid": _field(user, "uuid", path),
                    "permission": _field(e, "permission", path),
                    "raw": e,
                },
            )

    def _permission_lists(self, scope: str, targets: list[tuple[str, str, dict]]) -> None:
        """The users and groups permissions-config lists of one page of projects or repositories, fetched
        concurrently (bounded by the pool) and written in order, each with a fetch-log row."""
        jobs = [
            (f"{href}/permissions-config/{kind}", kind, rid, keys)
            for href, rid, keys in targets
            for kind in ("users", "groups")
        ]
        fetched = self.pool.map(lambda job: list(self.client.paginate(job[0], workspace=self.slug)), jobs)
        for (path, kind, rid, keys), items in zip(jobs, fetched, strict=True):
            _write_grants(self.writer, scope, kind, {**self.base, **keys}, items, path)
            self.writer.add(
                "fetch_log",
                {
                    **self.base,
                    "resource_type": scope,
                    "resource_id": rid,
                    "list": kind,
                    "rows": len(items),
                    "fetched_at": datetime.now(UTC),
                },
            )


def _write_grants(writer: SnapshotWriter, scope: str, kind: str, base: dict, items: Iterable[dict], path: str) -> None:
    table = f"{scope}_{kind[:-1]}_permissions"
    for item in items:
        permission = _field(item, "permission", path)
        if kind == "users":
            user = _field(item, "user", path)
            row = {"user_uuid": _field(user, "uuid", path), "account_id": user.get("account_id")}
        else:
            group = _field(item, "group", path)
            row = {"group_slug": _field(group, "slug", path), "group_name": group.get("name")}
        writer.add(table, {**base, **row, "permission": permission, "raw": item})


def _field(obj: Any, name: str, where: str) -> Any:
    """A required field, or an error naming the endpoint and the field that was missing."""
    if not isinstance(obj, dict) or obj.get(name) in (None, ""):
        raise MalformedResponseError(f"missing field `{name}` in a response object", endpoint=where)
    return obj[name]
