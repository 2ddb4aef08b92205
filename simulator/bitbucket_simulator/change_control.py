"""Change control of the generated companies (`demo`, `large`): branching models, branch restrictions, deploy
keys and two-step verification, shaped like a real company's, and how they drift day by day.

Most production branches carry a push restriction to the owning team, some carry none; a few name people who
are exempt; some enforce their merge checks; some deploy keys have not been used for a year; a few members
have no two-step verification. Each object draws from a random stream of its own (seeded by its uuid), so
adding change control leaves the rest of a company exactly as it was generated before.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from .model import (
    BranchingModel,
    BranchRestriction,
    DeployKey,
    Organisation,
    Project,
    Repository,
    User,
    Workspace,
)


def _stream(*parts: str) -> random.Random:
    return random.Random("change-control/" + "/".join(parts))


def configure_user(user: User) -> None:
    """About 4 % of people have not turned on two-step verification."""
    user.has_2fa_enabled = _stream("2fa", user.uuid).random() >= 0.04


def configure_project(org: Organisation, ws: Workspace, project: Project, now: datetime) -> None:
    """The project's branching model (what its repositories inherit), sometimes a project-level branch
    restriction (enforced, but served by no API), sometimes a project deploy key."""
    rng = _stream("project", project.uuid)
    roll = rng.random()
    if roll < 0.7:
        project.branching_model = BranchingModel(production_use_mainbranch=True)
    elif roll < 0.8:
        project.branching_model = BranchingModel(production="release")
    if rng.random() < 0.08:
        project.branch_restrictions.append(
            BranchRestriction(org.new_rule_id(), "delete", "branching_model", branch_type="production")
        )
    if rng.random() < 0.3:
        project.deploy_keys.append(_deploy_key(org, ws, rng, now, "project-ci"))


def configure_repository(org: Organisation, ws: Workspace, repo: Repository, now: datetime) -> None:
    rng = _stream("repository", repo.uuid)
    project = ws.projects.get(repo.project_key)
    if rng.random() < 0.08:
        repo.mainbranch = "master"
    if rng.random() < 0.1 and project is not None:  # its own model, overriding the project's
        repo.branching_model = BranchingModel(production_use_mainbranch=True)
    production, _ = repo.production_branch(project)
    by_model = repo.effective_branching_model(project).production is not None or (
        repo.effective_branching_model(project).production_use_mainbranch
    )

    def rule(kind: str, **kw) -> BranchRestriction:
        matcher = (
            {"branch_match_kind": "branching_model", "branch_type": "production"}
            if by_model and rng.random() < 0.6
            else {"branch_match_kind": "glob", "pattern": production if rng.random() < 0.8 else "ma*"}
        )
        return BranchRestriction(org.new_rule_id(), kind, **matcher, **kw)

    teams = [g for g in (project.group_grants if project else {}) if g in ws.groups and g != "contractors"]
    rules = repo.branch_restrictions
    if rng.random() < 0.8:  # most production branches: only the owning team (and its admins) may push
        push = rule("push", groups=teams[:1] or ["administrators"])
        if rng.random() < 0.12:  # an exemption: someone allowed to push directly
            people = [u for u, m in ws.members.items() if m.role != "owner"]
            if people:
                push.users.append(rng.choice(people))
        rules.append(push)
        if rng.random() < 0.85:
            rules.append(rule("force"))
        if rng.random() < 0.7:
            rules.append(rule("delete"))
    if rng.random() < 0.7:
        rules.append(rule("require_approvals_to_merge", value=rng.choice((1, 1, 2))))
        if rng.random() < 0.5:
            rules.append(rule("require_passing_builds_to_merge", value=1))
        if rng.random() < 0.45:
            rules.append(rule("enforce_merge_checks"))
    if rng.random() < 0.15:
        rules.append(rule("restrict_merges", groups=["administrators"]))
    if rng.random() < 0.3:
        rules.append(
            BranchRestriction(org.new_rule_id(), "require_approvals_to_merge", pattern="feature/*", value=1)
        )
    if not repo.is_private and rng.random() < 0.5:
        repo.fork_policy = "allow_forks"
    if rng.random() < 0.25:
        repo.deploy_keys.append(_deploy_key(org, ws, rng, now, "deploy"))


def _deploy_key(org: Organisation, ws: Workspace, rng: random.Random, now: datetime, label: str) -> DeployKey:
    key_id = org.new_rule_id()
    age = rng.randint(5, 1500)
    used = rng.random()
    last_used = None if used < 0.15 else now - timedelta(days=min(age, rng.choice((1, 3, 20, 90, 240, 500))))
    adders = [u for u, m in ws.members.items() if m.role == "owner"] or list(ws.members)
    return DeployKey(
        id=key_id,
        label=f"{label}-{key_id}",
        key=f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{rng.getrandbits(128):032x}",
        added_on=now - timedelta(days=age),
        last_used=last_used,
        added_by=rng.choice(adders) if adders else None,
    )


def drift(org: Organisation, rng: random.Random, changes: int) -> int:
    """A day's changes to branch restrictions: a rule removed or weakened, an exemption added, a rule added, a
    deploy key used. Returns how many were made."""
    made = 0
    for _ in range(changes):
        ws = rng.choice(list(org.workspaces.values()))
        if not ws.repositories:
            continue
        repo = rng.choice(list(ws.repositories.values()))
        roll = rng.random()
        pushes = [r for r in repo.branch_restrictions if r.kind == "push"]
        if roll < 0.25 and repo.branch_restrictions:
            repo.branch_restrictions.remove(rng.choice(repo.branch_restrictions))
        elif roll < 0.45 and pushes:
            people = [u for u, m in ws.members.items() if m.role != "owner"]
            if not people:
                continue
            person = rng.choice(people)
            if person not in pushes[0].users:
                pushes[0].users.append(person)
        elif roll < 0.6:
            approvals = [r for r in repo.branch_restrictions if r.kind == "require_approvals_to_merge"]
            if approvals and (approvals[0].value or 0) > 1:
                approvals[0].value = (approvals[0].value or 1) - 1
            else:
                configure_repository_rule(org, ws, repo)
        elif roll < 0.85:
            configure_repository_rule(org, ws, repo)
        else:
            for key in repo.deploy_keys:
                key.last_used = org.now
        made += 1
    return made


def configure_repository_rule(org: Organisation, ws: Workspace, repo: Repository) -> None:
    """Protect an unprotected production branch, or enforce its merge checks."""
    production, _ = repo.production_branch(ws.projects.get(repo.project_key))
    kinds = {r.kind for r in repo.branch_restrictions}
    kind = "push" if "push" not in kinds else "enforce_merge_checks"
    if kind in kinds:
        return
    groups = ["administrators"] if kind == "push" and "administrators" in ws.groups else []
    repo.branch_restrictions.append(
        BranchRestriction(org.new_rule_id(), kind, pattern=production, groups=groups)
    )


def production_rules(org: Organisation) -> list[dict]:
    """The simulator's own answer to "which rules apply to each repository's production branch" (its model
    and `BranchRestriction.matches`, not the product's SQL): one entry per repository, the reference the
    daily-sync benchmark compares the marts with (`GET /_sim/change-control`)."""
    out = []
    for ws in org.workspaces.values():
        for repo in ws.repositories.values():
            project = ws.projects.get(repo.project_key)
            branch, source = repo.production_branch(project)
            model = repo.effective_branching_model(project)
            production = branch if source == "branching_model" else None
            development = model.development or repo.mainbranch
            rules = [
                {
                    "id": r.id,
                    "kind": r.kind,
                    "value": r.value,
                    "users": sorted(r.users),
                    "groups": sorted(r.groups),
                }
                for r in repo.branch_restrictions
                if r.matches(branch, production, development)
            ]
            out.append(
                {
                    "workspace": ws.slug,
                    "repository_uuid": repo.uuid,
                    "production_branch": branch,
                    "production_branch_source": source,
                    "rules": sorted(rules, key=lambda r: r["id"]),
                }
            )
    return out
