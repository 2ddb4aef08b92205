"""Seeded synthetic companies (`demo`, `large`) and the evolution step that gives them history.

Access is shaped like a real company's: most of it comes from project-level grants to team groups,
with a minority of repository-level group grants and direct grants to individuals (contractors,
a lead made admin of one repository). Nothing is read from fixture files, so `large` builds in seconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .change_control import configure_project, configure_repository, configure_user, drift
from .model import Group, Membership, Organisation, Project, Repository, User, Workspace, new_uuid

FIRST = (
    "Ana Ben Cleo Dev Eli Fatima Gus Hana Ivan Jade Kofi Lena Mateo Nia Omar Priya Quinn Rosa Sven "
    "Tariq Uma Viktor Wen Xena Yusuf Zoë Amara Björn Chen Dário Émile Freya Giorgos Hiro Ines Joon "
    "Kalani Lars Maëlle Nikhil Olu Paz Ravi Saoirse Tomás Ulla Valentina Wojciech Ximena Yara"
).split()
LAST = (
    "Ruiz Okafor Schmidt Tanaka Novak Haddad Silva Kowalski Nguyen Müller Rossi O'Neill Dubois Jensen "
    "Kumar Mensah Ivanova García Lindqvist Papadopoulos Yilmaz Cohen Fernández Sato Øberg Brennan "
    "Abara Kim Laurent Petrov Costa Adeyemi Nakamura Horvath Moreau Bianchi Sørensen Castro Weiß "
    "Ahmed"
).split()
TEAMS = (
    "payments platform data mobile web identity search growth billing infra security qa design "
    "analytics checkout ledger risk support devex ml"
).split()
LANGUAGES = ("python", "go", "typescript", "java", "kotlin", "rust", "terraform", "")
REPO_WORDS = (
    "api service worker ui gateway sdk infra pipeline jobs config docs etl portal cli bot sync proxy auth"
).split()


@dataclass(frozen=True)
class CompanyShape:
    name: str
    users: int
    groups: int
    projects: int
    repositories: int
    workspaces: int
    owners: int


SHAPES = {
    "demo": CompanyShape(
        "northwind", users=150, groups=15, projects=12, repositories=200, workspaces=2, owners=3
    ),
    "large": CompanyShape(
        "megacorp", users=5000, groups=300, projects=500, repositories=20000, workspaces=4, owners=6
    ),
}

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def generate_company(shape: CompanyShape, seed: int = 7, now: datetime = START) -> Organisation:
    rng = random.Random(f"{shape.name}-{seed}")
    org = Organisation(name=shape.name, now=now, seed=seed)
    domain = f"{shape.name}.example"

    operator = _new_user(org, rng, "Access Sync Bot", f"svc-access-sync@{domain}", "svc-access-sync")
    org.operator_uuid = operator.uuid
    people = [operator]
    used_names: set[str] = set()
    for i in range(shape.users - 1):
        contractor = rng.random() < 0.08
        first, last = rng.choice(FIRST), rng.choice(LAST)
        display = f"{first} {last}"
        while display in used_names:
            display = f"{first} {last} {rng.randint(2, 999)}"
        used_names.add(display)
        local = display.lower().replace(" ", ".").replace("'", "")
        email = f"{local}@{'contractors.example' if contractor else domain}"
        user = _new_user(org, rng, display, email, f"{first.lower()}{i}")
        user.is_contractor = contractor
        # Leavers whose Atlassian account was deactivated but whose workspace access lingers.
        if rng.random() < 0.04:
            user.account_status = "inactive"
        people.append(user)

    extra = [f"{shape.name}-{s}" for s in ("labs", "oss", "acquired", "partners")]
    slugs = [shape.name, *extra[: shape.workspaces - 1]]
    workspaces = []
    for i, slug in enumerate(slugs):
        ws = Workspace(
            uuid=new_uuid(rng),
            slug=slug,
            name=slug.replace("-", " ").title(),
            created_on=now - timedelta(days=1500 - 100 * i),
            admin_managed=(i == 1),
        )
        org.workspaces[slug] = ws
        workspaces.append(ws)

    # Everybody is in the main workspace; the others hold a slice of the company.
    main = workspaces[0]
    for user in people:
        _join(main, user, rng, now)
    for ws in workspaces[1:]:
        _join(ws, operator, rng, now)
        for user in rng.sample(people[1:], k=max(5, len(people) // (2 * len(workspaces)))):
            _join(ws, user, rng, now)
    for ws in workspaces:
        ws.members[operator.uuid].role = "owner"
    owners = rng.sample(people[1:], k=shape.owners)
    for i, user in enumerate(owners):
        ws = workspaces[i % len(workspaces)]
        _join(ws, user, rng, now).role = "owner"

    # Groups: teams split over the workspaces in proportion to their members.
    per_ws = _split(shape.groups, len(workspaces), rng)
    for ws, count in zip(workspaces, per_ws, strict=True):
        members = [u for u in ws.members if org.users[u].account_status == "active" or rng.random() < 0.9]
        members = [u for u in members if u != operator.uuid]
        ws.groups["administrators"] = Group(
            "administrators", "Administrators", rng.sample(members, k=min(3, len(members)))
        )
        contractors = [u for u in members if org.users[u].is_contractor]
        ws.groups["contractors"] = Group("contractors", "Contractors", contractors)
        teams = max(1, count - 2)
        team_slugs = [
            f"{TEAMS[i % len(TEAMS)]}" + (f"-{i // len(TEAMS) + 1}" if i >= len(TEAMS) else "")
            for i in range(teams)
        ]
        for slug in team_slugs:
            ws.groups[slug] = Group(slug, slug.replace("-", " ").title() + " Team", [], permission="write")
        employees = [u for u in members if not org.users[u].is_contractor]
        for u in employees:
            ws.groups[rng.choice(team_slugs)].members.append(u)
            if rng.random() < 0.15:  # a few people sit in two teams
                second = ws.groups[rng.choice(team_slugs)]
                if u not in second.members:
                    second.members.append(u)

    # Projects and repositories, most access through project-level group grants.
    proj_split = _split(shape.projects, len(workspaces), rng)
    repo_split = _split(shape.repositories, len(workspaces), rng)
    for ws, n_projects, n_repos in zip(workspaces, proj_split, repo_split, strict=True):
        teams = [g for g in ws.groups if g not in ("administrators", "contractors")]
        projects = [_new_project(org, ws, rng, now, teams, i) for i in range(max(1, n_projects))]
        for _ in range(n_repos):
            _new_repository(org, ws, rng, now, rng.choice(projects))
    # its own stream: the company above is unchanged
    outsiders = random.Random(f"{shape.name}-{seed}-outsiders")
    for ws in workspaces:
        _add_outsiders(org, ws, outsiders, now)
    return org


def _add_outsiders(org: Organisation, ws: Workspace, rng: random.Random, now: datetime) -> None:
    """People with access who are not workspace members, as real workspaces have them: outside collaborators
    with direct repository grants, an access token's bot (`app_user`) with write on a few repositories, and a
    "Former user" (a deleted account) whose grant nobody removed."""
    repos = list(ws.repositories.values())
    if not repos:
        return
    slug = ws.slug
    for i in range(max(1, len(repos) // 50)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{i}@{slug}-agency.example"
        user = _new_user(org, rng, f"{first} {last} (agency)", email, first.lower())
        for repo in rng.sample(repos, k=min(2, len(repos))):
            repo.user_grants[user.uuid] = rng.choice(("read", "write"))
    bot = _new_user(org, rng, f"{slug} CI token", f"ci-token@{slug}.invalid", f"{slug}-ci")
    bot.kind = "app_user"
    for repo in rng.sample(repos, k=min(3, len(repos))):
        repo.user_grants[bot.uuid] = "write"
    former = _new_user(org, rng, "Former user", f"deleted-{slug}@invalid", "")
    former.account_id, former.nickname, former.account_status = None, None, "closed"
    rng.choice(repos).user_grants[former.uuid] = "read"


def _new_user(org: Organisation, rng: random.Random, display: str, email: str, nickname: str) -> User:
    user = User(
        uuid=new_uuid(rng),
        account_id=f"{rng.getrandbits(96):024x}"
        if rng.random() < 0.5
        else "557058:" + new_uuid(rng).strip("{}"),
        display_name=display,
        nickname=nickname,
        email=email,
        created_on=org.now - timedelta(days=rng.randint(30, 2500)),
    )
    configure_user(user)
    org.users[user.uuid] = user
    return user


def _join(ws: Workspace, user: User, rng: random.Random, now: datetime) -> Membership:
    if user.uuid not in ws.members:
        ws.members[user.uuid] = Membership(
            user.uuid,
            added_on=now - timedelta(days=rng.randint(1, 900)),
            # A tail of dormant accounts nobody has used for months.
            last_accessed=now
            - timedelta(days=rng.choice((0, 1, 2, 5, 12, 30, 120, 400)), hours=rng.randint(0, 23)),
        )
    return ws.members[user.uuid]


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """Most of `total` to the first part (the main workspace), the rest spread over the others."""
    if parts == 1:
        return [total]
    rest = [max(1, total // (5 * (parts - 1))) for _ in range(parts - 1)]
    return [total - sum(rest), *rest]


def _new_project(
    org: Organisation, ws: Workspace, rng: random.Random, now: datetime, teams: list[str], i: int
) -> Project:
    owner_team = teams[i % len(teams)]
    key = "".join(ch for ch in owner_team.upper() if ch.isalnum())[:6] + str(i)
    project = Project(
        uuid=new_uuid(rng),
        key=key,
        name=f"{owner_team.replace('-', ' ').title()} {i}",
        description=f"Services owned by the {owner_team} team",
        created_on=now - timedelta(days=rng.randint(100, 1200)),
        updated_on=now - timedelta(days=rng.randint(0, 90)),
    )
    project.group_grants[owner_team] = "write"
    project.group_grants["administrators"] = "admin"
    if rng.random() < 0.5:
        project.group_grants[rng.choice(teams)] = "read"
    if rng.random() < 0.3:  # a lead may create repositories in the project
        leads = ws.groups[owner_team].members
        if leads:
            project.user_grants[rng.choice(leads)] = "create-repo"
    ws.projects[key] = project
    configure_project(org, ws, project, now)
    return project


def _new_repository(
    org: Organisation, ws: Workspace, rng: random.Random, now: datetime, project: Project
) -> Repository:
    base = f"{rng.choice(REPO_WORDS)}-{rng.choice(REPO_WORDS)}"
    slug = f"{project.key.lower()}-{base}"
    n = 2
    while slug in ws.repositories:
        slug = f"{project.key.lower()}-{base}-{n}"
        n += 1
    repo = Repository(
        uuid=new_uuid(rng),
        slug=slug,
        name=slug,
        project_key=project.key,
        created_on=now - timedelta(days=rng.randint(0, 1000)),
        updated_on=now - timedelta(days=rng.randint(0, 60)),
        is_private=rng.random() > 0.03,
        language=rng.choice(LANGUAGES),
        size=rng.randint(10_000, 50_000_000),
    )
    teams = [g for g in ws.groups if g not in ("administrators", "contractors")]
    roll = rng.random()
    if roll < 0.2:
        repo.group_grants[rng.choice(teams)] = rng.choice(("read", "write"))
    elif roll < 0.27 and ws.groups["contractors"].members:
        repo.user_grants[rng.choice(ws.groups["contractors"].members)] = "write"
    elif roll < 0.32:
        people = [u for u in ws.members if ws.members[u].role != "owner"]
        repo.user_grants[rng.choice(people)] = rng.choice(("read", "write", "admin"))
    ws.repositories[slug] = repo
    configure_repository(org, ws, repo, now)
    return repo


def advance(org: Organisation, days: int = 1, churn: float = 0.01) -> dict[str, int]:
    """Move the organisation forward `days` days: joiners, movers, leavers, repositories created and deleted,
    grant changes.

    `churn` is the share of users (and of repositories) touched per day. Repositories are created and deleted
    at the same rate (half the churn each), so the organisation turns over without growing without bound: 0.5
    % new repositories a day and no deletions would be +180 % a year. Deterministic for a given organisation,
    seed and date, so a demo or test replays the same history.
    """
    totals = {
        "joiners": 0,
        "movers": 0,
        "leavers": 0,
        "new_repositories": 0,
        "deleted_repositories": 0,
        "permission_changes": 0,
    }
    for _ in range(days):
        org.now += timedelta(days=1)
        rng = random.Random(f"{org.name}-{org.seed}-{org.now.date().isoformat()}")
        main = next(iter(org.workspaces.values()))
        people = max(1, round(len(main.members) * churn / 3))
        repos = max(1, round(sum(len(w.repositories) for w in org.workspaces.values()) * churn / 2))
        for _ in range(people):
            totals["joiners"] += _joiner(org, main, rng)
            totals["movers"] += _mover(org, rng)
            totals["leavers"] += _leaver(org, rng)
        for _ in range(repos):
            ws = rng.choice(list(org.workspaces.values()))
            if ws.projects:
                _new_repository(org, ws, rng, org.now, rng.choice(list(ws.projects.values())))
                totals["new_repositories"] += 1
            totals["permission_changes"] += _permission_change(org, rng)
            totals["deleted_repositories"] += _delete_repository(org, rng)
        # Branch restrictions drift too, on a stream of their own (the rest of the day is unchanged by them).
        rules = random.Random(f"{org.name}-{org.seed}-{org.now.date().isoformat()}-change-control")
        totals["rule_changes"] = totals.get("rule_changes", 0) + drift(org, rules, repos)
        for ws in org.workspaces.values():  # some people used Bitbucket today
            for membership in rng.sample(list(ws.members.values()), k=max(1, len(ws.members) // 3)):
                if org.users[membership.user_uuid].account_status == "active":
                    membership.last_accessed = org.now - timedelta(hours=rng.randint(0, 8))
    org.touch()
    return totals


def _joiner(org: Organisation, ws: Workspace, rng: random.Random) -> int:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    display = f"{first} {last} {org.now:%m%d}{rng.randint(10, 99)}"
    user = _new_user(
        org, rng, display, f"{first.lower()}.{rng.getrandbits(24):06x}@{org.name}.example", first.lower()
    )
    membership = _join(ws, user, rng, org.now)
    membership.added_on = org.now
    teams = [g for g in ws.groups.values() if g.slug not in ("administrators", "contractors")]
    if teams:
        rng.choice(teams).members.append(user.uuid)
    return 1


def _mover(org: Organisation, rng: random.Random) -> int:
    ws = rng.choice(list(org.workspaces.values()))
    teams = [g for g in ws.groups.values() if g.slug not in ("administrators", "contractors")]
    source = rng.choice(teams)
    if not source.members or len(teams) < 2:
        return 0
    user = rng.choice(source.members)
    target = rng.choice([t for t in teams if t is not source])
    source.members.remove(user)
    if user not in target.members:
        target.members.append(user)
    return 1


def _leaver(org: Organisation, rng: random.Random) -> int:
    ws = next(iter(org.workspaces.values()))
    candidates = [
        u for u, m in ws.members.items() if m.role != "owner" and org.users[u].account_status == "active"
    ]
    if not candidates:
        return 0
    user = rng.choice(candidates)
    if rng.random() < 0.3:
        # Account deactivated but the access was never removed: what an access review must catch.
        org.users[user].account_status = "inactive"
        return 1
    for w in org.workspaces.values():
        remove_member(w, user)
    org.users[user].account_status = "inactive"
    return 1


def remove_member(ws: Workspace, user_uuid: str) -> None:
    """Remove a user from a workspace and every grant and group in it, as Bitbucket does."""
    ws.members.pop(user_uuid, None)
    for group in ws.groups.values():
        if user_uuid in group.members:
            group.members.remove(user_uuid)
    for project in ws.projects.values():
        project.user_grants.pop(user_uuid, None)
    for repo in ws.repositories.values():
        repo.user_grants.pop(user_uuid, None)


def _delete_repository(org: Organisation, rng: random.Random) -> int:
    """Delete a repository, as its admin would: it leaves every listing, and its grants go with it."""
    ws = rng.choice(list(org.workspaces.values()))
    # keep a workspace's last repository: an empty workspace tells a demo nothing
    if len(ws.repositories) < 2:
        return 0
    del ws.repositories[rng.choice(list(ws.repositories))]
    return 1


def _permission_change(org: Organisation, rng: random.Random) -> int:
    ws = rng.choice(list(org.workspaces.values()))
    if not ws.repositories:
        return 0
    repo = rng.choice(list(ws.repositories.values()))
    roll = rng.random()
    if roll < 0.35:
        people = [u for u, m in ws.members.items() if m.role != "owner"]
        repo.user_grants[rng.choice(people)] = rng.choice(("read", "write", "admin"))
    elif roll < 0.6 and repo.user_grants:
        repo.user_grants.pop(rng.choice(list(repo.user_grants)))
    elif roll < 0.8:
        teams = [g for g in ws.groups if g not in ("administrators", "contractors")]
        repo.group_grants[rng.choice(teams)] = rng.choice(("read", "write", "admin"))
    else:
        project = ws.projects[repo.project_key]
        grants = [g for g in project.group_grants if g != "administrators"]
        if not grants:
            return 0
        project.group_grants[rng.choice(grants)] = rng.choice(("read", "write", "create-repo"))
    repo.updated_on = org.now
    return 1
