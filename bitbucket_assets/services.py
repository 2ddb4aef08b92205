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
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from .clock import SystemClock
from .extraction.refresh import describe_refresh
from .settings import Settings
from .warehouse.files import open_reader, open_writer, report_database

MART_COUNTS = ("fct_grants", "fct_effective_access", "fct_grant_history", "fct_access_changes", "dim_users")
OUTCOMES = ("applied", "no_change", "rejected", "failed", "expired")


class CommandError(RuntimeError):
    """A command failed for a reason the user can act on; the message says which."""


@contextmanager
def _connect(database: str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse (or its read copy), waiting while a sync or a provisioning run holds the file."""
    with open_reader(database) if read_only else open_writer(database) as con:
        yield con


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

    def lines(self) -> list[str]:
        total = self.checks_passed + len(self.checks_failed)
        failed = f"; FAILED: {', '.join(self.checks_failed)}" if self.checks_failed else ""
        resumed = " (resumed from its checkpoints)" if self.resumed_from else ""
        return [
            f"sync {self.sync_id} complete{resumed}: workspaces {', '.join(self.workspaces)}",
            *[f"  skipped workspace {slug}: {reason}" for slug, reason in self.skipped.items()],
            *[
                f"  skipped entries in {family}: {n} (lacking their identity; listed in raw.anomalies)"
                for family, n in self.anomalies.items()
            ],
            *[f"  {slug}: {describe_refresh(refresh)}" for slug, refresh in self.refresh.items()],
            f"  API calls: {self.api_calls}, retries: {self.retries}, 429s: {self.rate_limited}",
            *[f"  raw/{table}: {rows} rows" for table, rows in self.raw_rows.items()],
            *[f"  marts/{mart}: {rows} rows" for mart, rows in self.mart_rows.items()],
            f"  checks: {self.checks_passed} of {total} passed{failed}",
        ]


def sync(settings: Settings, full: bool = False) -> SyncSummary:
    """One snapshot and the dbt build over it: the `bitbucket_sync` job, run in-process on this deployment's
    Dagster instance (DAGSTER_HOME) or a throwaway one. `full`: read every repository's permission lists
    (extraction/refresh.py)."""
    from .defs import sync_job
    from .defs.resources import with_resources

    definitions = with_resources(settings, sync_job.definitions())
    run_config = {"ops": {"bitbucket_raw_snapshot": {"config": {"full": full}}}}
    result = _execute(settings, definitions, sync_job.SYNC_JOB, run_config)
    if not result.success:
        raise CommandError(_failure_message(result))
    # The sync's own id: a resumed sync keeps the id of the run that started it.
    [snapshot] = [
        m
        for m in result.asset_materializations_for_node("bitbucket_raw_snapshot")
        if m.asset_key.path[-1] == "syncs"
    ]
    sync_id = snapshot.metadata["sync_id"].value
    checks = result.get_asset_check_evaluations()
    with _connect(settings.duckdb_path, read_only=True) as con:
        workspaces, counts, calls, retries, limited, skipped, anomalies, refresh = con.execute(
            "select workspaces, entity_counts, api_calls, retries, rate_limited, skipped_workspaces, "
            "anomalies, refresh from raw.syncs where sync_id = ?",
            [sync_id],
        ).fetchone()
        marts = {m: con.execute(f"select count(*) from marts.{m}").fetchone()[0] for m in MART_COUNTS}
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
        resumed_from=None if sync_id == result.run_id else sync_id,
    )


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
    from .client import BitbucketClient, credentials_from_settings
    from .connection_check import check_connection
    from .provisioning.approvals import ApproverPolicy

    client = BitbucketClient(
        credentials_from_settings(settings),
        settings.bitbucket_api_url,
        requests_per_hour=settings.bitbucket_requests_per_hour,
    )
    admin_api = _admin_api(settings)
    try:
        report = check_connection(client, admin_api, settings.admin_managed_workspaces)
    finally:
        client.close()
        if admin_api is not None:
            admin_api.client.close()
    report.notes.append(ApproverPolicy.load(settings.bitbucket_approver_policy).describe())
    report.notes.append(service_key(settings).describe())
    return report


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


@dataclass
class ProvisioningSummary:
    run_id: str
    dry_run: bool
    outcomes: dict[str, int]
    # request, action, outcome, HTTP status, error, API
    log: list[tuple[str, str, str, int | None, str, str | None]]
    head: str | None = None  # the provisioning log's hash-chain head after the run
    approvals: str = ""  # which approver policy applied, or that none is set
    head_seq: int | None = None  # the head's row
    signed: bool = False  # whether the head is signed with the service's key

    def lines(self) -> list[str]:
        title = ("plan (dry run): " if self.dry_run else "provisioning: ") + ", ".join(
            f"{k} {v}" for k, v in self.outcomes.items()
        )
        attempts = [
            f"  {request_id}: {action} -> {outcome}"
            + (f" [{backend}]" if backend and outcome != "planned" else "")
            + (f" (HTTP {status})" if status else "")
            + (f" {err}" if err else "")
            for request_id, action, outcome, status, err, backend in self.log
        ]
        from .service_key import UNSIGNED

        signed = "signed with the service's key" if self.signed else UNSIGNED
        trail = (
            f"  log head: {self.head} (row {self.head_seq}; {signed}; `provision --verify-log` checks the "
            "trail up to here)"
            if self.head
            else None
        )
        return [title, *attempts, *([trail] if trail else []), f"  {self.approvals}"]


def provision(
    settings: Settings, *, dry_run: bool = False, max_changes: int | None = None, expire: bool = False
) -> ProvisioningSummary:
    """Fulfil approved requests (or expire just-in-time grants) through the Dagster job, in-process on the
    deployment's instance (see `_execute`). `max_changes`: this run's cap (default
    BITBUCKET_MAX_CHANGES_PER_RUN)."""
    from .defs.access_requests import jobs
    from .defs.resources import with_resources
    from .provisioning.approvals import ApproverPolicy

    job, op = (
        (jobs.expire_jit_access, jobs.expire_just_in_time_access)
        if expire
        else (jobs.provision_group_membership, jobs.apply_approved_requests)
    )
    definitions = with_resources(settings, jobs.definitions(settings))
    config = {"ops": {op.name: {"config": {"dry_run": dry_run, "max_changes_per_run": max_changes}}}}
    result = _execute(settings, definitions, job.name, config)
    if not result.success:
        raise CommandError(_failure_message(result))
    approvals = ApproverPolicy.load(settings.bitbucket_approver_policy).describe()
    with _connect(settings.duckdb_path, read_only=True) as con:
        return provisioning_summary(con, result.run_id, dry_run, approvals)


def provisioning_summary(con: duckdb.DuckDBPyConnection, run_id: str, dry_run: bool, approvals: str):
    """What one provisioning run did, from the log (the durable record)."""
    log = con.execute(
        "select request_id, action, outcome, http_status, coalesce(error, ''), backend "
        "from provisioning.provisioning_log where run_id = ? order by seq",
        [run_id],
    ).fetchall()
    head, seq = con.execute(
        "select arg_max(row_hash, seq), max(seq) from provisioning.provisioning_log"
    ).fetchone()
    signed = con.execute("select count(*) from provisioning.log_heads where seq = ?", [seq]).fetchone()[0] > 0
    names = ("planned", "rejected") if dry_run else OUTCOMES
    outcomes = {name: sum(1 for row in log if row[2] == name) for name in names}
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
    from .provisioning.approvals import ApproverPolicy
    from .provisioning.requests_import import import_requests as import_file

    approvals = ApproverPolicy.load(settings.bitbucket_approver_policy)
    with open_writer(settings.duckdb_path) as con:
        return import_file(con, path, approvals, settings.protected_groups)


# ---- reviews and evidence ----


def review_export(settings: Settings, as_of: datetime, workspace: str | None, fmt: str, out: str | None):
    """The population as a new review campaign: registered in the warehouse (waiting for the writer lock as
    provisioning does), then written to the file."""
    from .reporting.review import new_campaign, register_campaign, write_review

    with _connect(report_database(settings), read_only=True) as con:
        campaign = new_campaign(con, as_of, workspace)
    target = Path(out or f"access-review-{as_of:%Y-%m-%d}-{campaign.campaign_id}.{fmt}")
    with open_writer(settings.duckdb_path) as con:
        register_campaign(con, campaign, SystemClock().now())
    write_review(campaign.rows, target, fmt)
    return target, len(campaign.rows), campaign.campaign_id


def review_import(settings: Settings, path: str):
    from .provisioning.approvals import ApproverPolicy
    from .reporting.review import import_review

    approvals = ApproverPolicy.load(settings.bitbucket_approver_policy)
    with open_writer(settings.duckdb_path) as con:
        return import_review(con, Path(path), approvals=approvals, protected=settings.protected_groups)


def evidence(settings: Settings, start: datetime, end: datetime, out: str, replace: bool = False):
    """Write the pack from the analysts' copy (its manifest signed with the service's key when one is set),
    then record its digests in the warehouse itself (waiting for the writer lock like any writer), so that
    `evidence verify` can tell an altered pack."""
    from .reporting.evidence import build_evidence_pack
    from .reporting.pack_integrity import record_pack

    with _connect(report_database(settings), read_only=True) as con:
        pack = build_evidence_pack(con, start, end, Path(out), replace=replace, key=service_key(settings))
    with _connect(settings.duckdb_path) as con:
        record_pack(con, pack.directory, pack.manifest, SystemClock().now())
    return pack


def verify_evidence(settings: Settings, directory: str):
    """Check the manifest's signature with the public key, recompute the pack's digests and compare them with
    its manifest and the warehouse's record, and check that the provisioning log still holds the pack's
    head."""
    from .reporting.pack_integrity import verify_pack

    with _connect(settings.duckdb_path, read_only=True) as con:
        return verify_pack(Path(directory), con, service_key(settings))


def _failure_message(result) -> str:
    """The innermost error of the first failed step: what the user can act on."""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    error = failure.step_failure_data.error if failure else None
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1] if error and error.message.strip() else "the run failed"
