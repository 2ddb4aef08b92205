"""Ops and jobs that fulfil approved requests and expire just-in-time access, their sensor and schedule."""

import hashlib

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ...provisioning.engine import Provisioner
from ...settings import Settings
from ...warehouse.files import WRITER_POOL
from ...warehouse.provisioning_copy import publish_provisioning_copy
from ..resources import BitbucketResource, ProvisioningResource
from .assets import PROVISIONING_LOG, provisioning_log

OUTCOMES = ("applied", "no_change", "rejected", "failed", "expired")


class ProvisioningConfig(dg.Config):
    """Per-run switches; everything else is the deployment's (ProvisioningResource, from the settings)."""

    dry_run: bool = Field(default=False, description="Show and log the plan; call nothing, change nothing.")
    max_changes_per_run: int | None = Field(
        default=None,
        description="Abort before any call above this many changes; default BITBUCKET_MAX_CHANGES_PER_RUN.",
    )


def _provisioner(
    context: dg.OpExecutionContext,
    config: ProvisioningConfig,
    bitbucket: BitbucketResource,
    provisioning: ProvisioningResource,
    con,
    dry_run: bool,
) -> Provisioner:
    approvals = provisioning.approvals()
    (context.log.info if approvals.configured else context.log.warning)(approvals.describe())
    signing = provisioning.service_key()
    (context.log.info if signing.signs else context.log.warning)(signing.describe())
    admin_api = bitbucket.get_admin_api()  # makes no call until a workspace needs it
    if admin_api:
        context.log.info(
            f"Atlassian Admin API: organization {admin_api.org_id}, for workspaces administered from "
            "admin.atlassian.com"
        )
    else:
        context.log.info(
            "Atlassian Admin API not configured: every workspace's groups are changed through the 1.0 "
            "groups API"
        )
    return Provisioner(
        None if dry_run else bitbucket.get_client(),
        con,
        provisioning.policy(config.max_changes_per_run),
        run_id=context.run_id,
        approvals=approvals,
        admin_api=admin_api,
        admin_managed=bitbucket.admin_managed(),
        signing=signing,
    )


def _publish(context: dg.OpExecutionContext, database: str) -> None:
    """The provisioning copy readers attach (warehouse/provisioning_copy.py), so that the dashboard and the
    next evidence pack show this run at once. The run's changes are made and logged already: a copy that
    cannot be written is a warning, and the next run or sync publishes it."""
    try:
        publish_provisioning_copy(database)
    except (OSError, RuntimeError, duckdb_lib.Error) as exc:
        context.log.warning(f"provisioning copy not published ({exc}): readers see it after the next run")


def _summary(context: dg.OpExecutionContext, provisioner: Provisioner, label: str) -> dg.Output:
    report = provisioner.report
    counts = {outcome: report.count(outcome) for outcome in OUTCOMES}
    head = provisioner.head or ""
    context.log.info(
        f"{label}: {counts}; planned {len(report.planned)}; reconciled after a crash {report.reconciled}; "
        f"provisioning log head {head or '(no row written)'}"
    )
    metadata = {
        **counts,
        "planned": len(report.planned),
        "reconciled": len(report.reconciled),
        "log_head": head,
        "log_head_signed": provisioner.signing.signs,
    }
    if head:
        # The chain head, kept in Dagster's event log, outside the warehouse: `provision --verify-log` finds
        # it there (DAGSTER_HOME), so a trail cut short or rewritten shows against it.
        context.log_event(dg.AssetMaterialization(PROVISIONING_LOG, metadata=metadata))
    return dg.Output(None, metadata=metadata)


@dg.op(
    pool=WRITER_POOL,
    description="Validate approved pending requests and apply them through the 1.0 groups API, or the "
    "Atlassian Admin API for workspaces administered from admin.atlassian.com.",
)
def apply_approved_requests(
    context: dg.OpExecutionContext,
    config: ProvisioningConfig,
    bitbucket: BitbucketResource,
    provisioning: ProvisioningResource,
    duckdb: DuckDBResource,
):
    with duckdb.get_connection() as con:
        provisioner = _provisioner(context, config, bitbucket, provisioning, con, config.dry_run)
        report = provisioner.provision(dry_run=config.dry_run)
    _publish(context, duckdb.database)
    for request in report.planned:
        context.log.info(
            f"plan: {request['action']} {request['user_id']} in "
            f"{request['workspace_slug']}/{request['group_slug']} {request['backend']} "
            f"(request {request['request_id']}, approved by {request['approved_by']})"
        )
    return _summary(context, provisioner, "dry run" if config.dry_run else "provisioning")


@dg.op(pool=WRITER_POOL, description="Remove just-in-time memberships whose expires_at has passed.")
def expire_just_in_time_access(
    context: dg.OpExecutionContext,
    config: ProvisioningConfig,
    bitbucket: BitbucketResource,
    provisioning: ProvisioningResource,
    duckdb: DuckDBResource,
):
    with duckdb.get_connection() as con:
        provisioner = _provisioner(context, config, bitbucket, provisioning, con, dry_run=False)
        provisioner.expire()
    _publish(context, duckdb.database)
    return _summary(context, provisioner, "expiry")


# One op each: run in the run's own process rather than a child of it.
@dg.job(
    description="Fulfil approved group-membership requests from provisioning.access_requests.",
    executor_def=dg.in_process_executor,
)
def provision_group_membership():
    apply_approved_requests()


@dg.job(description="Undo just-in-time group memberships at expiry.", executor_def=dg.in_process_executor)
def expire_jit_access():
    expire_just_in_time_access()


def approved_pending(database: str) -> list[str]:
    """Ids of approved requests waiting for the job (as the job selects them: an approver or an approval time,
    such as a signed row inserted with SQL), read with a brief read-only connection."""
    with duckdb_lib.connect(database, read_only=True) as con:
        rows = con.execute(
            "select request_id from provisioning.access_requests "
            "where status = 'pending' and (approved_by is not null or approved_at is not null) "
            "order by request_id"
        ).fetchall()
    return [r[0] for r in rows]


@dg.sensor(
    job=provision_group_membership,
    minimum_interval_seconds=60,
    description="Starts provision_group_membership when approved requests wait in "
    "provisioning.access_requests (checked every minute, read-only).",
)
def approved_requests_sensor(context: dg.SensorEvaluationContext, duckdb: DuckDBResource):
    """Starts the job when approved requests wait. It holds no connection while idle and opens the warehouse
    read-only for one query; if a writer holds the file at that moment, it tries again at the next tick."""
    try:
        waiting = approved_pending(duckdb.database)
    except (duckdb_lib.IOException, duckdb_lib.CatalogException) as exc:
        return dg.SkipReason(f"warehouse busy or not initialised: {type(exc).__name__}")
    if not waiting:
        return dg.SkipReason("no approved request is waiting")
    # One run per set of waiting requests: a request that stays pending (failed run) does not retrigger it.
    run_key = "approved-" + hashlib.sha1("|".join(waiting).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=run_key, tags={"approved_pending": str(len(waiting))})


def jit_expiry_schedule(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="jit_expiry_every_15_minutes",
        job=expire_jit_access,
        cron_schedule=settings.bitbucket_jit_expiry_cron,
        execution_timezone=settings.bitbucket_sync_timezone,
        description="Removes just-in-time memberships whose expiry has passed.",
    )


def definitions(settings: Settings) -> dg.Definitions:
    """The provisioning log, the two jobs, the sensor and the expiry schedule (the sync job creates the
    provisioning tables, which its dbt build reads: `sync_job.definitions`)."""
    return dg.Definitions(
        assets=[provisioning_log],
        jobs=[provision_group_membership, expire_jit_access],
        sensors=[approved_requests_sensor],
        schedules=[jit_expiry_schedule(settings)],
    )
