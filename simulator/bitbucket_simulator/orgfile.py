"""Organisations written by hand as YAML or JSON (the `tiny` organisation is one of them).

Format (every key but the names optional; identifiers are derived deterministically when absent)::

    name: acme
    now: "2026-03-01T09:00:00+00:00"
    operator: ops                      # the user the default credentials belong to
    # Atlassian's documented shapes instead of the richer defaults (docs/simulator.md, "Documented shapes"):
    # member_users, effective_users, group_refs, current_user; or `all`.
    documented_shapes: [member_users, group_refs]
    users:
      - {key: ops, display_name: Ops Bot, email: ops@acme.example}
      - {key: ana, display_name: Ana Ruiz, account_status: active, contractor: false}
      - {key: oscar, display_name: Oscar Outside, outside: true}   # in no workspace's `members: all`
      - {key: ci, display_name: CI token, kind: app_user, outside: true}   # an access token's bot user
      - {key: gone, former: true, outside: true}   # "Former user": no account_id, no nickname
    filler_users: {prefix: filler, count: 10}   # bulk users named filler-001 ...
    workspaces:
      - slug: acme
        name: Acme
        admin_managed: false           # true: administered from admin.atlassian.com (see admin_api.py)
        repository_owner: ana          # a user owns its repositories (a personal workspace)
        members: all                   # or a list of {user: KEY, role: owner|member|create-project}
        owners: [ops]
        groups:
          - {slug: developers, name: Developers, members: [ana]}   # members: all is allowed too
          # In an admin-managed workspace: synced from an identity provider, or granting an app at its
          # user limit.
          - {slug: idp-team, name: IdP Team, members: [], idp_synced: true, user_limit_reached: false}
        projects:
          - key: PAY
            name: Payments
            users: {ana: write}
            groups: {developers: create-repo}
            # Change control (docs/simulator.md, "Change control"). The project's branching model is what its
            # repositories inherit; `production: null` disables production. Project branch restrictions are
            # enforced on its repositories but no API serves them.
            branching_model: {production: release, development: main}   # or {production_use_mainbranch: true}
            branch_restrictions: [{kind: delete, pattern: "release*"}]
            deploy_keys: [{label: ci, added_days: 400, last_used_days: 2, added_by: ana}]
            repositories:
              - slug: payments-api
                users: {ana: admin, oscar: read}
                groups: {developers: read}
                mainbranch: main
                fork_policy: no_public_forks      # allow_forks | no_public_forks | no_forks
                branching_model: {production: main}    # its own model (override); absent: the project's
                branch_restrictions:
                  # `pattern` (glob) or `branch_type` (branching_model); users/groups on push and
                  # restrict_merges only; `value` on the counting merge checks
                  - {kind: push, pattern: main, users: [ana], groups: [developers]}
                  - {kind: require_approvals_to_merge, branch_type: production, value: 2}
                deploy_keys: [{label: old, added_days: 900}]   # last_used_days absent: never used

A user may carry `has_2fa_enabled: false` (or `null`: Bitbucket does not say); the default is true.

Users marked `outside` hold access only through grants on projects or repositories (outside collaborators,
app users, former users), as real organisations have them.
"""

from __future__ import annotations

import json
import uuid as uuid_lib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from .model import (
    BRANCH_TYPES,
    DOCUMENTED_SHAPES,
    PROJECT_PERMISSIONS,
    REPOSITORY_PERMISSIONS,
    RESTRICTION_KINDS,
    RESTRICTION_KINDS_WITH_EXEMPTIONS,
    RESTRICTION_KINDS_WITH_VALUE,
    WORKSPACE_ROLES,
    BranchingModel,
    BranchRestriction,
    DeployKey,
    Group,
    Membership,
    Organisation,
    PayloadShapes,
    Project,
    Repository,
    User,
    Workspace,
)

_NAMESPACE = uuid_lib.UUID("6f1c3a52-0b7e-4c1e-9a57-3d1f2b8e9c40")


class OrganisationFileError(ValueError):
    """An organisation file that cannot be loaded; the message names the file and the entry."""


def stable_uuid(*parts: str) -> str:
    return "{" + str(uuid_lib.uuid5(_NAMESPACE, "/".join(parts))) + "}"


def stable_account_id(*parts: str) -> str:
    return "557058:" + str(uuid_lib.uuid5(_NAMESPACE, "account/" + "/".join(parts)))


def load_organisation_file(path: str | Path) -> Organisation:
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise OrganisationFileError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from exc
    if not isinstance(data, dict):
        raise OrganisationFileError(f"{path}: the top level must be a mapping")
    return build_organisation(data, source=str(path))


def build_organisation(data: dict[str, Any], source: str = "<dict>") -> Organisation:
    def fail(where: str, what: str) -> OrganisationFileError:
        return OrganisationFileError(f"{source}: {where}: {what}")

    name = data.get("name") or Path(source).stem
    now = _parse_time(data.get("now", "2026-01-05T09:00:00+00:00"))
    org = Organisation(name=name, now=now, shapes=_shapes(data.get("documented_shapes"), fail))
    by_key: dict[str, User] = {}
    outside: set[str] = set()  # users who are no workspace's member under `members: all`

    users = list(data.get("users") or [])
    filler = data.get("filler_users")
    if filler:
        prefix, count = filler.get("prefix", "filler"), int(filler["count"])
        users += [
            {"key": f"{prefix}-{i:03d}", "display_name": f"{prefix.title()} {i:03d}"}
            for i in range(1, count + 1)
        ]
    for i, entry in enumerate(users):
        key = entry.get("key")
        if not key:
            raise fail(f"users[{i}]", "every user needs a `key`")
        if key in by_key:
            raise fail(f"users[{i}]", f"duplicate user key {key!r}")
        kind = entry.get("kind", "user")
        if kind not in ("user", "app_user"):
            raise fail(f"users[{i}]", f"kind {kind!r} is not one of user, app_user")
        former = bool(entry.get("former", False))
        user = User(
            uuid=entry.get("uuid") or stable_uuid(name, "user", key),
            account_id=None if former else entry.get("account_id") or stable_account_id(name, key),
            display_name="Former user" if former else entry.get("display_name", key),
            nickname=None if former else entry.get("nickname", key),
            email=entry.get("email", f"{key}@{name}.example"),
            created_on=now - timedelta(days=int(entry.get("age_days", 400))),
            account_status="closed" if former else entry.get("account_status", "active"),
            is_contractor=bool(entry.get("contractor", False)),
            kind=kind,
            has_2fa_enabled=entry.get("has_2fa_enabled", True),
        )
        by_key[key] = user
        org.users[user.uuid] = user
        if entry.get("outside") or former:
            outside.add(key)

    def user_ref(key: str, where: str) -> str:
        if key not in by_key:
            raise fail(where, f"unknown user {key!r}")
        return by_key[key].uuid

    def grants(mapping: dict | None, allowed: tuple[str, ...], where: str, resolve) -> dict[str, str]:
        out: dict[str, str] = {}
        for ref, perm in (mapping or {}).items():
            if perm not in allowed:
                raise fail(where, f"permission {perm!r} for {ref!r} is not one of {', '.join(allowed)}")
            out[resolve(ref)] = perm
        return out

    def restrictions(entries: list | None, where: str, ws: Workspace) -> list[BranchRestriction]:
        out = []
        for i, e in enumerate(entries or []):
            here = f"{where}.branch_restrictions[{i}]"
            kind = e.get("kind")
            if kind not in RESTRICTION_KINDS:
                raise fail(here, f"kind {kind!r} is not a branch restriction kind")
            if ("pattern" in e) == ("branch_type" in e):
                raise fail(here, "give either `pattern` (glob) or `branch_type` (branching_model)")
            if "branch_type" in e and e["branch_type"] not in BRANCH_TYPES:
                raise fail(here, f"branch_type {e['branch_type']!r} is not one of {', '.join(BRANCH_TYPES)}")
            if (e.get("users") or e.get("groups")) and kind not in RESTRICTION_KINDS_WITH_EXEMPTIONS:
                raise fail(
                    here, f"users and groups are only configurable on push and restrict_merges, not {kind}"
                )
            if e.get("value") is not None and kind not in RESTRICTION_KINDS_WITH_VALUE:
                raise fail(here, f"{kind} takes no value")
            for g in e.get("groups") or []:
                if g not in ws.groups:
                    raise fail(here, f"unknown group {g!r} in workspace {ws.slug!r}")
            out.append(
                BranchRestriction(
                    id=int(e.get("id") or org.new_rule_id()),
                    kind=kind,
                    branch_match_kind="branching_model" if "branch_type" in e else "glob",
                    pattern=e.get("pattern", ""),
                    branch_type=e.get("branch_type"),
                    value=e.get("value"),
                    users=[user_ref(k, here) for k in e.get("users") or []],
                    groups=list(e.get("groups") or []),
                )
            )
        return out

    def deploy_keys(entries: list | None, where: str) -> list[DeployKey]:
        out = []
        for i, e in enumerate(entries or []):
            here = f"{where}.deploy_keys[{i}]"
            if "label" not in e:
                raise fail(here, "a deploy key needs a `label`")
            key_id = int(e.get("id") or org.new_rule_id())
            last_used = e.get("last_used_days")
            out.append(
                DeployKey(
                    id=key_id,
                    label=e["label"],
                    key=f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{stable_uuid(name, 'key', str(key_id))[1:25]}",
                    added_on=now - timedelta(days=int(e.get("added_days", 30))),
                    last_used=None if last_used is None else now - timedelta(days=int(last_used)),
                    added_by=user_ref(e["added_by"], here) if e.get("added_by") else None,
                    comment=e.get("comment", ""),
                )
            )
        return out

    def branching_model(entry: dict, where: str) -> BranchingModel:
        if not isinstance(entry, dict):
            raise fail(f"{where}.branching_model", "expected a mapping")
        return BranchingModel(
            production=entry.get("production"),
            production_use_mainbranch=bool(entry.get("production_use_mainbranch", False)),
            development=entry.get("development"),
        )

    for wi, w in enumerate(data.get("workspaces") or []):
        where = f"workspaces[{wi}]"
        if "slug" not in w:
            raise fail(where, "a workspace needs a `slug`")
        slug = w["slug"]
        ws = Workspace(
            uuid=w.get("uuid") or stable_uuid(name, "workspace", slug),
            slug=slug,
            name=w.get("name", slug),
            created_on=now - timedelta(days=int(w.get("age_days", 900))),
            is_private=w.get("is_private", True),
            admin_managed=bool(w.get("admin_managed", False)),
        )
        if w.get("repository_owner"):
            ws.repository_owner = user_ref(w["repository_owner"], f"{where}.repository_owner")
        members = w.get("members", "all")
        entries = [{"user": k} for k in by_key if k not in outside] if members == "all" else members
        for mi, m in enumerate(entries):
            role = m.get("role", "member")
            if role not in WORKSPACE_ROLES:
                raise fail(
                    f"{where}.members[{mi}]", f"role {role!r} is not one of {', '.join(WORKSPACE_ROLES)}"
                )
            u = user_ref(m["user"], f"{where}.members[{mi}]")
            ws.members[u] = Membership(
                u, role, added_on=now - timedelta(days=200), last_accessed=now - timedelta(days=1)
            )
        for key in w.get("owners") or []:
            u = user_ref(key, f"{where}.owners")
            ws.members.setdefault(u, Membership(u, added_on=now - timedelta(days=200))).role = "owner"
        for ui, key in enumerate(w.get("dormant") or []):
            u = user_ref(key, f"{where}.dormant[{ui}]")
            ws.members[u].last_accessed = now - timedelta(days=200)
        for gi, g in enumerate(w.get("groups") or []):
            gwhere = f"{where}.groups[{gi}]"
            if "slug" not in g:
                raise fail(gwhere, "a group needs a `slug`")
            gm = g.get("members") or []
            member_keys = [k for k in by_key if k not in outside] if gm == "all" else gm
            group_members = [user_ref(k, gwhere) for k in member_keys]
            for u in group_members:
                if u not in ws.members:
                    raise fail(gwhere, f"group member {u} is not a member of workspace {slug!r}")
            ws.groups[g["slug"]] = Group(
                g["slug"],
                g.get("name", g["slug"]),
                group_members,
                g.get("permission"),
                idp_synced=bool(g.get("idp_synced")),
                user_limit_reached=bool(g.get("user_limit_reached")),
            )

        def group_ref(ref: str, where: str, ws: Workspace = ws) -> str:
            if ref not in ws.groups:
                raise fail(where, f"unknown group {ref!r} in workspace {ws.slug!r}")
            return ref

        for pi, p in enumerate(w.get("projects") or []):
            pwhere = f"{where}.projects[{pi}]"
            if "key" not in p:
                raise fail(pwhere, "a project needs a `key`")
            key = p["key"]
            project = Project(
                uuid=p.get("uuid") or stable_uuid(name, slug, "project", key),
                key=key,
                name=p.get("name", key),
                description=p.get("description", ""),
                created_on=now - timedelta(days=300),
                updated_on=now - timedelta(days=30),
                is_private=p.get("is_private", True),
                user_grants=grants(
                    p.get("users"), PROJECT_PERMISSIONS, pwhere, lambda k, w=pwhere: user_ref(k, w)
                ),
                group_grants=grants(
                    p.get("groups"), PROJECT_PERMISSIONS, pwhere, lambda r, w=pwhere: group_ref(r, w)
                ),
            )
            ws.projects[key] = project
            project.branch_restrictions = restrictions(p.get("branch_restrictions"), pwhere, ws)
            project.deploy_keys = deploy_keys(p.get("deploy_keys"), pwhere)
            if "branching_model" in p:
                project.branching_model = branching_model(p["branching_model"], pwhere)
            for ri, r in enumerate(p.get("repositories") or []):
                rwhere = f"{pwhere}.repositories[{ri}]"
                if "slug" not in r:
                    raise fail(rwhere, "a repository needs a `slug`")
                repo = Repository(
                    uuid=r.get("uuid") or stable_uuid(name, slug, "repository", r["slug"]),
                    slug=r["slug"],
                    name=r.get("name", r["slug"]),
                    project_key=key,
                    created_on=now - timedelta(days=250),
                    updated_on=now - timedelta(days=3),
                    is_private=r.get("is_private", True),
                    description=r.get("description", ""),
                    language=r.get("language", ""),
                    user_grants=grants(
                        r.get("users"), REPOSITORY_PERMISSIONS, rwhere, lambda k, w=rwhere: user_ref(k, w)
                    ),
                    group_grants=grants(
                        r.get("groups"), REPOSITORY_PERMISSIONS, rwhere, lambda x, w=rwhere: group_ref(x, w)
                    ),
                )
                repo.mainbranch = r.get("mainbranch", "main")
                repo.fork_policy = r.get("fork_policy", "no_public_forks")
                if repo.fork_policy not in ("allow_forks", "no_public_forks", "no_forks"):
                    raise fail(rwhere, f"fork_policy {repo.fork_policy!r} is not a Bitbucket fork policy")
                repo.branch_restrictions = restrictions(r.get("branch_restrictions"), rwhere, ws)
                repo.deploy_keys = deploy_keys(r.get("deploy_keys"), rwhere)
                if "branching_model" in r:
                    repo.branching_model = branching_model(r["branching_model"], rwhere)
                if repo.slug in ws.repositories:
                    raise fail(rwhere, f"duplicate repository slug {repo.slug!r}")
                ws.repositories[repo.slug] = repo
        org.workspaces[slug] = ws

    operator = data.get("operator")
    if operator:
        org.operator_uuid = user_ref(operator, "operator")
    else:
        owners = [u for ws in org.workspaces.values() for u in ws.owners()]
        org.operator_uuid = owners[0] if owners else None
    return org


def _shapes(value: Any, fail) -> PayloadShapes:
    """`documented_shapes`: a list of DOCUMENTED_SHAPES names, or `all`."""
    if value is None:
        return PayloadShapes()
    names = list(DOCUMENTED_SHAPES) if value == "all" else value
    if not isinstance(names, list) or any(name not in DOCUMENTED_SHAPES for name in names):
        raise fail(
            "documented_shapes", f"expected `all` or a list of {', '.join(DOCUMENTED_SHAPES)}, not {value!r}"
        )
    return PayloadShapes(**{name: True for name in names})


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
