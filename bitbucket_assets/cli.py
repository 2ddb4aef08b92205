"""The `bitbucket-access` command: parses arguments, calls one function of `services` (or `demo`), prints.

Heavy imports (Dagster, the simulator) happen inside the commands that need them, so `--help` and the
light commands start fast.
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .settings import Settings, SettingsError, load_settings, process_environment

if TYPE_CHECKING:
    from .command_log import CommandOutput


def _echo(message: str) -> None:
    """Print a line whose parts may come from Bitbucket or a spreadsheet: control characters escaped."""
    click.echo(_safe(message))


def _safe(message: str) -> str:
    from .reporting.safe_text import terminal_line

    return "\n".join(terminal_line(part) for part in str(message).split("\n"))


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:  # names the variable and what is wrong with it, never the value
        raise click.ClickException(f"configuration: {exc}") from None


def _verbose() -> bool:
    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().meta.get("verbose"))


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.find_root().meta["verbose"] = True


verbose_option = click.option(
    "--verbose",
    "-v",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_verbose,
    help="Show Dagster's and dbt's lines and the trace of a failure on the terminal.",
)


# The approver's or reviewer's own key, for the two commands that sign.
signing_key_option = click.option(
    "--key",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Your SSH key (a private key, or a public key whose private half your ssh-agent holds).",
)


def _actionable() -> tuple[type[Exception], ...]:
    """Errors whose message says what was wrong and what to do: shown as they are, in one line."""
    from .client import BitbucketError
    from .provisioning.approvals import ApproverPolicyError
    from .provisioning.requests_import import RequestImportError
    from .reporting.evidence import EvidenceOutputError
    from .reporting.review_files import ReviewImportError
    from .services import CommandError
    from .signing import SignatureError
    from .warehouse.files import WarehouseBusyError, WarehouseUnavailableError

    return (
        CommandError,
        BitbucketError,
        RequestImportError,
        ReviewImportError,
        ApproverPolicyError,
        WarehouseBusyError,
        WarehouseUnavailableError,
        EvidenceOutputError,
        SignatureError,  # a signing key that cannot sign, a public key file that cannot be read
    )


def _run(call, *args, **kwargs):
    """Call a service. Every failure becomes one line and exit status 1: an error a user can act on says what
    was wrong and what to do; anything else names itself and where its trace is (`--verbose` shows the trace
    on the terminal instead)."""
    try:
        return call(*args, **kwargs)
    except _actionable() as exc:
        if _verbose():
            raise
        details = _details_note()
        if details:
            traceback.print_exc()  # into the command's log, where stderr goes for now
        raise click.ClickException(_safe(_one_line(str(exc)) + details)) from None
    except Exception as exc:
        if _verbose():
            raise
        where = _details_note()
        if where:
            traceback.print_exc()  # into the command's log
        where = where or " (run again with --verbose for the trace)"
        raise click.ClickException(
            _safe(f"unexpected error ({type(exc).__name__}): {_one_line(str(exc))}{where}")
        ) from None


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _details_note() -> str:
    context = click.get_current_context(silent=True)
    path = context.find_root().meta.get("log_path") if context else None
    return f" (details: {path})" if path else ""


@contextmanager
def _details(command: str, settings: Settings, notices: bool = True) -> Iterator[CommandOutput]:
    """Run the block with the libraries' output in this run's log file (`command_log.py`), the client's
    retries shown as lines on the terminal unless `notices` is off (the sync's display shows them)."""
    from .command_log import details_to_log, retry_notices

    context = click.get_current_context()
    with details_to_log(settings.log_directory, command, _verbose()) as out:
        context.find_root().meta["log_path"] = out.log_path
        show = (lambda line: print(f"retrying: {line}", file=out.terminal, flush=True)) if notices else None
        with retry_notices(show) if show else nullcontext():
            yield out


def _timestamp(value: str, option: str, end_of_day: bool = True) -> datetime:
    """A date or ISO timestamp (UTC when it has no zone). A bare date means the start of that day for the
    start of a period and its end otherwise, so `--from D --to D` is the whole day D."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a date (2026-03-01) or an ISO timestamp", param_hint=option
        ) from None
    if len(value.strip()) == 10:
        parsed = datetime.combine(parsed.date(), time.max if end_of_day else time.min)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group(context_settings={"max_content_width": 110})
@click.version_option(package_name="bitbucket-access", prog_name="bitbucket-access")
@verbose_option
def main() -> None:
    """Bitbucket Cloud access warehouse: extract, model, review and provision access.

    Errors are one line with what to do (exit status 1); `--verbose` (here or after any command) shows the
    trace and Dagster's and dbt's lines, which otherwise go to a log file (BITBUCKET_LOG_DIR)."""


# `sync` exits with this when the snapshot was held back by the circuit breaker (nothing published): distinct
# from success (0), failure (1) and click's usage errors (2), so a scheduler can tell "look at this" from
# "broken".
EXIT_SUSPECT = 3


@main.command(short_help="Extract a snapshot into DUCKDB_PATH and build the marts.")
@verbose_option
@click.option(
    "--full",
    is_flag=True,
    help="Read every repository's permission lists, not only those that are new, "
    "changed or due (BITBUCKET_REFRESH_MAX_AGE_DAYS).",
)
@click.option(
    "--accept-vanished",
    is_flag=True,
    help="Accept that more vanished than the circuit breaker allows (BITBUCKET_MAX_VANISHED_SHARE): publish "
    "the snapshot held back as suspect (as it was read, no call) if it is the newest sync, else publish this "
    "sync's whatever vanished.",
)
def sync(full: bool, accept_vanished: bool) -> None:
    """Extract a snapshot from BITBUCKET_API_URL into DUCKDB_PATH (runs the Dagster job in-process), showing
    its progress at every checkpoint. After the first, a sync is incremental: a repository's permission lists
    are read when it is new, its effective access changed or they are due; the others are carried forward.
    Exit status: 0 published, 1 failed, 3 held back as suspect (too much vanished; nothing published)."""
    from . import services
    from .progress_display import sync_progress

    settings = _settings()
    with _details("sync", settings, notices=False) as out, sync_progress(out.terminal):
        summary = _run(services.sync, settings, full=full, accept_vanished=accept_vanished)
    for line in summary.lines():
        _echo(line)
    if out.log_path:
        _echo(f"  details (Dagster's and dbt's lines): {out.log_path}")
    if summary.suspect:
        sys.exit(EXIT_SUSPECT)


@main.command(short_help="Test the connection, the credential and the warehouse path.")
@verbose_option
def check() -> None:
    """Test the connection: identity, credential kind, workspaces, admin rights, missing scopes; and whether
    DUCKDB_PATH can be written."""
    from . import services
    from .command_log import retry_notices

    with retry_notices(lambda line: click.echo(f"retrying: {line}")):
        report = _run(services.check, _settings())
    for line in report.lines():
        _echo(line)
    if not report.can_sync:
        sys.exit(1)


@main.group(short_help="Import group-membership requests.")
def requests() -> None:
    """Group-membership requests (provisioning.access_requests)."""


@requests.command("import", short_help="Import requests from CSV or JSON Lines (all rows or none).")
@verbose_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_requests_command(path: str) -> None:
    """Import requests from a CSV or JSON Lines file: every row valid, or nothing imported."""
    from . import services

    count = _run(services.import_requests, _settings(), path)
    _echo(f"imported {count} request(s) into provisioning.access_requests")


@requests.command(
    "sign", short_help="Approve requests of a file: print each text to sign, sign it with your SSH key."
)
@verbose_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@signing_key_option
@click.option(
    "--approver",
    default=None,
    help="Your name as the approver policy lists it (default: the principal of --key in "
    "BITBUCKET_APPROVER_POLICY).",
)
@click.option(
    "--request",
    "request_ids",
    multiple=True,
    help="Sign only this request (repeatable); default: every request of the file not signed yet.",
)
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write here instead of PATH.")
@click.option("--yes", is_flag=True, help="Sign without asking (the texts are printed all the same).")
def sign_requests_command(
    path: str, key: str, approver: str | None, request_ids: tuple[str, ...], out: str | None, yes: bool
) -> None:
    """Approve requests of a CSV or JSON Lines file: print the text of each, sign it with your SSH key and
    write the signature into its approval_signature column (approved_by and approved_at are set with it)."""
    from . import services

    settings = _settings()
    plan = _run(services.plan_request_signing, settings, path, key, approver, request_ids)
    if not plan.requests:
        _echo(f"nothing to sign in {path}: every request is signed already (--request re-signs one)")
        return
    for request_id, text in plan.texts():
        _echo(f"-- request {request_id}, as you approve it:")
        for line in text.splitlines():
            _echo(f"   {line}")
    if not yes and sys.stdin.isatty():
        click.confirm(f"Sign {len(plan.requests)} request(s) as {plan.approver}?", abort=True)
    target = _run(services.sign_requests, plan, key, out)
    _echo(
        f"signed {len(plan.requests)} request(s) as {plan.approver} in {target}; next: "
        f"`bitbucket-access requests import {target}`"
    )


@main.command(short_help="Fulfil approved group-membership requests (--dry-run: the plan).")
@verbose_option
@click.option("--dry-run", is_flag=True, help="Show and log the plan; call nothing, change nothing.")
@click.option(
    "--max-changes",
    type=int,
    default=None,
    help="Abort before any call above this many changes (default: BITBUCKET_MAX_CHANGES_PER_RUN, 50).",
)
@click.option("--expire", is_flag=True, help="Run the just-in-time expiry instead of new requests.")
@click.option("--verify-log", is_flag=True, help="Check the provisioning log's hash chain; change nothing.")
def provision(dry_run: bool, max_changes: int | None, expire: bool, verify_log: bool) -> None:
    """Fulfil approved group-membership requests (runs the Dagster job in-process)."""
    from . import services

    if verify_log:
        result = _run(services.verify_provisioning_log, _settings())
        if result.intact:
            _echo(f"provisioning log intact: {result.rows} rows, head {result.head}")
        else:
            _echo(f"provisioning log ALTERED: {len(result.problems)} problem(s)")
        for problem in result.problems:
            _echo(f"  {problem}")
        for note in result.notes:
            _echo(f"  note: {note}")
        if not result.intact:
            sys.exit(1)
        return

    settings = _settings()
    with _details("provision", settings) as out:
        summary = _run(services.provision, settings, dry_run=dry_run, max_changes=max_changes, expire=expire)
    for line in summary.lines():
        _echo(line)
    if out.log_path:
        _echo(f"  details (Dagster's lines): {out.log_path}")


@main.group(short_help="Export a user access review; import its decisions.")
def review() -> None:
    """User access reviews: export the population for reviewers, import their decisions."""


@review.command("export", short_help="Write the review population as a new campaign (xlsx or CSV).")
@verbose_option
@click.option("--as-of", "as_of", required=True, help="Date or timestamp (UTC) the population is taken at.")
@click.option("--workspace", default=None, help="Only this workspace.")
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="xlsx", show_default=True)
@click.option(
    "--out", "out", default=None, help="Output file (default: <campaign>-review-<date>-<id>.<format>)."
)
@click.option(
    "--due",
    default=None,
    help="Date or timestamp (UTC) after which the campaign takes no decision (default: "
    "BITBUCKET_REVIEW_DUE_DAYS, 30 days, from now).",
)
@click.option(
    "--campaign",
    "kind",
    type=click.Choice(["access", "change-control"]),
    default="access",
    show_default=True,
    help="access: who holds what. change-control: who can change a production branch alone (push, or merge "
    "without an enforced review); a revoke removes them from the groups behind it and lists the rules that "
    "name them for a person to edit.",
)
def review_export(
    as_of: str, workspace: str | None, fmt: str, out: str | None, due: str | None, kind: str
) -> None:
    """One row per (user, resource, permission) with every grant path and reviewer/decision columns; with
    --campaign change-control, one row per (user, repository's production branch) they can change alone."""
    from . import services

    if out and not Path(out).resolve().parent.is_dir():
        raise click.BadParameter(f"the directory of {out} does not exist", param_hint="--out")
    when = _timestamp(as_of, "--as-of")
    until = _timestamp(due, "--due") if due else None
    target, count, campaign = _run(
        services.review_export, _settings(), when, workspace, fmt, out, until, kind
    )
    _echo(
        f"wrote {count} {kind} review rows to {target} (campaign {campaign.campaign_id}, due "
        f"{campaign.due_at:%Y-%m-%d %H:%M} UTC; only its rows, unchanged, can be imported)"
    )
    _echo(
        f"The reviewer fills reviewer/decision/comment, then signs the file: `bitbucket-access review sign "
        f"{target} --key ~/.ssh/id_ed25519`"
    )


@review.command("sign", short_help="Sign a completed review file as its reviewer (writes PATH.sig).")
@verbose_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@signing_key_option
def review_sign(path: str, key: str) -> None:
    """Sign a completed review file as its reviewer: writes PATH.sig beside it (the same as `ssh-keygen -Y
    sign -n bitbucket-access-review -f KEY PATH`). Every decision in the file is then yours."""
    from . import services

    signature = _run(services.sign_review, path, key)
    _echo(f"signed {path}: {signature}; next: `bitbucket-access review import {path}`")


@review.command("import", short_help="Turn signed `revoke` decisions into remove requests.")
@verbose_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--signature",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="The reviewer's detached signature (default: PATH.sig beside the file).",
)
def review_import(path: str, signature: str | None) -> None:
    """Record every decision of a signed review file (keep and revoke) and turn each `revoke` into approved
    `remove` requests for the provisioning job."""
    from . import services

    result, policy = _run(services.review_import, _settings(), path, signature)
    before = len(result.requests) - result.created
    _echo(
        f"{result.created} remove request(s) created"
        + (f" ({before} already imported before)" if before else "")
        + f"; {result.kept} access(es) kept"
    )
    who = (
        f"signed by {result.reviewer} ({result.key_fingerprint})"
        if result.key_fingerprint
        else f"by {result.reviewer or 'nobody'}, UNSIGNED (no approver policy to check a signature against)"
    )
    _echo(
        f"{len(result.decisions)} decision(s) recorded in provisioning.review_decisions"
        + (f" ({result.repeated} recorded before)" if result.repeated else "")
        + f", {who}; file SHA-256 {result.file.sha256}"
    )
    _echo(f"  {policy}")
    for line in result.impact:
        _echo(f"  removal: {line}")
    for line in result.manual:
        _echo(f"  manual: {line}")
    _echo("Next: `bitbucket-access provision --dry-run`, then `bitbucket-access provision`.")


@main.group(invoke_without_command=True, short_help="Write the evidence pack for a period; `verify` one.")
@verbose_option
@click.option("--from", "start", help="Start date or timestamp (UTC).")
@click.option("--to", "end", help="End date or timestamp (UTC).")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Directory to write.")
@click.option("--replace", is_flag=True, help="Replace the evidence pack already in --out (only its files).")
@click.pass_context
def evidence(ctx: click.Context, start: str | None, end: str | None, out: str | None, replace: bool) -> None:
    """Write the evidence pack (--from, --to, --out): evidence.html, the CSVs behind it and manifest.json;
    `evidence verify DIR` checks a pack."""
    from . import services

    if ctx.invoked_subcommand is not None:
        return
    for value, name in ((start, "--from"), (end, "--to"), (out, "--out")):
        if not value:
            raise click.UsageError(f"missing option {name} (or use `evidence verify DIR`)")
    period_start, period_end = _timestamp(start, "--from", end_of_day=False), _timestamp(end, "--to")
    if period_start > period_end:
        raise click.BadParameter(f"--from {start} is after --to {end}", param_hint="--from")
    pack = _run(services.evidence, _settings(), period_start, period_end, out, replace)
    _echo(f"evidence pack: {pack.report}")
    for key, value in pack.metrics.items():
        _echo(f"  {key}: {value}")


@evidence.command("verify", short_help="Check a pack against its manifest and the warehouse.")
@verbose_option
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
def evidence_verify(directory: str) -> None:
    """Recompute every file's rows and SHA-256 and compare them with manifest.json and the warehouse's
    record."""
    from . import services

    result = _run(services.verify_evidence, _settings(), directory)
    for name in result.checked:
        _echo(f"  ok: {name}")
    for note in result.notes:
        _echo(f"  note: {note}")
    if not result.intact:
        for problem in result.problems:
            _echo(f"  ALTERED: {problem}")
        raise click.ClickException(f"the evidence pack in {directory} does not match what was written")
    _echo(
        f"the evidence pack in {directory} is intact: every file matches its manifest and the warehouse's "
        "record"
    )


@main.command(short_help="Serve the audit dashboard over the read copy.")
@click.option("--port", default=8501, show_default=True)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Anything but loopback serves access data to the network: set "
    "BITBUCKET_DASHBOARD_SIGN_IN=true (docs/dashboard.md) before you do.",
)
def dashboard(port: int, host: str) -> None:
    """Serve the audit dashboard (Streamlit) over the analysts' read copy of the warehouse."""
    import os
    from pathlib import Path

    settings = _settings()
    if host not in ("127.0.0.1", "localhost", "::1") and not settings.bitbucket_dashboard_sign_in:
        _echo(f"WARNING: serving on {host} without sign-in: anyone who can reach it sees access data")
    app = Path(__file__).parent / "dashboard" / "app.py"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    _echo(f"dashboard on http://{host}:{port}")
    sys.stdout.flush()
    # Become Streamlit rather than wait for it: a signal to this process (a service manager stopping it,
    # Ctrl-C) then reaches the server itself instead of leaving it running on its own.
    os.execv(sys.executable, command)


def _require_simulator() -> None:
    """The simulator and the demo are a distribution of their own (simulator/), which a production install
    leaves out."""
    import importlib.util

    if importlib.util.find_spec("bitbucket_simulator") is None:
        raise click.ClickException(
            "the simulator is not installed here (a production install leaves it out): "
            "`pip install -e simulator` from the repository, or `make demo`, installs it"
        )


@main.command(short_help="Serve a simulated Bitbucket Cloud on loopback.")
@click.option(
    "--port", default=7990, show_default=True, help="Loopback port to listen on (0: any free port)."
)
@click.option(
    "--org", "org_name", default="demo", show_default=True, help="tiny, demo, large or a YAML/JSON file."
)
@click.option(
    "--seed", default=7, show_default=True, help="Seed of the generated organisation and of faults."
)
@click.option(
    "--rate-limit", default="1000/3600", show_default=True, help="N/SECONDS per credential; 'off' to disable."
)
@click.option(
    "--retry-after/--no-retry-after", default=False, help="Send Retry-After on 429 (Bitbucket does not)."
)
@click.option(
    "--faults", "faults_json", default="", help="JSON fault settings, e.g. '{\"error_rate\": 0.05}'."
)
def simulator(
    port: int, org_name: str, seed: int, rate_limit: str, retry_after: bool, faults_json: str
) -> None:
    """Serve a simulated Bitbucket Cloud on 127.0.0.1."""
    _require_simulator()
    from bitbucket_simulator import (
        SIM_API_TOKEN,
        Faults,
        RateLimit,
        Simulator,
        SimulatorServer,
        load_organisation,
    )
    from bitbucket_simulator.demo import counts_line

    org = load_organisation(org_name, seed=seed)
    limit = None if rate_limit == "off" else RateLimit.parse(rate_limit)
    if limit is not None:
        limit.retry_after = retry_after
    faults = Faults(seed=seed, **(json.loads(faults_json) if faults_json else {}))
    server = SimulatorServer(Simulator(org, rate_limit=limit, faults=faults), port=port, log_level="info")
    operator = org.users[org.operator_uuid] if org.operator_uuid else None
    _echo(f"Simulated Bitbucket Cloud ({org.name}: {counts_line(org.counts())}) on {server.url}")
    if operator is not None:
        _echo(f"  BITBUCKET_API_URL={server.url}")
        _echo(f"  BITBUCKET_EMAIL={operator.email}")
        _echo(f"  BITBUCKET_API_TOKEN={SIM_API_TOKEN}   (a simulator-only token)")
    server.serve_forever()


@main.command(short_help="Run the whole pipeline against the built-in simulator.")
@verbose_option
@click.option("--org", "org_name", default="demo", show_default=True)
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(2, 366),
    help="Days of history ending today: one sync per day (all but today's on a simulated clock), the "
    "organisation evolving between.",
)
@click.option(
    "--dagster",
    "with_dagster",
    is_flag=True,
    help="Instead: serve the simulator and run `dagster dev` on it (schedules, sensor, Materialize all).",
)
@click.option("--port", default=3000, show_default=True, help="With --dagster: the Dagster UI's port.")
def demo(org_name: str, days: int, with_dagster: bool, port: int) -> None:
    """Run the pipeline end to end against the built-in simulator (warehouse: DUCKDB_PATH, else
    data/demo.duckdb)."""
    _require_simulator()
    from bitbucket_simulator.demo import closing_lines, run_dagster_demo, run_demo

    settings = _settings()
    chosen = settings.duckdb_path if "duckdb_path" in settings.model_fields_set else None
    if with_dagster:
        # SIGTERM (a service manager, a test) stops dagster dev as Ctrl-C does, rather than orphaning it.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.signal(signal.SIGHUP, signal.default_int_handler)  # a closed terminal, too
        home = Path(process_environment().get("DAGSTER_HOME") or "dagster_home")
        sys.exit(run_dagster_demo(org_name, chosen, port, home, click.echo))
    with _details("demo", settings) as out:

        def story(line: str) -> None:
            print(_safe(line), file=out.terminal, flush=True)

        result = _run(run_demo, org_name, days, chosen, story, click.echo)
    for line in closing_lines(result):
        _echo(line)
    if out.log_path:
        _echo(f"Details:       {out.log_path} (every day's sync, Dagster's and dbt's lines)")


if __name__ == "__main__":
    sys.exit(main())
