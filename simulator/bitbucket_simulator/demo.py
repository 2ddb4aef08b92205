"""`bitbucket-access demo`: the whole pipeline against the built-in simulator, a month of daily snapshots.

The demo's settings are built only from what it passes (the simulator's URL and token, the warehouse
file): a user's own `BITBUCKET_*` variables never reach it, and it never changes the process environment.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from bitbucket_assets import services
from bitbucket_assets.client import BitbucketClient, credentials_from_settings
from bitbucket_assets.client.admin_api import AtlassianAdminApi
from bitbucket_assets.clock import SimulatedClock
from bitbucket_assets.extraction.extract import ExtractionOptions
from bitbucket_assets.extraction.refresh import RefreshPolicy
from bitbucket_assets.extraction.sync import run_sync
from bitbucket_assets.provisioning.approvals import ApproverPolicy
from bitbucket_assets.provisioning.engine import Provisioner
from bitbucket_assets.provisioning.requests_import import insert_requests
from bitbucket_assets.provisioning.signed_requests import sign_request
from bitbucket_assets.provisioning.tables import create_provisioning_tables
from bitbucket_assets.reporting.review_import import sign_review
from bitbucket_assets.settings import Settings, load_settings, process_environment
from bitbucket_assets.signing import public_key
from bitbucket_assets.warehouse import plan_views
from bitbucket_assets.warehouse.files import (
    publish_read_copy,
    read_copy_path,
)

from . import (
    SIM_API_TOKEN,
    SIM_ORG_API_KEY,
    SIM_ORG_ID,
    Simulator,
    SimulatorServer,
    load_organisation,
)
from .model import Organisation

DEMO_DATABASE = "data/demo.duckdb"


@dataclass
class DemoResult:
    settings: Settings
    evidence_report: Path
    api_calls: int
    keys: Path | None = None  # the demo approver's and reviewer's keys


@dataclass
class DayResult:
    """One simulated day: the sync's line (a detail), what provisioning did (part of the story), and what the
    sync read."""

    sync_line: str
    provisioning: list[str]
    calls: int
    lists_read: int
    lists_carried: int


@dataclass(frozen=True)
class DemoSigners:
    """The demo's approver policy and the two people it lets sign: an approver, and a reviewer."""

    policy: Path
    keys: Path
    approver: str  # principals: their emails, mapped to their account ids in the policy
    approver_key: Path
    reviewer: str
    reviewer_key: Path
    reviewer_uuid: str


def demo_settings(
    server_url: str, operator_email: str, duckdb_path: str, approver_policy: str | None = None
) -> Settings:
    """Settings that point at a simulator; nothing is read from the environment."""
    return load_settings(
        bitbucket_approver_policy=approver_policy,
        bitbucket_api_url=server_url,
        bitbucket_email=operator_email,
        bitbucket_api_token=SIM_API_TOKEN,
        bitbucket_requests_per_hour=1_000_000,  # the demo simulator has no rate limit
        duckdb_path=duckdb_path,
        # Its workspace administered from admin.atlassian.com goes through the simulated Atlassian Admin API.
        bitbucket_admin_org_id=SIM_ORG_ID,
        bitbucket_admin_api_key=SIM_ORG_API_KEY,
        bitbucket_admin_api_url=server_url,
    )


# The lines of today's sync summary that belong in the demo's story; the rest (rows per raw table, what each
# workspace read) go to the details.
STORY_PREFIXES = ("sync ", "  API calls:", "  marts/", "  checks:", "  VANISHED", "  skipped workspace")


def run_demo(
    org_name: str,
    days: int,
    duckdb_path: str | None,
    echo: Callable[[str], None],
    detail: Callable[[str], None] | None = None,
) -> DemoResult:
    """A warehouse with `days` daily snapshots ending today. Every day but the last is extracted over HTTP by
    the real extraction on a simulated clock dated that day (the organisation evolving between days), with
    approved requests, signed by the demo approver, provisioned on the third day and just-in-time grants
    expired when due; the last day is the Dagster sync job on the real clock, whose dbt build folds every day
    in, as it does after a downtime. The simulated leavers are recorded in provisioning.leavers as HR would
    (one of them, on the second day, keeps their access: what a review must catch). Then one access review,
    signed by the demo reviewer, whose revocation the provisioning job applies, and an evidence pack over the
    whole period.

    `echo` tells the story (a few dozen lines); `detail` gets every day's lines (default: `echo`)."""
    detail = detail or echo
    if days < 2:
        raise services.CommandError("the demo needs at least 2 days: simulated ones, then today's sync")
    database = fresh_demo_database(duckdb_path)
    today = datetime.now(UTC).replace(microsecond=0)
    first = (today - timedelta(days=days - 1)).replace(hour=5, minute=0, second=0)
    org = load_organisation(org_name, now=first)
    provisioning_day = min(2, days - 2)
    requests = demo_requests(org, first + timedelta(days=provisioning_day))
    signers = demo_signers(org, database, {r["user_id"] for r in requests})
    changes: Counter = Counter()
    read = carried = 0
    with SimulatorServer(Simulator(org)) as server:
        settings = demo_settings(
            server.url, org.users[org.operator_uuid].email, str(database), str(signers.policy)
        )
        settings.ensure_warehouse_directory()
        echo(f"Simulated Bitbucket Cloud ({org.name}: {counts_line(org.counts())}) on {server.url}")
        echo(ApproverPolicy.load(str(signers.policy)).describe())
        last = first + timedelta(days=days - 2)
        echo(
            f"{days - 1} past day(s), {first:%Y-%m-%d} to {last:%Y-%m-%d}: one sync a day on a simulated "
            "clock, the organisation changing in between"
        )
        for day in range(days - 1):
            if day:
                changes.update(_advance(server.simulator, org, settings, detail, scripted=day == 1))
            result = _simulated_day(settings, org, day == provisioning_day, signers)
            detail(result.sync_line)
            read, carried = read + result.lists_read, carried + result.lists_carried
            for line in result.provisioning:
                (echo if day == provisioning_day else detail)(line)
            if day == 0:
                # later days are incremental, as after the job's second sync, which builds the plan views
                plan_views.build(settings.duckdb_path)
        changes.update(_advance(server.simulator, org, settings, detail, scripted=days == 2))
        echo(
            f"  {days - 1} snapshot(s) complete; repositories' permission lists read {read} times, carried "
            f"forward {carried} times (incremental syncs)"
        )
        changed = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in changes.items())
        echo(f"  the organisation changed: {changed}")
        echo(f"  leavers recorded in provisioning.leavers (as HR would): {changes['leavers']}")
        echo(f"-- {today:%Y-%m-%d} (today): the Dagster sync job, whose dbt build takes in every day above")
        for line in services.sync(settings).lines():
            (echo if line.startswith(STORY_PREFIXES) else detail)(line)
        for line in _signed_review(settings, org, signers, database):
            echo(line)
        # The review and its revocation came after the sync's read copy: publish it again, so the dashboard
        # and the evidence pack show them.
        publish_read_copy(settings.duckdb_path)
        calls = len(server.simulator.request_log)
    echo(f"{calls} API calls answered by the simulator.")
    evidence_dir = database.with_name(database.stem + "-evidence")
    pack = services.evidence(
        settings, first - timedelta(days=1), datetime.now(UTC), str(evidence_dir), replace=True
    )
    return DemoResult(settings, pack.report, calls, signers.keys)


def _advance(
    simulator: Simulator,
    org: Organisation,
    settings: Settings,
    detail: Callable[[str], None],
    scripted: bool = False,
) -> dict[str, int]:
    """One day forward; the day's leavers go to provisioning.leavers, as an HR feed would put them. The
    `scripted` day adds what every demo must show whatever the date-seeded churn brings: a leaver who keeps
    their access, and a team granted write on a repository (a group's own grant, and its members' paths)."""
    before = {uuid for uuid, user in org.users.items() if user.account_status != "active"}
    changes = simulator.advance(days=1, churn=0.02)
    if scripted:
        changes["leavers"] += _leaver_keeping_access(simulator, org)
        changes["permission_changes"] += _team_granted_write(simulator, org)
    left = sorted({uuid for uuid, user in org.users.items() if user.account_status != "active"} - before)
    record_leavers(settings.duckdb_path, left, org.now.date())
    detail(f"-- {org.now:%Y-%m-%d}: " + ", ".join(f"{v} {k}" for k, v in changes.items()))
    return changes


def _leaver_keeping_access(simulator: Simulator, org: Organisation) -> int:
    """A leaver whose account was deactivated while their group memberships stayed: the access a review and
    the leaver risk must catch. The first group member of the first workspace who is not an owner."""
    ws = next(iter(org.workspaces.values()))
    with simulator.lock:
        for group in ws.groups.values():
            for uuid in group.members:
                user = org.users[uuid]
                if (
                    user.account_status == "active"
                    and ws.members.get(uuid)
                    and ws.members[uuid].role != "owner"
                ):
                    user.account_status = "inactive"
                    org.touch()
                    return 1
    return 0


def _team_granted_write(simulator: Simulator, org: Organisation) -> int:
    """A team (not `administrators` or `contractors`) granted write on a repository it had no grant on,
    where the grant raises a member's access: an unchanged effective list would leave the repository's
    lists carried forward, and the grant unseen until they fall due. The first such pair of the first
    workspace, repositories by slug, then teams by slug."""
    ws = next(iter(org.workspaces.values()))
    teams = sorted(g for g in ws.groups if g not in ("administrators", "contractors"))
    below_write = {None, "read"}
    with simulator.lock:
        for repo in sorted(ws.repositories.values(), key=lambda r: r.slug):
            held = ws.effective_repository_permissions(repo)
            for team in teams:
                members = [u for u in ws.groups[team].members if u in ws.members]
                if team not in repo.group_grants and any(held.get(u) in below_write for u in members):
                    repo.group_grants[team] = "write"
                    repo.updated_on = org.now
                    org.touch()
                    return 1
    return 0


def record_leavers(duckdb_path: str, users: list[str], left_on) -> None:
    """Leavers into provisioning.leavers (source: the demo's HR feed); one already there is kept."""
    if not users:
        return
    with duckdb.connect(duckdb_path) as con:
        create_provisioning_tables(con)
        con.executemany(
            "INSERT INTO provisioning.leavers (user_id, left_on, source) VALUES (?, ?, 'demo HR feed') "
            "ON CONFLICT DO NOTHING",
            [[uuid, left_on] for uuid in users],
        )


def _simulated_day(settings: Settings, org: Organisation, provision: bool, signers: DemoSigners) -> DayResult:
    """One day of the past on a clock that starts at the organisation's date: a sync (the real extraction,
    over HTTP), the expiry of just-in-time grants that are due, and on one day the demo's approved requests,
    each signed by the demo approver."""
    clock = SimulatedClock(org.now)
    client = BitbucketClient(
        credentials_from_settings(settings),
        settings.bitbucket_api_url,
        requests_per_hour=settings.bitbucket_requests_per_hour,
        clock=clock,
    )
    admin = AtlassianAdminApi.connect(
        settings.bitbucket_admin_org_id,
        SIM_ORG_API_KEY,
        settings.bitbucket_admin_api_url,
        requests_per_hour=settings.bitbucket_requests_per_hour,
        clock=clock,
    )
    lines = []
    try:
        with duckdb.connect(settings.duckdb_path) as con:
            # No rate limit here: every repository's change control is read every day (a rolling period of
            # one day), so the month shows its history; a real deployment spreads it
            # (BITBUCKET_CHANGE_CONTROL_DAYS).
            options = ExtractionOptions(admin_api=admin, refresh=RefreshPolicy(change_control_days=1))
            result = run_sync(client, con, options)
            record_project_rules(con, org, clock.now())
            read = sum(sum(r["read"].values()) for r in result.refresh.values())
            carried = sum(r["carried"] for r in result.refresh.values())
            modes = "/".join(sorted({r["mode"] for r in result.refresh.values()}))
            sync_line = (
                f"sync {result.sync_id} complete: workspaces {', '.join(result.workspaces)} (dated "
                f"{clock.now():%Y-%m-%d %H:%M} UTC on a simulated clock; {result.stats['calls']} API calls; "
                f"{modes}: permission lists of {read} repositories read, {carried} carried forward)"
            )
            policy = ApproverPolicy.load(settings.bitbucket_approver_policy)
            expiry = Provisioner(client, con, approvals=policy, admin_api=admin)
            expiry.expire()
            if expiry.report.outcomes:
                lines += services.provisioning_summary(con, expiry.run_id, False, policy.describe()).lines()
            if provision:
                lines.append(
                    f"-- approved requests, signed by {signers.approver} (one just-in-time, one in an "
                    "admin-managed workspace)"
                )
                signed = [
                    {
                        **r,
                        "approved_by": signers.approver,
                        "approval_signature": sign_request(r, signers.approver_key),
                    }
                    for r in demo_requests(org, clock.now())
                ]
                insert_requests(con, signed, skip_existing=True)
                run = Provisioner(client, con, approvals=policy, admin_api=admin)
                run.provision()
                lines += services.provisioning_summary(con, run.run_id, False, policy.describe()).lines()
    finally:
        client.close()
        admin.client.close()
    return DayResult(sync_line, lines, result.stats["calls"], read, carried)


def demo_signers(org: Organisation, database: Path, requested: set[str]) -> DemoSigners:
    """Two people of the first workspace (owners first; none whose access the demo's requests change) get a
    key each, and a policy that names them: the approver for every workspace and for protected groups, the
    reviewer for every workspace; every request needs a signature. Keys and policy sit in a directory beside
    the warehouse that only its owner can open, as an approver's key and the deployment's policy would: the
    policy is refused in a directory others can write, which the warehouse's may be (a umask of 002)."""
    ws = next(iter(org.workspaces.values()))
    candidates = sorted(
        (u for u, m in ws.members.items() if u != org.operator_uuid and u not in requested),
        key=lambda u: (ws.members[u].role != "owner", org.users[u].email),
    )
    approver, reviewer = (org.users[u] for u in candidates[:2])
    keys = database.with_name(database.stem + "-keys")
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys.chmod(0o700)  # mkdir's mode is masked by the umask, and an existing directory keeps its own
    made = {}
    for who, name in ((approver, "approver"), (reviewer, "reviewer")):
        key = keys / name
        key.unlink(missing_ok=True)
        key.with_name(name + ".pub").unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", who.email, "-f", str(key)],
            check=True,
            capture_output=True,
        )
        made[name] = key
    policy = keys / "approvers.yaml"
    policy.write_text(
        "# The demo's approver policy (docs/provisioning.md): written by `bitbucket-access demo`.\n"
        "identities:\n"
        f'  {approver.email}: "{approver.account_id}"\n'
        f'  {reviewer.email}: "{reviewer.account_id}"\n'
        "approvers:\n"
        f'  "*": {{people: [{approver.email}, {reviewer.email}]}}\n'
        "protected_approvers:\n"
        f'  "*": {{people: [{approver.email}]}}\n'
        "require_signatures: always\n"
        "allowed_signers: |\n"
        f"  {approver.email} {public_key(made['approver'])}\n"
        f"  {reviewer.email} {public_key(made['reviewer'])}\n",
        encoding="utf-8",
    )
    policy.chmod(0o600)
    return DemoSigners(
        policy, keys, approver.email, made["approver"], reviewer.email, made["reviewer"], reviewer.uuid
    )


def _signed_review(settings: Settings, org: Organisation, signers: DemoSigners, database: Path) -> list[str]:
    """One access review of the first workspace: the demo reviewer keeps the first few rows, revokes one group
    membership, signs the file and imports it; the provisioning job then applies the revocation."""
    ws = next(iter(org.workspaces.values()))
    now = datetime.now(UTC)
    path = database.with_name(database.stem + "-review.csv")
    target, count, campaign = services.review_export(settings, now, ws.slug, "csv", str(path))
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    others = [r for r in rows if r["user_uuid"] != signers.reviewer_uuid]
    revoked = next(
        r
        for r in others
        if r["resource_type"] == "group" and r["resource_key"] not in ("administrators", "everyone")
    )
    revoked.update(decision="revoke", comment="moved to another team")
    for row in [r for r in others if r is not revoked][:5]:
        row.update(decision="keep", comment="still needed")
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    sign_review(target, signers.reviewer_key)
    result, _ = services.review_import(settings, str(target))
    lines = [
        f"-- access review: campaign {campaign.campaign_id} of {count} rows in {ws.slug} ({target.name}), "
        f"due {campaign.due_at:%Y-%m-%d}; {result.reviewer} signed {len(result.decisions)} decisions "
        f"({result.kept} keep, {result.revoked} revoke), recorded with the file's SHA-256 "
        f"{result.file.sha256[:12]}",
    ]
    return lines + services.provision(settings).lines()


def record_project_rules(con: duckdb.DuckDBPyConnection, org: Organisation, now: datetime) -> None:
    """What the demo's administrator saw in each project's settings: whether it has project-level branch
    restrictions (no API serves them; provisioning.project_branch_rules). New projects are checked as they
    come."""
    create_provisioning_tables(con)
    rows = [
        (ws.slug, p.key, bool(p.branch_restrictions), "demo administrator", now.date())
        for ws in org.workspaces.values()
        for p in ws.projects.values()
    ]
    con.executemany(
        "INSERT INTO provisioning.project_branch_rules VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
    )


def fresh_demo_database(duckdb_path: str | None) -> Path:
    """The demo writes a warehouse of its own, afresh each time: the default one is replaced; a DUCKDB_PATH
    that already exists is refused rather than overwritten (it may be someone's real warehouse)."""
    database = Path(duckdb_path or DEMO_DATABASE).resolve()
    if duckdb_path and database.exists():
        raise services.CommandError(
            f"DUCKDB_PATH {database} exists: the demo writes a new warehouse, choose a file that does not "
            "exist"
        )
    for old in (database, read_copy_path(str(database)), database.with_name(database.name + ".wal")):
        Path(old).unlink(missing_ok=True)
    return database


def dagster_environment(settings: Settings, dagster_home: Path, base: dict[str, str]) -> dict[str, str]:
    """The environment of `dagster dev` against a simulator: `base` (the user's) without their own Bitbucket
    and warehouse variables, plus the simulator's, paced for a demo (minutes, not the production budget's
    hours)."""
    kept = {
        k: v
        for k, v in base.items()
        if not k.startswith("BITBUCKET_") and k not in ("DUCKDB_PATH", "MOTHERDUCK_TOKEN")
    }
    return {
        **kept,
        "BITBUCKET_API_URL": settings.bitbucket_api_url,
        "BITBUCKET_EMAIL": settings.bitbucket_email or "",
        "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
        "BITBUCKET_REQUESTS_PER_HOUR": str(int(settings.bitbucket_requests_per_hour)),
        "BITBUCKET_ADMIN_ORG_ID": SIM_ORG_ID,
        "BITBUCKET_ADMIN_API_KEY": SIM_ORG_API_KEY,
        "BITBUCKET_ADMIN_API_URL": settings.bitbucket_admin_api_url,
        "DUCKDB_PATH": settings.duckdb_path,
        "DAGSTER_HOME": str(dagster_home),
    }


def run_dagster_demo(
    org_name: str, duckdb_path: str | None, port: int, dagster_home: Path, echo: Callable[[str], None]
) -> int:
    """Serve the organisation and run `dagster dev` on it until interrupted: "Materialize all", the schedules
    and the sensor work in the UI against the simulator, and a sync finishes in minutes. Returns dagster's
    status."""
    org = load_organisation(org_name, now=datetime.now(UTC).replace(microsecond=0))
    with SimulatorServer(Simulator(org)) as server:
        settings = demo_settings(server.url, org.users[org.operator_uuid].email, duckdb_path or DEMO_DATABASE)
        settings.ensure_warehouse_directory()
        dagster_home.mkdir(parents=True, exist_ok=True)
        echo(f"Simulated Bitbucket Cloud ({org.name}: {counts_line(org.counts())}) on {server.url}")
        echo(f"Dagster UI on http://127.0.0.1:{port} (warehouse {settings.duckdb_path}); Ctrl-C stops both")
        command = [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-m",
            "bitbucket_assets.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        # Its own process group, so that stopping it reaches the webserver, daemon and code server it starts:
        # killing `dagster dev` alone left its webserver serving the port.
        child = subprocess.Popen(
            command,
            env=dagster_environment(settings, dagster_home.resolve(), process_environment()),
            start_new_session=True,
        )
        try:
            return child.wait()
        except KeyboardInterrupt:
            # dagster dev stops its webserver and daemon on SIGINT, but may wait long on them (a daemon
            # mid-tick): then SIGTERM, then SIGKILL, to the whole group, so that nothing outlives the demo.
            for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, stop)
                try:
                    child.wait(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    continue
            with contextlib.suppress(ProcessLookupError):  # whatever of the group outlived dagster dev
                os.killpg(child.pid, signal.SIGKILL)
            return 0


def demo_requests(org: Organisation, now: datetime) -> list[dict]:
    """Approved requests on the demo organisation: a just-in-time add and a removal in the first workspace,
    and an add in a workspace administered from admin.atlassian.com (made through the Atlassian Admin API)."""
    ws = next(iter(org.workspaces.values()))
    group = next(
        g for g in ws.groups.values() if g.slug not in ("administrators", "contractors") and g.members
    )
    newcomer = next(u for u, m in ws.members.items() if m.role != "owner" and u not in group.members)
    common = {
        "workspace_slug": ws.slug,
        "group_slug": group.slug,
        "requested_by": f"lead@{org.name}.example",
        "approved_by": f"security@{org.name}.example",
        "approved_at": now,
    }
    requests = [
        {
            **common,
            "request_id": "demo-jit-1",
            "user_id": newcomer,
            "action": "add",
            "expires_at": now + timedelta(days=7),
            "reason": "on-call cover for one week",
        },
        {
            **common,
            "request_id": "demo-remove-1",
            "user_id": group.members[0],
            "action": "remove",
            "expires_at": None,
            "reason": "moved to another team",
        },
    ]
    for labs in (w for w in org.workspaces.values() if w.admin_managed):
        org_group = next(
            (g for g in labs.groups.values() if g.slug != "administrators" and not g.idp_synced), None
        )
        joiner = next((u for u in labs.members if org_group and u not in org_group.members), None)
        if org_group and joiner:
            requests.append(
                {
                    **common,
                    "workspace_slug": labs.slug,
                    "group_slug": org_group.slug,
                    "request_id": f"demo-org-{labs.slug}",
                    "user_id": joiner,
                    "action": "add",
                    "expires_at": None,
                    "reason": "joins the research team",
                }
            )
        break
    return requests


def closing_lines(result: DemoResult) -> list[str]:
    database = result.settings.duckdb_path
    policy = result.settings.bitbucket_approver_policy
    return [
        "",
        f"Warehouse:     {database} (written by the pipeline only)",
        f"Analysts open: {read_copy_path(database)} (marts in schema `marts`; questions in the README)",
        f"Evidence pack: {result.evidence_report}",
        f"Policy:        {policy} (signatures required; the demo's signing keys in {result.keys})",
        f"Dashboard:     DUCKDB_PATH={database} BITBUCKET_APPROVER_POLICY={policy} "
        ".venv/bin/bitbucket-access dashboard   -> http://127.0.0.1:8501",
        "Dagster UI:    .venv/bin/bitbucket-access demo --dagster   -> http://127.0.0.1:3000 (on the "
        "simulator)",
    ]


def counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items())
