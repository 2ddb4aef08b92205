"""Queries behind the dashboard. Each opens the analysts' read copy read-only and closes it at once,
so the dashboard can never block the pipeline (it never opens the file the pipeline writes).

Every query selects from the marts, their table macros (`marts.*_as_of`) or the documented provisioning view;
`workspace` None means every workspace. The access rules and path labels are dbt's (`dbt_project/macros/`).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd

from ..provisioning.approvals import ApproverPolicy
from ..reporting.evidence import QUERIES
from ..settings import load_settings
from ..warehouse.files import reader_database

# The trends the overview draws, one chart each: column of `marts.fct_workspace_trends` -> title.
MEASURES = {
    "users_with_access": "Users with access",
    "groups_with_members": "Groups with members",
    "repositories": "Repositories",
    "owners_and_admins": "Owners and admins",
    "grant_paths": "Grant paths",
}

# Why each risk of `marts.access_risks_as_of` matters, and what to do about it.
RISK_GUIDE: dict[str, tuple[str, str]] = {
    "workspace owner": (
        "Owners are administrators of every repository and can change anyone's access.",
        "Keep owners few and named; remove the role from anyone who does not administer the workspace.",
    ),
    "direct admin grant": (
        "Admin on a repository or project given to one person bypasses the groups reviews are organised by.",
        "Grant admin through a group, or confirm this one in the next access review.",
    ),
    "access only through direct grants": (
        "Someone reaching code only through per-person grants is easily forgotten when they change teams.",
        "Move the access to a team group, or remove it.",
    ),
    "access held outside the workspace membership": (
        "Outside collaborators, app users and deleted accounts keep access that no member review lists.",
        "Confirm each with its owner; remove grants that nobody claims.",
    ),
    "dormant account": (
        "An account unused for 90 days still holds all its access, and is a target if its credentials leak.",
        "Ask whether it is still needed; remove the person from groups and grants if not.",
    ),
    "dormant accounts unknown": (
        "Bitbucket does not say when members of this workspace last used it (its users are managed in "
        "admin.atlassian.com), so dormancy cannot be checked here.",
        "Check last activity in admin.atlassian.com (user last active dates), or review this workspace by "
        "hand.",
    ),
    # Change control (macros/change_control_rules.sql; docs/design.md, "Change control").
    "production branch without a push restriction": (
        "Anyone with write can push straight to the production branch: no review, no record of approval.",
        "Add a push restriction on the production branch (branching model: production) naming the team or "
        "release managers; check the project's own restrictions in Bitbucket if the rules are not fully "
        "readable.",
    ),
    "change possible without an enforced review": (
        "This person can put a change on production alone (by pushing, or merging without an enforced "
        "approval): the control SOX change management and SOC 2 CC8.1 ask for is missing.",
        "Restrict pushes, require approvals and turn on enforce_merge_checks; or confirm this person in the "
        "change-control review campaign.",
    ),
    "exempted from a branch restriction": (
        "People or groups named in a push or merge restriction bypass it; exemptions outlive the reason they "
        "were granted.",
        "Confirm each exemption with the repository's owner; remove the ones nobody needs.",
    ),
    "merge checks not enforced": (
        "Required approvals and builds only warn without enforce_merge_checks (Premium): anyone who can "
        "merge merges anyway.",
        "Turn on 'Prevent a merge with unresolved merge checks' for the production branch.",
    ),
    "deploy key unused for 180 days": (
        "An access key nobody uses still opens the repository to whoever holds its private key.",
        "Remove the key, or record who owns it and why it stays.",
    ),
    "deploy key added by a former member": (
        "The person who added this key has left: nobody answers for where its private key is.",
        "Rotate or remove the key; give it an owner who is still here.",
    ),
    "member without 2FA who can change production": (
        "A password alone protects an account that can change production code.",
        "Require two-step verification (workspace or organization policy) and ask this person to enable it.",
    ),
    "forks allowed to public": (
        "Anyone who can read the repository may fork it publicly, copying its code out of your control.",
        "Set the fork policy to 'no public forks' (or no forks) unless the repository is meant to be open.",
    ),
    "change control not readable": (
        "Branch restrictions and deploy keys of this workspace could not be read (missing admin scopes or "
        "rights): who can change production is unknown here.",
        "Give the sync's API token admin:repository and admin:project (bitbucket-access check names what is "
        "missing), or review this workspace's branch permissions by hand.",
    ),
    "repository without an admin": (
        "Only workspace owners can manage this repository's access, so nobody close to it reviews it.",
        "Name a repository admin (preferably through a group).",
    ),
    "public repository": (
        "Anyone on the internet can read and clone it.",
        "Make sure it is meant to be public; make it private otherwise.",
    ),
    "access still held by a leaver": (
        "Someone HR reported as gone can still reach code.",
        "Remove their grants and group memberships now (a revoke request does it with an approval).",
    ),
}


def sign_in_required() -> bool:
    """BITBUCKET_DASHBOARD_SIGN_IN: require Streamlit's OIDC sign-in (`[auth]` in .streamlit/secrets.toml)."""
    return load_settings().bitbucket_dashboard_sign_in


def approver_policy() -> tuple[bool, str]:
    """Whether an approver policy is configured, and the sentence that says which (or that none is)."""
    policy = ApproverPolicy.load(load_settings().bitbucket_approver_policy)
    return policy.configured, policy.describe()


def warehouse_path() -> str:
    """The read copy of DUCKDB_PATH (BITBUCKET_DASHBOARD_DB overrides it)."""
    return reader_database(load_settings())


def _readable() -> str:
    target = warehouse_path()
    if not target.startswith("md:") and not Path(target).exists():
        raise FileNotFoundError(
            f"no warehouse at {target}: run `bitbucket-access sync` (or `make demo`) first"
        )
    return target


def query(sql: str, params: dict | list | None = None) -> pd.DataFrame:
    with duckdb.connect(_readable(), read_only=True) as con:
        return con.execute(sql, params or []).df()


# ---- the shared filters ----


def workspaces() -> list[str]:
    return list(query("select workspace_slug from marts.dim_workspaces order by 1").workspace_slug)


def snapshot_dates() -> list[date]:
    """Every day a sync in the history completed, latest first."""
    frame = query(
        "select distinct cast(synced_at as date) as day from marts.fct_sync_summary order by 1 desc"
    )
    return [pd.Timestamp(day).date() for day in frame.day]


# ---- pages ----


def trends(workspace: str | None) -> pd.DataFrame:
    """The measures at every sync, for one workspace or (None) for every workspace together."""
    return query(
        f"select synced_at, {', '.join(MEASURES)} from marts.fct_workspace_trends "
        "where workspace_slug is not distinct from $ws order by synced_at",
        {"ws": workspace},
    )


def changes_per_day(workspace: str | None) -> pd.DataFrame:
    return query(
        "select cast(changed_at as date) as day, change, count(*) as changes from marts.fct_access_changes "
        "where $ws is null or workspace_slug = $ws group by all order by all",
        {"ws": workspace},
    )


def resources(workspace: str | None) -> pd.DataFrame:
    return query(
        "select distinct workspace_slug, resource_type, resource_key from marts.fct_grant_history "
        "where resource_type in ('repository', 'project') and ($ws is null or workspace_slug = $ws) order by "
        "all",
        {"ws": workspace},
    )


def who_has_access(workspace: str, resource_type: str, key: str, as_of: datetime) -> pd.DataFrame:
    return query(
        "select user_uuid, user_display_name, user_account_id, permission, array_to_string(access_paths, '; "
        "') as paths, first_granted_at from marts.effective_access_as_of($as_of) where workspace_slug = $ws "
        "and resource_type = $type and resource_key = $key order by user_display_name",
        {"as_of": as_of, "ws": workspace, "type": resource_type, "key": key},
    )


def resource_history(workspace: str, resource_type: str, key: str) -> pd.DataFrame:
    return query(
        "select valid_from, valid_to, principal_type, principal_name, permission, grant_source, "
        "via_group_slug, via_project_key from marts.fct_grant_history where workspace_slug = $ws and "
        "resource_type = $type and resource_key = $key order by valid_from desc, principal_name",
        {"ws": workspace, "type": resource_type, "key": key},
    )


def people(workspace: str | None) -> pd.DataFrame:
    return query(
        "select user_uuid, display_name, account_id from marts.dim_users "
        "where $ws is null or list_contains(workspaces, $ws) order by display_name, user_uuid",
        {"ws": workspace},
    )


def person_access(user_uuid: str, workspace: str | None, as_of: datetime) -> pd.DataFrame:
    return query(
        "select workspace_slug, resource_type, resource_key, permission, array_to_string(access_paths, '; "
        "') as paths, first_granted_at from marts.effective_access_as_of($as_of) where user_uuid = $user "
        "and ($ws is null or workspace_slug = $ws) order by workspace_slug, resource_type, resource_key",
        {"as_of": as_of, "user": user_uuid, "ws": workspace},
    )


def person_history(user_uuid: str, workspace: str | None) -> pd.DataFrame:
    return query(
        "select valid_from, valid_to, workspace_slug, resource_type, resource_key, permission, grant_source, "
        "via_group_slug, via_project_key from marts.fct_grant_history "
        "where principal_id = $user and ($ws is null or workspace_slug = $ws) order by valid_from desc, "
        "resource_key",
        {"user": user_uuid, "ws": workspace},
    )


def changes(start: datetime, end: datetime, workspace: str | None) -> pd.DataFrame:
    table = query(QUERIES["changes"], {"from": start, "to": end})
    return table if workspace is None else table[table.workspace_slug == workspace].reset_index(drop=True)


def risks(as_of: datetime, workspace: str | None) -> pd.DataFrame:
    table = query(QUERIES["risks"], {"to": as_of})
    return table if workspace is None else table[table.workspace_slug == workspace].reset_index(drop=True)


def provisioning(workspace: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requests and every attempt, with whatever columns the warehouse has (older ones lack the newer)."""
    try:
        requests = query("select * from provisioning.access_requests order by updated_at desc")
        log = query("select * from provisioning.actions order by attempted_at desc")
    except duckdb.CatalogException:
        return pd.DataFrame(), pd.DataFrame()
    if workspace is not None:
        requests = requests[requests.workspace_slug == workspace].reset_index(drop=True)
        log = log[log.workspace_slug == workspace].reset_index(drop=True)
    return requests, log
