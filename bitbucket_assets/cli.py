"""The `bitbucket-access` command."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import duckdb

from .simulator import Faults, RateLimit, Simulator, SimulatorServer, load_organisation
from .simulator.app import SIM_API_TOKEN


@click.group()
def main() -> None:
    """Bitbucket Cloud access warehouse: extract, model, review and provision access."""


@main.command()
def sync() -> None:
    """Extract a snapshot from BITBUCKET_API_URL into DUCKDB_PATH (runs the Dagster job in-process)."""
    import dagster as dg

    from .definitions import build_definitions

    job = build_definitions().resolve_job_def("bitbucket_sync")
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    if not result.success:
        raise click.ClickException(_failure_message(result))
    metadata = {}
    for event in result.get_asset_materialization_events():
        key = event.asset_key.to_user_string()
        metadata[key] = {k: v.value for k, v in event.materialization.metadata.items()}
    manifest = metadata["raw/syncs"]
    click.echo(f"sync {manifest['sync_id']} complete: workspaces {manifest['workspaces']}")
    click.echo(
        f"  API calls: {manifest['api_calls']}, retries: {manifest['retries']}, 429s: {manifest['rate_limited']}"
    )
    for key, meta in sorted(metadata.items()):
        if "dagster/row_count" in meta:
            click.echo(f"  {key}: {meta['dagster/row_count']} rows")
    _print_mart_counts()
    checks = result.get_asset_check_evaluations()
    failed = [c.check_name for c in checks if not c.passed]
    click.echo(
        f"  checks: {len(checks) - len(failed)} of {len(checks)} passed"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )


@main.command()
def check() -> None:
    """Test the connection: identity, credential kind, workspaces, admin rights, missing scopes."""
    from .client import BitbucketError
    from .connection_check import check_connection
    from .defs.extraction.resources import bitbucket_resource_from_env

    try:
        resource = bitbucket_resource_from_env().process_config_and_initialize()  # resolves the EnvVars
        report = check_connection(resource.get_client())
    except BitbucketError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.lines():
        click.echo(line)
    if not report.can_sync:
        sys.exit(1)


@main.group()
def requests() -> None:
    """Group-membership requests (provisioning.access_requests)."""


@requests.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_requests_command(path: str) -> None:
    """Import requests from a CSV or JSON Lines file: every row valid, or nothing imported."""
    import duckdb

    from .defs.extraction.resources import duckdb_path
    from .provisioning.requests_import import RequestImportError, import_requests

    try:
        with duckdb.connect(duckdb_path()) as con:
            count = import_requests(con, path)
    except RequestImportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"imported {count} request(s) into provisioning.access_requests")


@main.command()
@click.option("--dry-run", is_flag=True, help="Show and log the plan; call nothing, change nothing.")
@click.option("--max-changes", default=50, show_default=True, help="Abort before any call above this many changes.")
@click.option("--expire", is_flag=True, help="Run the just-in-time expiry instead of new requests.")
def provision(dry_run: bool, max_changes: int, expire: bool) -> None:
    """Fulfil approved group-membership requests (runs the Dagster job in-process)."""
    import dagster as dg

    from .definitions import build_definitions

    name = "expire_jit_access" if expire else "provision_group_membership"
    op = "expire_just_in_time_access" if expire else "apply_approved_requests"
    job = build_definitions().resolve_job_def(name)
    config = {"ops": {op: {"config": {"dry_run": dry_run, "max_changes_per_run": max_changes}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
        if not result.success:
            raise click.ClickException(_failure_message(result))
        events = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        metadata = {k: v.value for k, v in events[0].event_specific_data.metadata.items()} if events else {}
    click.echo(
        ("plan (dry run): " if dry_run else "provisioning: ") + ", ".join(f"{k} {v}" for k, v in metadata.items())
    )
    _print_provisioning_log(result.run_id)


def _print_provisioning_log(run_id: str) -> None:
    import duckdb

    from .defs.extraction.resources import duckdb_path

    with duckdb.connect(duckdb_path(), read_only=True) as con:
        rows = con.execute(
            "select request_id, action, outcome, http_status, coalesce(error, '') from provisioning.provisioning_log "
            "where run_id = ? order by attempted_at",
            [run_id],
        ).fetchall()
    for request_id, action, outcome, status, error in rows:
        click.echo(
            f"  {request_id}: {action} -> {outcome}"
            + (f" (HTTP {status})" if status else "")
            + (f" {error}" if error else "")
        )


def _failure_message(result) -> str:
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    error = failure.step_failure_data.error if failure else None
    while error is not None and error.cause is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1] if error and error.message.strip() else "the run failed"


def _reader_path() -> str:
    """The analysts' read copy when there is one (never blocks a sync), else the warehouse itself."""
    from .defs.extraction.resources import duckdb_path
    from .defs.warehouse.read_copy import read_copy_path

    path = duckdb_path()
    copy = read_copy_path(path)
    return str(copy) if not path.startswith("md:") and copy.exists() else path


def _timestamp(value: str):
    from datetime import UTC, datetime, time

    parsed = datetime.fromisoformat(value)
    if len(value) == 10:  # a date means the end of that day
        parsed = datetime.combine(parsed.date(), time.max)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@main.group()
def review() -> None:
    """User access reviews: export the population for reviewers, import their decisions."""


@review.command("export")
@click.option("--as-of", "as_of", required=True, help="Date or timestamp (UTC) the population is taken at.")
@click.option("--workspace", default=None, help="Only this workspace.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="xlsx", show_default=True)
@click.option("--out", "out", default=None, help="Output file (default: access-review-<date>.<format>).")
def review_export(as_of: str, workspace: str | None, fmt: str, out: str | None) -> None:
    """One row per (user, resource, permission) with every grant path and reviewer/decision columns."""
    from pathlib import Path

    import duckdb

    from .reporting.review import export_rows, write_review

    when = _timestamp(as_of)
    with duckdb.connect(_reader_path(), read_only=True) as con:
        rows = export_rows(con, when, workspace)
    target = Path(out or f"access-review-{when:%Y-%m-%d}.{fmt}")
    write_review(rows, target, fmt)
    click.echo(f"wrote {len(rows)} review rows to {target}")


@review.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def review_import(path: str) -> None:
    """Turn `revoke` decisions into approved `remove` requests for the provisioning job."""
    from pathlib import Path

    import duckdb

    from .defs.extraction.resources import duckdb_path
    from .reporting.review import ReviewImportError, import_review

    try:
        with duckdb.connect(duckdb_path()) as con:
            result = import_review(con, Path(path))
    except ReviewImportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{len(result.requests)} remove request(s) created; {result.kept} access(es) kept")
    for line in result.manual:
        click.echo(f"  manual: {line}")
    click.echo("Next: `bitbucket-access provision --dry-run`, then `bitbucket-access provision`.")


@main.command()
@click.option("--from", "start", required=True, help="Start date or timestamp (UTC).")
@click.option("--to", "end", required=True, help="End date or timestamp (UTC).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Directory to write.")
def evidence(start: str, end: str, out: str) -> None:
    """Write the evidence pack: evidence.html plus the CSVs behind it."""
    from pathlib import Path

    import duckdb

    from .reporting.evidence import build_evidence_pack

    with duckdb.connect(_reader_path(), read_only=True) as con:
        pack = build_evidence_pack(con, _timestamp(start), _timestamp(end), Path(out))
    click.echo(f"evidence pack: {pack.report}")
    for key, value in pack.metrics.items():
        click.echo(f"  {key}: {value}")


@main.command()
@click.option("--port", default=8501, show_default=True)
def dashboard(port: int) -> None:
    """Serve the audit dashboard (Streamlit) over the analysts' read copy of the warehouse."""
    import subprocess
    from pathlib import Path

    app = Path(__file__).parent / "dashboard" / "app.py"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
    ]
    click.echo(f"dashboard on http://127.0.0.1:{port}")
    sys.exit(subprocess.call(command))


@main.command()
@click.option("--port", default=7990, show_default=True, help="Loopback port to listen on (0: any free port).")
@click.option("--org", "org_name", default="demo", show_default=True, help="tiny, demo, large or a YAML/JSON file.")
@click.option("--seed", default=7, show_default=True, help="Seed of the generated organisation and of faults.")
@click.option(
    "--rate-limit", default="1000/3600", show_default=True, help="N/SECONDS per credential; 'off' to disable."
)
@click.option("--retry-after/--no-retry-after", default=False, help="Send Retry-After on 429 (Bitbucket does not).")
@click.option("--faults", "faults_json", default="", help="JSON fault settings, e.g. '{\"error_rate\": 0.05}'.")
def simulator(port: int, org_name: str, seed: int, rate_limit: str, retry_after: bool, faults_json: str) -> None:
    """Serve a simulated Bitbucket Cloud on 127.0.0.1."""
    org = load_organisation(org_name, seed=seed)
    limit = None if rate_limit == "off" else RateLimit.parse(rate_limit)
    if limit is not None:
        limit.retry_after = retry_after
    faults = Faults(seed=seed, **(json.loads(faults_json) if faults_json else {}))
    server = SimulatorServer(Simulator(org, rate_limit=limit, faults=faults), port=port, log_level="info")
    operator = org.users[org.operator_uuid] if org.operator_uuid else None
    click.echo(f"Simulated Bitbucket Cloud ({org.name}: {_counts(org.counts())}) on {server.url}")
    if operator is not None:
        click.echo(f"  BITBUCKET_API_URL={server.url}")
        click.echo(f"  BITBUCKET_EMAIL={operator.email}")
        click.echo(f"  BITBUCKET_API_TOKEN={SIM_API_TOKEN}   (a simulator-only token)")
    server.serve_forever()


@main.command()
@click.option("--org", "org_name", default="demo", show_default=True)
@click.option(
    "--days",
    default=3,
    show_default=True,
    help="Simulated days: one sync per day, the organisation evolving between.",
)
def demo(org_name: str, days: int) -> None:
    """Run the pipeline end to end against the built-in simulator."""
    import os

    # Today's date as the company's clock, so "last accessed" and dormancy read naturally in the demo.
    org = load_organisation(org_name, now=datetime.now(UTC).replace(microsecond=0))
    with SimulatorServer(Simulator(org)) as server:
        operator = org.users[org.operator_uuid]
        os.environ.update(
            {
                "BITBUCKET_API_URL": server.url,
                "BITBUCKET_EMAIL": operator.email,
                "BITBUCKET_API_TOKEN": SIM_API_TOKEN,
                "BITBUCKET_REQUESTS_PER_HOUR": "1000000",  # the demo simulator has no rate limit
                "DUCKDB_PATH": os.environ.get("DUCKDB_PATH") or "data/demo.duckdb",
            }
        )
        click.echo(f"Simulated Bitbucket Cloud ({org.name}: {_counts(org.counts())}) on {server.url}")
        context = click.get_current_context()
        started = datetime.now(UTC)
        for day in range(days):
            if day:
                changes = server.simulator.advance(days=1, churn=0.02)
                click.echo(f"-- {org.now:%Y-%m-%d}: " + ", ".join(f"{v} {k}" for k, v in changes.items()))
            context.invoke(sync)
            if day == 0:
                click.echo("-- two approved requests (one just-in-time) go through the provisioning job")
                _demo_requests(org)
                context.invoke(provision, dry_run=False, max_changes=50, expire=False)
        click.echo(f"{len(server.simulator.request_log)} API calls answered by the simulator.")
    from .defs.warehouse.read_copy import read_copy_path
    from .reporting.evidence import build_evidence_pack

    database = os.environ["DUCKDB_PATH"]
    evidence_dir = Path(database).with_name(Path(database).stem + "-evidence")
    with duckdb.connect(str(read_copy_path(database)), read_only=True) as con:
        pack = build_evidence_pack(con, started - timedelta(days=1), datetime.now(UTC), evidence_dir)
    click.echo("")
    click.echo(f"Warehouse:     {database} (written by the pipeline only)")
    click.echo(f"Analysts open: {read_copy_path(database)} (marts in schema `marts`; questions in the README)")
    click.echo(f"Evidence pack: {pack.report}")
    click.echo(f"Dashboard:     DUCKDB_PATH={database} .venv/bin/bitbucket-access dashboard   -> http://127.0.0.1:8501")
    click.echo("Dagster UI:    .venv/bin/bitbucket-access simulator --org demo   (in one shell), then")
    click.echo("               cp .env.example .env; set -a; . ./.env; set +a;")
    click.echo("               DAGSTER_HOME=$PWD/dagster_home .venv/bin/dagster dev   -> http://127.0.0.1:3000")


def _demo_requests(org) -> None:
    """Two approved requests on the demo organisation: a just-in-time add and a removal."""
    from .defs.extraction.resources import duckdb_path
    from .provisioning.tables import create_provisioning_tables

    ws = next(iter(org.workspaces.values()))
    group = next(g for g in ws.groups.values() if g.slug not in ("administrators", "contractors") and g.members)
    newcomer = next(u for u, m in ws.members.items() if m.role != "owner" and u not in group.members)
    leaver = group.members[0]
    now = datetime.now(UTC)
    rows = [
        ("demo-jit-1", newcomer, "add", now + timedelta(days=7), "on-call cover for one week"),
        ("demo-remove-1", leaver, "remove", None, "moved to another team"),
    ]
    with duckdb.connect(duckdb_path()) as con:
        create_provisioning_tables(con)
        for request_id, user, action, expires, reason in rows:
            con.execute(
                "insert or ignore into provisioning.access_requests (request_id, workspace_slug, group_slug, user_id, "
                "action, requested_by, approved_by, approved_at, expires_at, reason) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    request_id,
                    ws.slug,
                    group.slug,
                    user,
                    action,
                    f"lead@{org.name}.example",
                    f"security@{org.name}.example",
                    now,
                    expires,
                    reason,
                ],
            )


def _print_mart_counts() -> None:
    import duckdb

    from .defs.extraction.resources import duckdb_path

    marts = ("fct_grants", "fct_effective_access", "fct_grant_history", "fct_access_changes", "dim_users")
    with duckdb.connect(duckdb_path(), read_only=True) as con:
        for mart in marts:
            click.echo(f"  marts/{mart}: {con.execute(f'select count(*) from marts.{mart}').fetchone()[0]} rows")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items())


if __name__ == "__main__":
    sys.exit(main())
