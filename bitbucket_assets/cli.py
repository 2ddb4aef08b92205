"""The `bitbucket-access` command."""

from __future__ import annotations

import json
import sys

import click
import requests

from .simulator import Faults, RateLimit, Simulator, SimulatorServer, load_organisation
from .simulator.app import SIM_API_TOKEN


@click.group()
def main() -> None:
    """Bitbucket Cloud access warehouse: extract, model, review and provision access."""


@main.command()
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
def demo(org_name: str) -> None:
    """Run the pipeline end to end against the built-in simulator."""
    org = load_organisation(org_name)
    with SimulatorServer(Simulator(org)) as server:
        operator = org.users[org.operator_uuid]
        session = requests.Session()
        session.auth = (operator.email, SIM_API_TOKEN)
        me = session.get(f"{server.url}/2.0/user", timeout=10).json()
        click.echo(f"Simulated Bitbucket Cloud on {server.url}, signed in as {me['display_name']}")
        url = f"{server.url}/2.0/user/workspaces?pagelen=100"
        while url:
            page = session.get(url, timeout=10).json()
            for access in page["values"]:
                slug = access["workspace"]["slug"]
                members = session.get(
                    f"{server.url}/2.0/workspaces/{slug}/members?pagelen=1", timeout=10
                ).json()
                repos = session.get(f"{server.url}/2.0/repositories/{slug}?pagelen=1", timeout=10).json()
                projects = session.get(
                    f"{server.url}/2.0/workspaces/{slug}/projects?pagelen=1", timeout=10
                ).json()
                groups = session.get(f"{server.url}/1.0/groups/{slug}", timeout=10).json()
                click.echo(
                    f"  workspace {slug}: {members['size']} members, {len(groups)} groups, "
                    f"{projects['size']} projects, {repos['size']} repositories"
                    + (" (you are an administrator)" if access["administrator"] else "")
                )
            url = page.get("next")
        click.echo(f"{len(server.simulator.request_log)} API calls answered.")
    click.echo("Next: `bitbucket-access simulator --org demo` serves it for you to explore with curl.")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items())


if __name__ == "__main__":
    sys.exit(main())
