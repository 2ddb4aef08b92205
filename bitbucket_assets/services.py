"""What each `bitbucket-access` command does, as one function per command, over a `Settings`.

The CLI (`cli.py`) only parses arguments, calls one of these and prints the result. Jobs run in-process on
an ephemeral Dagster instance; what they did is then read back from the warehouse (the sync manifest in
`raw.syncs`, the provisioning log), which is the durable record, rather than from Dagster's events.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from .clock import SystemClock
from .extraction.refresh import describe_refresh
from .settings import Settings
from .warehouse.files import open_reader, open_writer, report_database

if TYPE_CHECKING:  # a command imports Dagster only when it runs a job
    import dagster as dg

MART_COUNTS = ("fct_grants", "fct_effective_access", "fct_grant_history", "fct_access_changes", "dim_users")
OUTCOMES = ("applied", "no_change", "rejected", "failed", "expired")


class CommandError(RuntimeError):
    """A command failed for a reason the user can act on; the message says which."""


@contextmanager
def _connect(database: str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse (or its read copy), waiting while a sync or a provisioning run holds the file."""
    with open_reader(database) if read_only else open_writer(database) as con:
        yield con


@contextmanager
def _report_reader(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """What reports read: the read copy with the provisioning copy attached over it (the newest provisioning,
    review and evidence records), else the warehouse itself."""
    from .warehouse.provisioning_copy import attach_provisioning_copy

    database = report_database(settings)
    with _connect(database, read_only=True) as con:
        if database != settings.duckdb_path:
            attach_provisioning_copy(con, database)
        yield con


def publish_fresh(settings: Settings) -> None:
    """After a command wrote provisioning, review or evidence records: publish the provisioning copy, so that
    the dashboard and the next report show them at once (warehouse/provisioning_copy.py). The records are
    committed already; a copy that cannot be written leaves readers a step behind until the next one, and says
    so on stderr."""
    import sys

    from .warehouse.provisioning_copy import publish_provisioning_copy

    try:
        publish_provisioning_copy(settings.duckdb_path)
    except (OSError, RuntimeError, duckdb.Error) as exc:
        print(
            f"warning: the provisioning copy readers see was not refreshed ({exc}); the next command or sync "
            "refreshes it",
            file=sys.stderr,
        )


# ---- sync ----


@dataclass
class SyncSummary:
    sync_id: str
    workspaces: list[str]
    api_calls: int
    retries: int
    rate_limited: int
    raw_rows: dict[str, int]
    mart_rows: dict[str, int]
    checks_passed: int
    checks_failed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # workspaces seen but not covered, with the reason
    anomalies: dict[str, int] = field(default_factory=dict)  # list entries skipped, per endpoint family
    # per workspace: lists read per reason, carried forward
    refresh: dict[str, dict] = field(default_factory=dict)
    resumed_from: str | None = None  # the sync this run resumed (killed or interrupted before), if any
    # `complete`, or `suspect`: held back by the circuit breaker, nothing published (exit status 3)
    status: str = "complete"
    vanished: list[dict] = field(default_factory=list)  # what vanished per workspace and kind (vanished.py)
    accepted: bool = False  # published although more vanished than the breaker allows (--accept-vanished)
    held_published: bool = False  # a snapshot held back earlier, published now as it was read

    @property
    def suspect(self) -> bool:
        return self.status == "suspect"

    def lines(self) -> list[str]:
        from .extraction.vanished import Vanished

        total = self.checks_passed + len(self.checks_failed)
        failed = f"; FAILED: {', '.join(self.checks_failed)}" if self.checks_failed else ""
        resumed = " (resumed from its checkpoints)" if self.resumed_from else ""
        over = [v for v in self.vanished if v["over_limit"]]
        if self.suspect:
            title = (
                f"sync {self.sync_id} HELD BACK (suspect): too much vanished since the last observation; "
                "nothing was published and the marts keep the last state"
            )
            after = [
                "  if the change is real: bitbucket-access sync --accept-vanished (publishes this snapshot "
                "as it was read)",
                "  if it is not (a proxy, a credential, an API change): fix it; the next sync reads again",
            ]
        else:
            held = " (held back earlier, published as it was read: accepted)" if self.held_published else ""
            title = f"sync {self.sync_id} complete{resumed}{held}: workspaces {', '.join(self.workspaces)}"
            after = []
        return [
            title,
            *[
                f"  {'VANISHED' if v['over_limit'] else 'vanished'} in {Vanished(**v).line()}"
                + (" (accepted)" if v["over_limit"] and self.accepted else "")
                for v in (over if self.suspect else self.vanished)
            ],
            *after,
            *[f"  skipped workspace {slug}: {reason}" for slug, reason in self.skipped.items()],
            *[
                f"  skipped entries in {family}: {n} (lacking their identity, or resources deleted while the "
                "sync ran; listed in raw.anomalies)"
                for family, n in self.anomalies.items()
            ],
            *[f"  {slug}: {describe_refresh(refresh)}" for slug, refresh in self.refresh.items()],
            f"  API calls: {self.api_calls}, retries: {self.retries}, 429s: {self.rate_limited}",
            *[f"  raw/{table}: {rows} rows" for table, rows in self.raw_rows.items()],
            *[f"  marts/{mart}: {rows} rows" for mart, rows in self.mart_rows.items()],
            f"  checks: {self.checks_passed} of {total} passed{failed}",
        ]


def sync(settings: Settings, full: bool = False, accept_vanished: bool = False) -> SyncSummary:
    """One snapshot and the dbt build over it: the `bitbucket_sync` job, run in-process on this deployment's
    Dagster instance (DAGSTER_HOME) or a throwaway one. `full`: read every repository's permission lists
    (extraction/refresh.py). `accept_vanished`: publish what the circuit breaker would hold back
    (extraction/vanished.py). A snapshot held back (`suspect`) is a summary with `suspect` set, not an error:
    the run failed on purpose, at the blocking check `nothing_vanished`, before dbt."""
    preflight_sync(settings, call_bitbucket=not accept_vanished)  # before Dagster is even imported

    from .defs import sync_job
    from .defs.resources import with_resources
    from .extraction.vanished import vanished_entries

    definitions = with_resources(settings, sync_job.definitions())
    config = {"full": full, "accept_vanished": accept_vanished}
    run_config = {"ops": {"bitbucket_raw_snapshot": {"config": config}}}
    result = _execute(settings, definitions, sync_job.SYNC_JOB, run_config)
    # The sync's own id: a resumed sync keeps the id of the run that started it.
    snapshot = [
        m
        for m in result.asset_materializations_for_node("bitbucket_raw_snapshot")
        if m.asset_key.path[-1] == "syncs"
    ]
    held = bool(snapshot) and snapshot[0].metadata["status"].value == "suspect"
    if not result.success and not held:
        raise CommandError(_failure_message(result))
    sync_id = snapshot[0].metadata["sync_id"].value
    checks = result.get_asset_check_evaluations()
    with _connect(settings.duckdb_path, read_only=True) as con:
        row = con.execute(
            "select workspaces, entity_counts, api_calls, retries, rate_limited, skipped_workspaces, "
            "anomalies, refresh, status, vanished, coalesce(vanished_accepted, false) from raw.syncs "
            "where sync_id = ?",
            [sync_id],
        ).fetchone()
        workspaces, counts, calls, retries, limited, skipped, anomalies, refresh = row[:8]
        marts = _mart_counts(con)
    held_published = bool(snapshot[0].metadata["held_published"].value)
    return SyncSummary(
        sync_id=sync_id,
        workspaces=list(workspaces),
        api_calls=sum(json.loads(calls).values()),
        retries=retries or 0,
        rate_limited=limited or 0,
        raw_rows=dict(sorted(json.loads(counts).items())),
        mart_rows=marts,
        checks_passed=sum(1 for c in checks if c.passed),
        checks_failed=[c.check_name for c in checks if not c.passed],
        skipped=json.loads(skipped or "{}"),
        anomalies=json.loads(anomalies or "{}"),
        refresh=json.loads(refresh or "{}"),
        resumed_from=None if sync_id == result.run_id or held_published else sync_id,
        held_published=held_published,
        status=row[8],
        vanished=vanished_entries(row[9]),
        accepted=row[10],
    )


def preflight_sync(settings: Settings, call_bitbucket: bool = True) -> None:
    """What would make a sync fail, found before any work (before Dagster starts, dbt parses or a table is
    created): a warehouse path that cannot be written, and, with `call_bitbucket`, a refused credential, an
    unreachable API or a BITBUCKET_WORKSPACES entry the credential cannot cover. One call
    (`/2.0/user/workspaces`), retried only twice: a wrong URL is said in seconds, not after a minute of
    backoff. Raises `CommandError` or the client's `BitbucketError`, whose messages say what to do."""
    from .client import BitbucketApi, BitbucketClient, credentials_from_settings
    from .extraction.extract import choose_workspaces
    from .warehouse.files import warehouse_path_problem

    problem = warehouse_path_problem(settings.duckdb_path)
    if problem:
        raise CommandError(problem)
    if not call_bitbucket:
        return
    client = BitbucketClient(
        credentials_from_settings(settings),
        settings.bitbucket_api_url,
        requests_per_hour=settings.bitbucket_requests_per_hour,
        max_retries=PREFLIGHT_RETRIES,
    )
    try:
        choose_workspaces(BitbucketApi(client).user_workspaces(), settings.workspace_filter)
    finally:
        client.close()


# Retries of the calls `check` and the sync's preflight make: enough for a blip, few enough that a wrong URL
# or a host that is down is reported in seconds.
PREFLIGHT_RETRIES = 2


def _mart_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per mart, for the marts that exist (a snapshot held back before any build leaves none)."""
    present = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()
    }
    return {
        m: con.execute(f"select count(*) from marts.{m}").fetchone()[0] for m in MART_COUNTS if m in present
    }


def _execute(settings: Settings, definitions, job_name: str, run_config: dict):
    """Run one job of `definitions` in this process, on the deployment's instance when DAGSTER_HOME names one
    (its run history, logs and metadata then show in the UI), else on a throwaway instance."""
    import dagster as dg

    job = definitions.resolve_job_def(job_name)
    if settings.dagster_home:
        instance = dg.DagsterInstance.from_config(settings.dagster_home)
    else:
        instance = dg.DagsterInstance.ephemeral()
    with instance:
        return job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False)


# ---- check ----


def check(settings: Settings):
    """The connection test (`connection_check.CheckReport`)."""
    from .client import BitbucketClient, Credentials, credentials_from_settings
    from .connection_check import check_connection
    from .provisioning.approvals import ApproverPolicy
    from .warehouse.files import warehouse_path_problem

    client = BitbucketClient(
        credentials_from_settings(settings),
        settings.bitbucket_api_url,
        requests_per_hour=settings.bitbucket_requests_per_hour,
        max_retries=PREFLIGHT_RETRIES,
    )
    admin_api = _admin_api(settings)
    token = settings.secret("bitbucket_change_control_token")
    control = (
        BitbucketClient(
            Credentials.access_token(token),
            settings.bitbucket_api_url,
            requests_per_hour=settings.bitbucket_requests_per_hour,
            max_retries=PREFLIGHT_RETRIES,
        )
        if token
        else None
    )
    try:
        report = check_connection(
            client,
            admin_api,
            settings.admin_managed_workspaces,
            settings.workspace_filter,
            control,
            settings.bitbucket_change_control_workspace,
        )
    finally:
        client.close()
        if admin_api is not None:
            admin_api.client.close()
        if control is not None:
            control.close()
    report.notes.append(ApproverPolicy.load(settings.bitbucket_approver_policy).describe())
    problem = warehouse_path_problem(settings.duckdb_path)
    if problem:
        report.problems.append(problem)
    state = _warehouse_state(settings)
    report.held_back = state.held_back
    if state.problem:
        report.problems.append(state.problem)
    report.notes.append(service_key(settings).describe())
    return report


@dataclass(frozen=True)
class WarehouseState:
    """What `check` says of the warehouse: its newest sync held back (lines), or why it cannot be read."""

    held_back: list[str]
    problem: str | None = None


def _warehouse_state(settings: Settings) -> WarehouseState:
    """Whether the warehouse's newest sync was held back by the circuit breaker (read briefly; a warehouse
    that is busy or not there yet says nothing), or why the file cannot be opened (a sync would fail too)."""
    from .extraction.vanished import held_back
    from .warehouse.files import WarehouseBusyError, WarehouseUnavailableError

    if not settings.is_motherduck and not Path(settings.duckdb_path).exists():
        return WarehouseState([])
    try:
        with open_reader(settings.duckdb_path, wait_seconds=10.0) as con:
            return WarehouseState(held_back(con))
    except WarehouseBusyError:
        busy = "the warehouse is busy (a sync running?): whether its last sync was held back is not known"
        return WarehouseState([busy])
    except WarehouseUnavailableError as exc:
        return WarehouseState([], str(exc))


def service_key(settings: Settings):
    """The service's signing key and where verifiers find its public key (`service_key.ServiceKey`)."""
    from .service_key import ServiceKey

    return ServiceKey.from_paths(settings.bitbucket_signing_key, settings.bitbucket_signing_public_key)


def _admin_api(settings: Settings):
    """The organization's Atlassian Admin API client (`client.admin_api`), when one is configured."""
    from .client.admin_api import AtlassianAdminApi

    if not settings.admin_api_configured:
        return None
    return AtlassianAdminApi.connect(
        settings.bitbucket_admin_org_id,
        settings.bitbucket_admin_api_key.get_secret_value(),
        settings.bitbucket_admin_api_url,
        settings.bitbucket_admin_directory_id,
        requests_per_hour=settings.bitbucket_requests_per_hour,
    )


# ---- provisioning ----


@dataclass(frozen=True)
class Attempt:
    """One row of the provisioning log, as the `provision` command shows it: who, which group, where."""

    request_id: str
    action: str
    outcome: str
    http_status: int | None
    error: str
    backend: str | None
    person: str  # the display name (and nickname) of the user; their id when no snapshot named them
    group: str  # the group's name, else its slug
    workspace: str  # the workspace's name, else its slug
    also_loses: str = ""  # a planned removal: what else leaving the group takes away (revoke_impact.py)

    def line(self) -> str:
        change = {
            "add": f"add {self.person} to {self.group} in {self.workspace}",
            "remove": f"remove {self.person} from {self.group} in {self.workspace}",
            "expire": f"expire {self.person}'s membership of {self.group} in {self.workspace}",
        }.get(self.action, f"{self.action} {self.person} / {self.group} in {self.workspace}")
        return (
            f"  {self.request_id}: {change} -> {self.outcome}"
            + (f" [{self.backend}]" if self.backend and self.outcome != "planned" else "")
            + (f" (HTTP {self.http_status})" if self.http_status else "")
            + (f" {self.error}" if self.error else "")
            + (f"; also loses {self.also_loses}" if self.also_loses else "")
        )


@dataclass
class ProvisioningSummary:
    run_id: str
    dry_run: bool
    outcomes: dict[str, int]
    log: list[Attempt]
    head: str | None = None  # the provisioning log's hash-chain head after the run
    approvals: str = ""  # which approver policy applied, or that none is set
    head_seq: int | None = None  # the head's row
    signed: bool = False  # whether the head is signed with the service's key

    def lines(self) -> list[str]:
        title = ("plan (dry run): " if self.dry_run else "provisioning: ") + ", ".join(
            f"{k} {v}" for k, v in self.outcomes.items()
        )
        from .service_key import UNSIGNED

        signed = "signed with the service's key" if self.signed else UNSIGNED
        trail = (
            f"  log head: {self.head} (row {self.head_seq}; {signed}; `provision --verify-log` checks the "
            "trail up to here)"
            if self.head
            else None
        )
        return [
            title,
            *[attempt.line() for attempt in self.log],
            *([trail] if trail else []),
            f"  {self.approvals}",
        ]


def provisioning_definitions(settings: Settings) -> dg.Definitions:
    """The provisioning and expiry jobs with their resources: no dbt, so dagster-dbt is not even imported."""
    from .defs.access_requests import jobs
    from .defs.resources import with_resources

    return with_resources(settings, jobs.definitions(settings), dbt=False)


def provision(
    settings: Settings, *, dry_run: bool = False, max_changes: int | None = None, expire: bool = False
) -> ProvisioningSummary:
    """Fulfil approved requests (or expire just-in-time grants) through the Dagster job, in-process on the
    deployment's instance (see `_execute`). `max_changes`: this run's cap (default
    BITBUCKET_MAX_CHANGES_PER_RUN)."""
    from .defs.access_requests import jobs
    from .provisioning.approvals import ApproverPolicy

    job, op = (
        (jobs.expire_jit_access, jobs.expire_just_in_time_access)
        if expire
        else (jobs.provision_group_membership, jobs.apply_approved_requests)
    )
    definitions = provisioning_definitions(settings)
    config = {"ops": {op.name: {"config": {"dry_run": dry_run, "max_changes_per_run": max_changes}}}}
    result = _execute(settings, definitions, job.name, config)
    if not result.success:
        raise CommandError(_failure_message(result))
    approvals = ApproverPolicy.load(settings.bitbucket_approver_policy).describe()
    with _connect(settings.duckdb_path, read_only=True) as con:
        return provisioning_summary(con, result.run_id, dry_run, approvals)


def provisioning_summary(con: duckdb.DuckDBPyConnection, run_id: str, dry_run: bool, approvals: str):
    """What one provisioning run did, from the log (the durable record), with people, groups and workspaces
    named as the newest snapshot names them (ids stay in the log)."""
    from .provisioning.names import names_for
    from .reporting.revoke_impact import Removal, describe, removal_losses

    rows = con.execute(
        # A planned or refused change may not have resolved its user yet: the request names them.
        "select l.request_id, l.action, l.outcome, l.http_status, coalesce(l.error, ''), l.backend, "
        "coalesce(l.user_uuid, r.user_id), coalesce(l.workspace_slug, r.workspace_slug), "
        "coalesce(l.group_slug, r.group_slug) from provisioning.provisioning_log l "
        "left join provisioning.access_requests r using (request_id) where l.run_id = ? order by l.seq",
        [run_id],
    ).fetchall()
    names = names_for(con, {r[6] for r in rows if r[6]}, {(r[7], r[8]) for r in rows})
    # A planned removal says what else it takes away: leaving a group loses every resource reached only
    # through it.
    removals = {
        i: Removal(row[7], row[6], row[8])
        for i, row in enumerate(rows)
        if row[2] == "planned" and row[1] in ("remove", "expire") and all(row[6:9])
    }
    losses = removal_losses(con, removals.values())
    log = [
        Attempt(
            *row[:6],
            person=names.person(row[6]),
            group=names.group(row[7], row[8]),
            workspace=names.workspace(row[7]),
            also_loses=describe(losses[removals[i]]) if i in removals else "",
        )
        for i, row in enumerate(rows)
    ]
    head, seq = con.execute(
        "select arg_max(row_hash, seq), max(seq) from provisioning.provisioning_log"
    ).fetchone()
    signed = con.execute("select count(*) from provisioning.log_heads where seq = ?", [seq]).fetchone()[0] > 0
    names_shown = ("planned", "rejected") if dry_run else OUTCOMES
    outcomes = {name: sum(1 for a in log if a.outcome == name) for name in names_shown}
    return ProvisioningSummary(run_id, dry_run, outcomes, log, head, approvals, seq, signed)


def verify_provisioning_log(settings: Settings):
    """Recompute the provisioning log's hash chain, check its signed head with the public key, and compare it
    with the head the deployment's Dagster instance recorded (`provisioning.audit_log.Verification`)."""
    from .provisioning.audit_log import verify_log
    from .provisioning.tables import create_provisioning_tables

    recorded = _recorded_log_heads(settings)
    with open_writer(settings.duckdb_path) as con:
        create_provisioning_tables(con)  # adds the chain columns to a warehouse written before them
        result = verify_log(con, service_key(settings), recorded)
    if not settings.dagster_home:
        result.notes.append(
            "no head recorded outside the warehouse to compare with (DAGSTER_HOME is not set, so runs leave "
            "no record in a Dagster instance): a log cut back in every table at once would not show"
        )
    elif not recorded:
        result.notes.append(
            f"the Dagster instance at {settings.dagster_home} records no provisioning run yet"
        )
    return result


def _recorded_log_heads(settings: Settings):
    """The log head the latest provisioning run recorded in Dagster's event log (DAGSTER_HOME), outside the
    warehouse."""
    from .provisioning.audit_log import RecordedHead

    if not settings.dagster_home:
        return []
    import dagster as dg

    from .defs.access_requests.assets import PROVISIONING_LOG

    with dg.DagsterInstance.from_config(settings.dagster_home) as instance:
        event = instance.get_latest_materialization_event(PROVISIONING_LOG)
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    head = metadata.get("log_head")
    if head is None or not head.value:
        return []
    when = datetime.fromtimestamp(event.timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [RecordedHead(str(head.value), f"Dagster run {event.run_id} ({when})")]


def import_requests(settings: Settings, path: str) -> int:
    """Read and check the file (approvals and signatures, against the snapshot) before taking the writer's
    lock, then insert every row at once."""
    from .provisioning.approvals import ApproverPolicy
    from .provisioning.requests_import import check_requests, read_requests, store_requests

    approvals = ApproverPolicy.load(settings.bitbucket_approver_policy)
    rows = read_requests(path)
    with _snapshot(settings) as con:
        rows = check_requests(rows, path, approvals, settings.protected_groups, con)
    with open_writer(settings.duckdb_path) as con:
        stored = store_requests(con, path, rows)
    publish_fresh(settings)
    return stored


def plan_request_signing(
    settings: Settings, path: str, key: str, approver: str | None, request_ids: tuple[str, ...]
):
    """What `requests sign` will sign (`requests_import.SigningPlan`), as whom: `approver`, else the principal
    the approver policy lists for the key."""
    from .provisioning.approvals import ApproverPolicy
    from .provisioning.requests_import import plan_signing

    if approver is None:
        policy = ApproverPolicy.load(settings.bitbucket_approver_policy)
        if not policy.configured:
            raise CommandError(
                "no approver policy to find the key's principal in (BITBUCKET_APPROVER_POLICY): name "
                "yourself with --approver, as the policy's allowed_signers will"
            )
        approver = policy.principal_of_key(_public_key(key))
        if approver is None:
            raise CommandError(
                f"the key {key} is not in the allowed_signers of the approver policy {policy.source}: ask "
                "for it to be added, or sign with the key that is"
            )
    return plan_signing(path, approver, SystemClock().now(), request_ids)


def sign_requests(plan, key: str, out: str | None = None) -> Path:
    """Sign the planned requests with `key` and write the file (`requests_import.sign_file`)."""
    from .provisioning.requests_import import sign_file

    return _signing(sign_file, plan, key, out)


def _public_key(key: str) -> str:
    """The public half of a key file: the file itself when it is one, else KEY.pub beside it, else derived."""
    from .signing import public_key

    path = Path(key)
    for candidate in (path, path.with_name(path.name + ".pub")):
        if candidate.suffix == ".pub" and candidate.is_file():
            return candidate.read_text(encoding="utf-8").strip()
    return _signing(public_key, path)


def _signing(call, *args):
    """A signing step whose failure (`signing.SignatureError`) is a message for the user."""
    from .signing import SignatureError

    try:
        return call(*args)
    except SignatureError as exc:
        raise CommandError(str(exc)) from None


@contextmanager
def _snapshot(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """The warehouse read-only (waiting while a writer holds it) to check against; None before it exists."""
    if not settings.is_motherduck and not Path(settings.duckdb_path).exists():
        yield None
        return
    with open_reader(settings.duckdb_path) as con:
        yield con


# ---- reviews and evidence ----


def review_export(
    settings: Settings,
    as_of: datetime,
    workspace: str | None,
    fmt: str,
    out: str | None,
    due: datetime | None = None,
    kind: str = "access",
):
    """The population as a new review campaign of `kind` (`access`, `change-control`), due at `due` (default:
    BITBUCKET_REVIEW_DUE_DAYS from now): registered in the warehouse (waiting for the writer lock as
    provisioning does), then written to the file."""
    from .reporting.review import new_campaign, register_campaign, write_review

    now = SystemClock().now()
    due = due or now + timedelta(days=settings.bitbucket_review_due_days)
    if due <= now:
        raise CommandError(f"--due {due:%Y-%m-%d %H:%M} UTC is already past")
    with _report_reader(settings) as con:
        campaign = new_campaign(con, as_of, workspace, due, kind)
    prefix = "access-review" if kind == "access" else f"{kind}-review"
    target = Path(out or f"{prefix}-{as_of:%Y-%m-%d}-{campaign.campaign_id}.{fmt}")
    with open_writer(settings.duckdb_path) as con:
        register_campaign(con, campaign, now)
    publish_fresh(settings)
    write_review(campaign.rows, target, fmt, kind)
    return target, len(campaign.rows), campaign


def review_import(settings: Settings, path: str, signature: str | None = None):
    """Read the file and its signature (default: FILE.sig beside it), check them against the warehouse
    read-only, then record the decisions and requests: the writer's lock is held only while they are
    inserted."""
    from .provisioning.approvals import ApproverPolicy
    from .reporting.review_import import (
        ReviewFile,
        plan_review_import,
        record_review_import,
        signature_beside,
    )

    approvals = ApproverPolicy.load(settings.bitbucket_approver_policy)
    file = ReviewFile.read(Path(path))
    signed = Path(signature).read_text(encoding="utf-8") if signature else signature_beside(Path(path))
    with _snapshot(settings) as con:
        if con is None:
            raise CommandError(f"no warehouse at {settings.duckdb_path}: nothing to import a review into")
        plan = plan_review_import(
            con,
            file,
            signed,
            SystemClock().now(),
            approvals,
            settings.protected_groups,
            settings.bitbucket_review_max_rows,
        )
    with open_writer(settings.duckdb_path) as con:
        result = record_review_import(con, plan, signed)
    publish_fresh(settings)
    return result, approvals.describe()


def sign_review(path: str, key: str) -> Path:
    """Sign a completed review file as its reviewer: FILE.sig beside it."""
    from .reporting.review_import import sign_review as sign

    return _signing(sign, Path(path), key)


def evidence(settings: Settings, start: datetime, end: datetime, out: str, replace: bool = False):
    """Write the pack from the analysts' copy (its manifest signed with the service's key when one is set),
    then record its digests in the warehouse itself (waiting for the writer lock like any writer), so that
    `evidence verify` can tell an altered pack."""
    from .reporting.evidence import build_evidence_pack
    from .reporting.pack_integrity import record_pack

    with _report_reader(settings) as con:
        pack = build_evidence_pack(con, start, end, Path(out), replace=replace, key=service_key(settings))
    with _connect(settings.duckdb_path) as con:
        record_pack(con, pack.directory, pack.manifest, SystemClock().now())
    publish_fresh(settings)
    return pack


def verify_evidence(settings: Settings, directory: str):
    """Check the manifest's signature with the public key, recompute the pack's digests and compare them with
    its manifest and the warehouse's record, and check that the provisioning log still holds the pack's
    head."""
    from .reporting.pack_integrity import verify_pack

    with _connect(settings.duckdb_path, read_only=True) as con:
        return verify_pack(Path(directory), con, service_key(settings))


def _failure_message(result) -> str:
    """The innermost error of the first failed step, as its message alone: what the user can act on."""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    error = failure.step_failure_data.error if failure else None
    while error is not None and error.cause is not None:
        error = error.cause
    if error is None or not error.message.strip():
        return "the run failed"
    return error_text(error.message, error.cls_name)


def error_text(message: str, cls_name: str | None) -> str:
    """Dagster's serialized error without its `package.module.Class: ` prefix (a class path says nothing to
    whoever runs the command), on one line."""
    text = " ".join(message.split())
    head, sep, rest = text.partition(": ")
    if sep and cls_name and (head == cls_name or head.endswith("." + cls_name)):
        return rest
    return text
