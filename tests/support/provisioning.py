"""Helpers of the provisioning tests: requests inserted as SQL, one provisioning or expiry run, what the log
and the simulator recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb

from bitbucket_assets.client import BitbucketClient, Credentials
from bitbucket_assets.client.admin_api import AtlassianAdminApi
from bitbucket_assets.provisioning import audit_log
from bitbucket_assets.provisioning.approvals import ApproverPolicy
from bitbucket_assets.provisioning.engine import Provisioner, ProvisioningPolicy
from bitbucket_simulator import SIM_API_TOKEN, SIM_ORG_API_KEY, SIM_ORG_ID

NOW = datetime.now(UTC)
REQUESTS_HEADER = (
    "request_id,workspace_slug,group_slug,user_id,action,requested_by,approved_by,approved_at,"
    "expires_at,reason\n"
)


def add_request(db: str, request_id: str, user, group: str, action: str = "add", **overrides) -> None:
    row = {
        "request_id": request_id,
        "workspace_slug": "tiny-co",
        "group_slug": group,
        "user_id": user if isinstance(user, str) else user.uuid,
        "action": action,
        "requested_by": "ana@tiny.example",
        "approved_by": "olga@tiny.example",
        "approved_at": NOW - timedelta(hours=1),
        "expires_at": None,
        "reason": "needed for the payments migration",
        "allow_protected": False,
        **overrides,
    }
    with duckdb.connect(db) as con:
        con.execute(
            f"insert into provisioning.access_requests ({', '.join(row)}) values "
            f"({', '.join('?' * len(row))})",
            list(row.values()),
        )


FAST = {"requests_per_hour": 1e7, "backoff_base": 0.01, "backoff_max": 0.02, "rate_limit_backoff": 0.01}


def admin_api(sim, key: str = SIM_ORG_API_KEY, **client_kw) -> AtlassianAdminApi:
    """The simulated organization's Atlassian Admin API, with `key`."""
    return AtlassianAdminApi.connect(SIM_ORG_ID, key, sim.url, **{**FAST, **client_kw})


def provision(
    sim,
    db: str,
    dry_run: bool = False,
    now=None,
    policy=None,
    approvals=None,
    admin=None,
    admin_managed=None,
    signing=None,
    **client_kw,
) -> Provisioner:
    """One provisioning run; `admin`: the Admin API for workspaces administered from admin.atlassian.com;
    `signing`: the service's key, which signs the log's head."""
    token = client_kw.pop("token", SIM_API_TOKEN)
    client = BitbucketClient(Credentials.api_token(sim.email, token), sim.url, **{**FAST, **client_kw})
    with duckdb.connect(db) as con:
        p = Provisioner(
            None if dry_run else client,
            con,
            policy or ProvisioningPolicy(),
            now=now,
            approvals=approvals,
            admin_api=admin,
            admin_managed=admin_managed,
            signing=signing,
        )
        p.provision(dry_run=dry_run)
    return p


def expire(sim, db: str, now, admin=None, admin_managed=None) -> Provisioner:
    client = BitbucketClient(Credentials.api_token(sim.email, SIM_API_TOKEN), sim.url, requests_per_hour=1e7)
    with duckdb.connect(db) as con:
        p = Provisioner(
            client, con, ProvisioningPolicy(), now=now, admin_api=admin, admin_managed=admin_managed
        )
        p.expire()
    return p


def statuses(db: str) -> dict[str, tuple[str, str | None]]:
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute(
            "select request_id, status, status_reason from provisioning.access_requests"
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def log_with_backend(db: str) -> dict[str, tuple]:
    """request id -> (action, outcome, backend, error) of its last log row."""
    with duckdb.connect(db, read_only=True) as con:
        rows = con.execute(
            "select request_id, action, outcome, backend, error from provisioning.provisioning_log order by "
            "seq"
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def log(db: str) -> list[tuple]:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(
            "select request_id, action, outcome, http_status, error, dry_run from "
            "provisioning.provisioning_log order by attempted_at"
        ).fetchall()


def writes(sim) -> list:
    return [r for r in sim.simulator.request_log if r.method in ("PUT", "DELETE")]


def policy_file(tmp_path, text: str) -> str:
    path = tmp_path / "approvers.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def policy(tmp_path, sim):
    """An approver policy on `sim`'s organisation: olga approves everywhere; members of `leads` too; only the
    CISO approves protected groups. Returns (sim, policy, its file)."""
    cleo = sim.user("cleo")  # the member of leads in tiny
    path = policy_file(
        tmp_path,
        f"""
identities:
  Cleo.Lead@Tiny.Example: "{cleo.account_id}"
  olga@tiny.example: "{sim.user("olga").account_id}"
  ciso@tiny.example: "557058:c150c150-0000-4000-8000-00000000c150"
approvers:
  "*": {{people: [olga@tiny.example], bitbucket_group: leads}}
protected_approvers:
  "*": {{people: [ciso@tiny.example]}}
""",
    )
    return sim, ApproverPolicy.load(path), path


def rechain(db: str) -> None:
    """What someone who can write to the warehouse can do after changing rows: recompute the whole chain, so
    that every row hashes right and follows the one before."""
    columns = [*audit_log.HASHED, *audit_log.HASHED_WHEN_SET]
    with duckdb.connect(db) as con:
        cursor = con.execute(f"select {', '.join(columns)} from provisioning.provisioning_log order by seq")
        rows = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
        prev = audit_log.GENESIS
        for row in rows:
            row["prev_hash"] = prev
            prev = audit_log.row_hash(row)
            con.execute(
                "update provisioning.provisioning_log set prev_hash = ?, row_hash = ? where log_id = ?",
                [row["prev_hash"], prev, row["log_id"]],
            )
