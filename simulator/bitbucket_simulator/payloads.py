"""Bitbucket's JSON shapes for the model's objects, conforming to the official spec's schemas.

Where real responses carry fields the spec schema lacks (`slug` and `workspace` on repositories,
`permission` / `added_on` / `last_accessed` on workspace memberships) they are included, as the
schemas allow additional properties; link objects stay within the keys the spec lists.
"""

from __future__ import annotations

from urllib.parse import quote

from .model import (
    BranchRestriction,
    DeployKey,
    Group,
    Membership,
    Organisation,
    Project,
    Repository,
    User,
    Workspace,
    iso,
)


def _link(href: str) -> dict[str, str]:
    return {"href": href}


def enc(identifier: str) -> str:
    return quote(identifier, safe="")


class Payloads:
    """Serialises model objects against one base URL (the simulator's own address)."""

    def __init__(self, org: Organisation, base: str):
        self.org = org
        self.api = f"{base}/2.0"
        self.web = base

    def user(self, user: User, full: bool = False) -> dict:
        """A user object. A "Former user" (deleted account) keeps only its uuid, a fixed display name and
        links: no `account_id`, no `nickname`. An access token's bot user is `type: app_user`
        (docs/simulator.md)."""
        out: dict = {"type": user.kind, "uuid": user.uuid}
        if full and self.org.shapes.current_user:
            # The recorded /2.0/user answer: the account's `username`, and `has_2fa_enabled: null`.
            out |= {"username": user.nickname, "has_2fa_enabled": None}
        if not user.is_former:
            out |= {"account_id": user.account_id}
        out["display_name"] = user.display_name
        if not user.is_former:
            out["nickname"] = user.nickname
        out["links"] = {
            "self": _link(f"{self.api}/users/{enc(user.uuid)}"),
            "avatar": _link(f"{self.web}/avatar/{enc(user.account_id or user.uuid)}"),
            "html": _link(f"{self.web}/{enc(user.uuid)}/"),
        }
        if full:
            out |= {
                "account_status": user.account_status,
                "created_on": iso(user.created_on),
                "has_2fa_enabled": None if self.org.shapes.current_user else True,
                "is_staff": False,
            }
        return out

    def member_user(self, user: User) -> dict:
        """A user in `/workspaces/{ws}/permissions`: Atlassian's example sends `type`, `uuid`, `display_name`
        and sometimes `nickname`, never `account_id` (with `documented_shapes: [member_users]`)."""
        if not self.org.shapes.member_users:
            return self.user(user)
        out = {"type": user.kind, "uuid": user.uuid, "display_name": user.display_name}
        return out | ({"nickname": user.nickname} if user.nickname else {})

    def effective_user(self, user: User) -> dict:
        """A user in the workspace's effective-permission list: Atlassian's example sends `type`,
        `display_name` and `uuid` only (with `documented_shapes: [effective_users]`)."""
        if not self.org.shapes.effective_users:
            return self.user(user)
        return {"type": user.kind, "display_name": user.display_name, "uuid": user.uuid}

    def workspace(self, ws: Workspace) -> dict:
        w = f"{self.api}/workspaces/{ws.slug}"
        return {
            "type": "workspace",
            "uuid": ws.uuid,
            "slug": ws.slug,
            "name": ws.name,
            "is_private": ws.is_private,
            "is_privacy_enforced": False,
            "forking_mode": "allow_forks",
            "created_on": iso(ws.created_on),
            "updated_on": iso(ws.created_on),
            "links": {
                "self": _link(w),
                "html": _link(f"{self.web}/{ws.slug}/"),
                "avatar": _link(f"{self.web}/workspaces/{ws.slug}/avatar/"),
                "members": _link(f"{w}/members"),
                "owners": _link(f"{w}/members?q=permission%3D%22owner%22"),
                "projects": _link(f"{w}/projects"),
                "repositories": _link(f"{self.api}/repositories/{ws.slug}"),
                "snippets": _link(f"{self.api}/snippets/{ws.slug}"),
            },
        }

    def workspace_ref(self, ws: Workspace) -> dict:
        return {
            "type": "workspace",
            "uuid": ws.uuid,
            "slug": ws.slug,
            "name": ws.name,
            "links": {"self": _link(f"{self.api}/workspaces/{ws.slug}")},
        }

    def workspace_access(self, ws: Workspace, administrator: bool) -> dict:
        return {
            "type": "workspace_access",
            "administrator": administrator,
            "workspace": {
                "type": "workspace_base",
                "uuid": ws.uuid,
                "slug": ws.slug,
                "links": {
                    "avatar": _link(f"{self.web}/workspaces/{ws.slug}/avatar/"),
                    "self": _link(f"{self.api}/workspaces/{ws.slug}"),
                },
            },
        }

    def membership(self, ws: Workspace, m: Membership, with_permission: bool, with_2fa: bool = False) -> dict:
        """`with_2fa`: the caller asked for `fields=+values.user.has_2fa_enabled` (an Atlassian staff answer):
        the user gains `has_2fa_enabled`, null where Bitbucket does not say (a workspace administered from
        admin.atlassian.com, whose organization enforces its own policies)."""
        user = self.org.users[m.user_uuid]
        shown = self.member_user(user) if with_permission else self.user(user)
        if with_2fa:
            shown = {**shown, "has_2fa_enabled": None if ws.admin_managed else user.has_2fa_enabled}
        out = {
            "type": "workspace_membership",
            "user": shown,
            "workspace": self.workspace_ref(ws),
            "links": {"self": _link(f"{self.api}/workspaces/{ws.slug}/members/{enc(user.uuid)}")},
        }
        if with_permission:
            out["permission"] = m.role
            if not ws.admin_managed:  # absent for workspaces administered from admin.atlassian.com
                out["added_on"] = iso(m.added_on) if m.added_on else None
                out["last_accessed"] = iso(m.last_accessed) if m.last_accessed else None
        return out

    def team(self, ws: Workspace) -> dict:
        return {
            "type": "team",
            "uuid": ws.uuid,
            "username": ws.slug,
            "display_name": ws.name,
            "links": {
                "self": _link(f"{self.api}/workspaces/{ws.slug}"),
                "html": _link(f"{self.web}/{ws.slug}/"),
                "avatar": _link(f"{self.web}/workspaces/{ws.slug}/avatar/"),
            },
        }

    def project(self, ws: Workspace, p: Project, brief: bool = False) -> dict:
        links = {
            "html": _link(f"{self.web}/{ws.slug}/workspace/projects/{enc(p.key)}"),
            "avatar": _link(f"{self.web}/account/user/{ws.slug}/projects/{enc(p.key)}/avatar/32"),
        }
        if brief:
            return {"type": "project", "key": p.key, "uuid": p.uuid, "name": p.name, "links": links}
        has_public = any(not r.is_private for r in ws.repositories.values() if r.project_key == p.key)
        return {
            "type": "project",
            "uuid": p.uuid,
            "key": p.key,
            "name": p.name,
            "description": p.description,
            "is_private": p.is_private,
            "has_publicly_visible_repos": has_public,
            "created_on": iso(p.created_on),
            "updated_on": iso(p.updated_on),
            "owner": self.team(ws),
            "workspace": self.workspace_ref(ws),
            "links": links,
        }

    def repository(self, ws: Workspace, r: Repository, brief: bool = False) -> dict:
        full_name = f"{ws.slug}/{r.slug}"
        self_href = f"{self.api}/repositories/{full_name}"
        if brief:
            return {
                "type": "repository",
                "uuid": r.uuid,
                "name": r.name,
                "full_name": full_name,
                "links": {"self": _link(self_href), "html": _link(f"{self.web}/{full_name}")},
            }
        return {
            "type": "repository",
            "uuid": r.uuid,
            "slug": r.slug,
            "name": r.name,
            "full_name": full_name,
            "description": r.description,
            "is_private": r.is_private,
            "scm": "git",
            "language": r.language,
            "size": r.size,
            "has_issues": False,
            "has_wiki": False,
            "fork_policy": r.fork_policy,
            "created_on": iso(r.created_on),
            "updated_on": iso(r.updated_on),
            "mainbranch": {"type": "branch", "name": r.mainbranch},
            "project": self.project(ws, ws.projects[r.project_key], brief=True),
            "owner": self.user(self.org.users[ws.repository_owner]) if ws.repository_owner else self.team(ws),
            "workspace": self.workspace_ref(ws),
            "links": {
                "self": _link(self_href),
                "html": _link(f"{self.web}/{full_name}"),
                "avatar": _link(f"{self.web}/ravatar/{enc(r.uuid)}"),
                "pullrequests": _link(f"{self_href}/pullrequests"),
                "commits": _link(f"{self_href}/commits"),
                "forks": _link(f"{self_href}/forks"),
                "watchers": _link(f"{self_href}/watchers"),
                "downloads": _link(f"{self_href}/downloads"),
                "hooks": _link(f"{self_href}/hooks"),
                "clone": [
                    {"name": "https", "href": f"{self.web}/{full_name}.git"},
                    {"name": "ssh", "href": f"ssh://git@bitbucket.invalid/{full_name}.git"},
                ],
            },
        }

    # ---- change control (docs/simulator.md, "Change control") ----

    def branch_restriction(self, ws: Workspace, r: Repository, rule: BranchRestriction) -> dict:
        """The spec's `branchrestriction`, in the key order of a recorded page (checkov's docs): `pattern` is
        "" for `branching_model` rules, `value` null unless the kind counts something, `users` and `groups`
        empty unless the kind is `push` or `restrict_merges`."""
        out: dict = {
            "kind": rule.kind,
            "users": [self.user(self.org.users[u]) for u in rule.users if u in self.org.users],
            "links": {
                "self": _link(f"{self.api}/repositories/{ws.slug}/{r.slug}/branch-restrictions/{rule.id}")
            },
            "pattern": rule.pattern if rule.branch_match_kind == "glob" else "",
            "value": rule.value,
            "branch_match_kind": rule.branch_match_kind,
            "groups": [self.group_ref(ws, ws.groups[g]) for g in rule.groups if g in ws.groups],
            "type": "branchrestriction",
            "id": rule.id,
        }
        if rule.branch_match_kind == "branching_model":
            out["branch_type"] = rule.branch_type
        return out

    def effective_branching_model(self, ws: Workspace, r: Repository) -> dict:
        """The spec's `effective_repo_branching_model`: the repository's own model, or its project's when it
        does not override it (an assumption the spec leaves open: docs/simulator.md). `production` is absent
        when production is disabled."""
        model = r.effective_branching_model(ws.projects.get(r.project_key))

        def target(name: str | None, use_mainbranch: bool) -> dict:
            branch = r.mainbranch if use_mainbranch or name is None else name
            return {
                "name": branch,
                "use_mainbranch": use_mainbranch or name is None,
                "branch": {"type": "branch", "name": branch},
            }

        out: dict = {
            "type": "effective_repo_branching_model",
            "branch_types": [
                {"kind": kind, "prefix": f"{kind}/"} for kind in ("feature", "bugfix", "release", "hotfix")
            ],
            "development": target(model.development, model.development is None),
        }
        if model.production or model.production_use_mainbranch:
            out["production"] = target(model.production, model.production_use_mainbranch)
        out["links"] = {
            "self": _link(f"{self.api}/repositories/{ws.slug}/{r.slug}/effective-branching-model")
        }
        return out

    def override_settings(self, r: Repository) -> dict:
        """`repository_inheritance_state`, as a public SDK's fixture records it; the spec leaves
        `override_settings` unspecified, and it has no key for branch restrictions."""
        return {
            "type": "repository_inheritance_state",
            "override_settings": {
                "branching_model": r.branching_model is not None,
                "default_merge_strategy": False,
            },
        }

    def _deploy_key(self, key: DeployKey, href: str) -> dict:
        return {
            "id": key.id,
            "key": key.key,
            "label": key.label,
            "comment": key.comment,
            # The spec's schema names `added_on`; its examples show `created_on`: both are sent.
            "created_on": iso(key.added_on),
            "added_on": iso(key.added_on),
            "last_used": iso(key.last_used) if key.last_used else None,
            "links": {"self": _link(f"{href}/deploy-keys/{key.id}")},
        }

    def deploy_key(self, ws: Workspace, r: Repository, key: DeployKey) -> dict:
        href = f"{self.api}/repositories/{ws.slug}/{r.slug}"
        out = {
            "type": "deploy_key",
            **self._deploy_key(key, href),
            "repository": self.repository(ws, r, True),
        }
        if key.added_by in self.org.users:
            out["owner"] = self.user(self.org.users[key.added_by])
        return out

    def project_deploy_key(self, ws: Workspace, p: Project, key: DeployKey) -> dict:
        href = f"{self.api}/workspaces/{ws.slug}/projects/{p.key}"
        out = {
            "type": "project_deploy_key",
            **self._deploy_key(key, href),
            "project": self.project(ws, p, True),
        }
        if key.added_by in self.org.users:
            out["created_by"] = self.user(self.org.users[key.added_by])
        return out

    def group_ref(self, ws: Workspace, g: Group) -> dict:
        """A group inside a permissions-config entry, in the sparse shape recorded responses carry: no `type`,
        `full_slug`, `uuid` or `links`, and the owning workspace only as `owner.username`; or, with
        `documented_shapes: [group_refs]`, as Atlassian's examples show it: `type`, `name`, `slug`, no
        owner."""
        if self.org.shapes.group_refs:
            return {"type": "group", "name": g.name, "slug": g.slug}
        return {"owner": {"username": ws.slug}, "slug": g.slug, "name": g.name}

    def grant(self, kind: str, parent_href: str, subject: dict, permission: str, subject_id: str) -> dict:
        """A `{project,repository}_{user,group}_permission` object."""
        who = kind.split("_")[1]
        return {
            "type": f"{kind}_permission",
            who: subject,
            "permission": permission,
            "links": {"self": _link(f"{parent_href}/permissions-config/{who}s/{enc(subject_id)}")},
        }

    def repository_permission(
        self, ws: Workspace, r: Repository, user: User, permission: str, effective_list: bool = False
    ) -> dict:
        return {
            "type": "repository_permission",
            "user": self.effective_user(user) if effective_list else self.user(user),
            "repository": self.repository(ws, r, brief=True),
            "permission": permission,
        }

    def group_v1(self, ws: Workspace, g: Group) -> dict:
        return {
            "name": g.name,
            "slug": g.slug,
            "permission": g.permission,
            "auto_add": g.auto_add,
            "email_forwarding_disabled": False,
            "owner": self.team_v1(ws),
            "members": [self.user_v1(self.org.users[u]) for u in g.members],
        }

    def group_privilege_v1(self, ws: Workspace, r, g: Group, privilege: str) -> dict:
        """One entry of `/1.0/group-privileges/{workspace}`, in the shape of Atlassian's "group-privileges
        endpoint" page: `repo` (`workspace/slug`), `privilege`, the group (with owner and members) and the
        repository (owner, name, slug)."""
        group = {k: v for k, v in self.group_v1(ws, g).items() if k in ("owner", "name", "members", "slug")}
        return {
            "repo": f"{ws.slug}/{r.slug}",
            "privilege": privilege,
            "group": group,
            "repository": {"owner": self.team_v1(ws), "name": r.name, "slug": r.slug},
        }

    def team_v1(self, ws: Workspace) -> dict:
        """A 1.0 group's owner: the workspace as a 1.0 team object, whose `account_id` is null."""
        return {
            "display_name": ws.name,
            "uuid": ws.uuid,
            "account_id": None,
            "nickname": ws.slug,
            "is_team": True,
            "avatar": f"{self.web}/workspaces/{enc(ws.slug)}/avatar/",
            "resource_uri": f"/1.0/users/{enc(ws.slug)}",
        }

    def user_v1(self, user: User) -> dict:
        return {
            "display_name": user.display_name,
            "uuid": user.uuid,
            "account_id": user.account_id,
            "nickname": user.nickname,
            "is_team": False,
            "is_staff": False,
            "avatar": f"{self.web}/avatar/{enc(user.account_id or user.uuid)}",
            "resource_uri": f"/1.0/users/{enc(user.uuid)}",
        }


def error_body(message: str, detail: object = None, data: dict | None = None) -> dict:
    err: dict = {"message": message}
    if detail is not None:
        err["detail"] = detail
    if data is not None:
        err["data"] = data
    out: dict = {"type": "error", "error": err}
    if data is not None:
        out["data"] = data
    return out
