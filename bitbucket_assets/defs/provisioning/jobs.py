"""Ops and jobs that fulfil approved requests and expire just-in-time access."""

import hashlib

import dagster as dg
import duckdb as duckdb_lib
from dagster_duckdb import DuckDBResource

from ...provisioning.approvals import ApproverPolicy
from ...provisioning.engine import Provisioner, ProvisioningPolicy
from ...settings import Settings
from ...warehouse.files import WRITER_POOL
from ..extraction.resources import BitbucketResource


class ProvisioningConfig(dg.Config):
    dry_run: bool = False  # show and log the plan; call nothing
    max_changes_per_run: int = 50
    max_approval_age_days: float = 30.0
    protected_groups: list[str] = ["administrators"]
    approver_policy: str | None = None  # BITBUCKET_APPROVER_POLICY: set by the definitions' jobs


def _policy(config: ProvisioningConfig) -> ProvisioningPolicy:
    return ProvisioningPolicy(config.max_approval_age_days, tuple(config.protected_groups), config.max_changes_per_run)


def _provisioner(context, config: ProvisioningConfig, bitbucket: BitbucketResource, con) -> Provisioner:
    approvals = ApproverPolicy.load(config.approver_policy)
    (context.log.info if approvals.configured else context.log.warning)(approvals.describe())
    admin_api = bitbucket.get_admin_api()  # makes no call until a workspace needs it
    context.log.info(
        f"Atlassian Admin API: organization {admin_api.org_id}, for workspaces administered from admin.atlassian.com"
        if admin_api
        else "Atlassian Admin API not configured: every workspace's groups are changed through the 1.0 groups API"
    )
    return Provisioner(
        None if config.dry_run else bitbucket.get_client(), con, _policy(config), run_id=context.run_id,
        approvals=approvals, admin_api=admin_api, admin_managed=bitbucket.admin_managed(),
    )  # fmt: skip


def _summary(context: dg.OpExecutionContext, provisioner: Provisioner, label: str) -> dg.Output:
    report = provisioner.report
    counts = {o: report.count(o) for o in ("applied", "no_change", "rejected", "failed", "expired")}
    context.log.info(
        f"{label}: {counts}; planned {len(report.planned)}; reconciled after a crash {report.reconciled}; "
        f"provisioning log head {provisioner.head or '(no row written)'}"
    )
    # The chain head, kept in Dagster's event log, outside the warehouse: a trail cut short shows against it.
    metadata = {**counts, "planned": len(report.planned), "reconciled": len(report.reconciled)}
    return dg.Output(None, metadata={**metadata, "log_head": provisioner.head or ""})


@dg.op(
    pool=WRITER_POOL,
    description="Validate approved pending requests and apply them through the 1.0 groups API, or the Atlassian "
    "Admin API for workspaces administered from admin.atlassian.com.",
)
def apply_approved_requests(
    context: dg.OpExecutionContext, config: ProvisioningConfig, bitbucket: BitbucketResource, duckdb: DuckDBResource
):
    with duckdb.get_connection() as con:
        provisioner = _provisioner(context, config, bitbucket, con)
        report = provisioner.provision(dry_run=config.dry_run)
    for request in report.planned:
        context.log.info(
            f"plan: {request['action']} {request['user_id']} in {request['workspace_slug']}/{request['group_slug']} "
            f"{request['backend']} (request {request['request_id']}, approved by {request['approved_by']})"
        )
    return _summary(context, provisioner, "dry run" if config.dry_run else "provisioning")


@dg.op(pool=WRITER_POOL, description="Remove just-in-time memberships whose expires_at has passed.")
def expire_just_in_time_access(
    context: dg.OpExecutionContext, config: ProvisioningConfig, bitbucket: BitbucketResource, duckdb: DuckDBResource
):
    with duckdb.get_connection() as con:
        provisioner = _provisioner(context, config.model_copy(update={"dry_run": False}), bitbucket, con)
        provisioner.expire()
    return _summary(context, provisioner, "expiry")


def _provisioning_job(config: dict | None = None) -> dg.JobDefinition:
    @dg.job(config=config, description="Fulfil approved group-membership requests from provisioning.access_requests.")
    def provision_group_membership():
        apply_approved_requests()

    return provision_group_membership


def _expiry_job(config: dict | None = None) -> dg.JobDefinition:
    @dg.job(config=config, description="Undo just-in-time group memberships at expiry.")
    def expire_jit_access():
        expire_just_in_time_access()

    return expire_jit_access


# Without deployment settings (tests, direct use): no approver policy unless run config names one.
provision_group_membership = _provisioning_job()
expire_jit_access = _expiry_job()


def build_provisioning_jobs(settings: Settings) -> list[dg.JobDefinition]:
    """The two jobs with this deployment's approver policy as their default configuration."""
    policy = {"approver_policy": settings.bitbucket_approver_policy}
    return [
        _provisioning_job({"ops": {apply_approved_requests.name: {"config": policy}}}),
        _expiry_job({"ops": {expire_just_in_time_access.name: {"config": policy}}}),
    ]


def build_jit_expiry_schedule(settings: Settings) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="jit_expiry_every_15_minutes",
        job_name=expire_jit_access.name,
        cron_schedule=settings.bitbucket_jit_expiry_cron,
        execution_timezone=settings.bitbucket_sync_timezone,
    )


def approved_pending(database: str) -> list[str]:
    """Ids of approved requests waiting for the job, read with a brief read-only connection."""
    with duckdb_lib.connect(database, read_only=True) as con:
        rows = con.execute(
            "select request_id from provisioning.access_requests where status = 'pending' and approved_by is not null "
            "order by request_id"
        ).fetchall()
    return [r[0] for r in rows]


@dg.sensor(job_name="provision_group_membership", minimum_interval_seconds=60)
def approved_requests_sensor(context: dg.SensorEvaluationContext, duckdb: DuckDBResource):
    """Starts the job when approved requests wait. It holds no connection while idle and opens the warehouse
    read-only for one query; if a writer holds the file at that moment, it tries again at the next tick."""
    try:
        waiting = approved_pending(duckdb.database)
    except (duckdb_lib.IOException, duckdb_lib.CatalogException) as exc:
        return dg.SkipReason(f"warehouse busy or not initialised: {type(exc).__name__}")
    if not waiting:
        return dg.SkipReason("no approved request is waiting")
    # One run per set of waiting requests: a request that stays pending (failed run) does not retrigger forever.
    run_key = "approved-" + hashlib.sha1("|".join(waiting).encode()).hexdigest()[:16]
    return dg.RunRequest(run_key=run_key, tags={"approved_pending": str(len(waiting))})
