"""Pulling one snapshot of a Bitbucket Cloud organisation through `BitbucketClient` into a `SnapshotWriter`.

Calls per workspace: `/2.0/user/workspaces` (once), `/permissions` (members with their roles; the
same users as `/members`, so `/members` is not called), `/1.0/groups/{ws}` (groups with members embedded),
projects and repositories at pagelen 100, and one call per permissions-config list (project and
repository, users and groups), run concurrently. Users come from the membership payloads: no call per
user. Nothing here calls an endpoint removed by CHANGE-2770.
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
        match = next((a for a in accesses if key in (a["workspace"]["slug"], a["workspace"]["uuid"])), None)
        if match is None and key.startswith("{") is False and len(key) == 36:  # uuid without braces
            match = next((a for a in accesses if a["workspace"]["uuid"] == "{" + key + "}"), None)
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
    users: dict[str, dict] = {}
    slugs = []
    with ThreadPoolExecutor(max_workers=client.max_workers, thread_name_prefix="bitbucket") as pool:
        for access in accesses:
            ws = client.get(
                f"/2.0/workspaces/{quote(access['workspace']['slug'])}", workspace=access["workspace"]["slug"]
            )
            _extract_workspace(client, writer, pool, ws, bool(access.get("administrator")), users, options)
            slugs.append(ws["slug"])
    for user in users.values():
        writer.add(
            "users",
            {
                "user_uuid": user["uuid"],
                "account_id": user.get("account_id"),
                "display_name": user.get("display_name"),
                "nickname": user.get("nickname"),
                "raw": user,
            },
        )
    return slugs


def _extract_workspace(client, writer, pool, ws: dict, admin: bool, users: dict, options: ExtractionOptions) -> None:
    slug = _field(ws, "slug", "workspace")
    base = {"workspace_uuid": _field(ws, "uuid", slug), "workspace_slug": slug}
    wpath = f"/2.0/workspaces/{quote(slug)}"
    writer.add(
        "workspaces",
        {**base, "name": ws.get("name"), "is_private": ws.get("is_private"), "administrator": admin,
         "created_on": ws.get("created_on"), "raw": ws},
    )  # fmt: skip

    for m in client.paginate(f"{wpath}/permissions", workspace=slug):
        user = _field(m, "user", f"{wpath}/permissions")
        uuid = _field(user, "uuid", f"{wpath}/permissions user")
        users.setdefault(uuid, user)
        writer.add(
            "workspace_members",
            {**base, "user_uuid": uuid, "account_id": user.get("account_id"), "permission": m.get("permission"),
             "added_on": m.get("added_on"), "last_accessed": m.get("last_accessed"), "raw": m},
        )  # fmt: skip

    groups = client.get(f"/1.0/groups/{quote(slug)}", workspace=slug)
    if not isinstance(groups, list):
        raise MalformedResponseError("expected a JSON array of groups", endpoint=f"/1.0/groups/{slug}", workspace=slug)
    for g in groups:
        gslug = _field(g, "slug", f"/1.0/groups/{slug}")
        members = g.get("members") or []
        writer.add(
            "groups",
            {**base, "group_slug": gslug, "name": g.get("name"), "default_permission": g.get("permission"),
             "auto_add": g.get("auto_add"), "member_count": len(members),
             "raw": {k: v for k, v in g.items() if k != "members"}},
        )  # fmt: skip
        for member in members:
            writer.add(
                "group_members",
                {**base, "group_slug": gslug, "user_uuid": _field(member, "uuid", f"/1.0/groups/{slug} member"),
                 "account_id": member.get("account_id"), "display_name": member.get("display_name"), "raw": member},
            )  # fmt: skip

    for values in client.pages(f"{wpath}/projects", workspace=slug):
        rows = []
        for p in values:
            key = _field(p, "key", f"{wpath}/projects")
            rows.append((p, key))
            writer.add(
                "projects",
                {**base, "project_uuid": p.get("uuid"), "project_key": key, "name": p.get("name"),
                 "is_private": p.get("is_private"), "created_on": p.get("created_on"),
                 "updated_on": p.get("updated_on"), "raw": p},
            )  # fmt: skip
        targets = [
            (f"{wpath}/projects/{quote(key)}", p.get("uuid"), {"project_uuid": p.get("uuid"), "project_key": key})
            for p, key in rows
        ]
        _permission_lists(client, writer, pool, base, "project", targets)

    for values in client.pages(f"/2.0/repositories/{quote(slug)}", workspace=slug):
        rows = []
        for r in values:
            rslug = r.get("slug") or _field(r, "full_name", f"/2.0/repositories/{slug}").split("/", 1)[1]
            project = r.get("project") or {}
            rows.append((r, rslug))
            writer.add(
                "repositories",
                {**base, "repository_uuid": _field(r, "uuid", f"/2.0/repositories/{slug}"), "repository_slug": rslug,
                 "full_name": r.get("full_name"), "name": r.get("name"), "project_uuid": project.get("uuid"),
                 "project_key": project.get("key"), "is_private": r.get("is_private"),
                 "created_on": r.get("created_on"), "updated_on": r.get("updated_on"), "raw": r},
            )  # fmt: skip
        targets = [
            (f"/2.0/repositories/{quote(slug)}/{quote(rslug)}", r["uuid"],
             {"repository_uuid": r["uuid"], "repository_slug": rslug})
            for r, rslug in rows
        ]  # fmt: skip
        _permission_lists(client, writer, pool, base, "repository", targets)

    if options.effective_permissions and admin:
        path = f"{wpath}/permissions/repositories"
        for e in client.paginate(path, workspace=slug):
            repo, user = _field(e, "repository", path), _field(e, "user", path)
            writer.add(
                "effective_repository_permissions",
                {**base, "repository_uuid": _field(repo, "uuid", path), "repository_name": repo.get("name"),
                 "user_uuid": _field(user, "uuid", path), "permission": _field(e, "permission", path), "raw": e},
            )  # fmt: skip


def _permission_lists(client, writer, pool, base: dict, scope: str, targets: list[tuple[str, str, dict]]) -> None:
    """Fetch the users and groups permissions-config lists of one page of projects or repositories
    concurrently (bounded by the pool), and write them with a fetch-log row each, in order."""
    jobs = [
        (f"{href}/permissions-config/{kind}", kind, rid, keys)
        for href, rid, keys in targets
        for kind in ("users", "groups")
    ]
    fetched = pool.map(lambda job: list(client.paginate(job[0], workspace=base["workspace_slug"])), jobs)
    for (path, kind, rid, keys), items in zip(jobs, fetched, strict=True):
        _write_grants(writer, scope, kind, {**base, **keys}, items, path)
        writer.add("fetch_log", {**base, "resource_type": scope, "resource_id": rid, "list": kind,
                                 "rows": len(items), "fetched_at": datetime.now(UTC)})  # fmt: skip


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
