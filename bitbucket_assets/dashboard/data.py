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

from ..provisioning.approvals import ApproverPolicy, ApproverPolicyError
from ..reporting.evidence import QUERIES
from ..settings import SettingsError, load_settings
from ..warehouse.files import reader_database
from ..warehouse.provisioning_copy import DataTimes, attach_provisioning_copy
from ..warehouse.provisioning_copy import data_times as provisioning_data_times

# The trends the overview draws, one chart each: column of `marts.fct_workspace_trends` -> title.
MEASURES = {
    "users_with_access": "Users with access",
    "groups_with_members": "Groups with members",
    "repositories": "Repositories",
    "owners_and_admins": "Owners and admins",
    "grant_paths": "Grant paths",
}


def sign_in_required() -> bool:
    """BITBUCKET_DASHBOARD_SIGN_IN: require Streamlit's OIDC sign-in (`[auth]` in .streamlit/secrets.toml)."""
    return load_settings().bitbucket_dashboard_sign_in


def approver_policy() -> tuple[bool, str]:
    """Whether an approver policy is configured, and the sentence that says which (or that none is, or why the
    one named is refused)."""
    try:
        policy = ApproverPolicy.load(load_settings().bitbucket_approver_policy)
    except (ApproverPolicyError, SettingsError) as exc:
        return False, f"approver policy REFUSED: {exc}"
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
    """One query over the read copy, with the provisioning copy beside it attached over its provisioning
    tables (warehouse/provisioning_copy.py): the snapshot as of the last sync, provisioning as of now."""
    target = _readable()
    with duckdb.connect(target, read_only=True) as con:
        attach_provisioning_copy(con, target)
        return con.execute(sql, params or []).df()


def data_times() -> DataTimes:
    """How old the data every page shows is (`freshness.py` says it)."""
    target = _readable()
    with duckdb.connect(target, read_only=True) as con:
        attach_provisioning_copy(con, target)
        return provisioning_data_times(con)


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


# The risk register (findings with their severity and guidance, `checked: none` for a risk without one), the
# most severe first; the words are dbt's seed (dbt_project/seeds/risk_guidance.csv), as in risks.csv.
RISKS = """
    select risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail,
           severity, why_it_matters, what_to_do, is_finding
    from marts.risk_register_as_of($to, $ws)
    order by severity_order, risk, workspace_slug, resource_key, user_display_name
"""


def risks(as_of: datetime, workspace: str | None) -> pd.DataFrame:
    return query(RISKS, {"to": as_of, "ws": workspace})


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


def reviews(workspace: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Access-review campaigns with their completion (by reviewer; reviewer empty: the whole campaign), and
    every attestation, latest first."""
    try:
        campaigns = query(
            "select * from provisioning.review_completion where $ws is null or workspace_slug is null or "
            "workspace_slug = $ws order by created_at desc, campaign_id, reviewer nulls first",
            {"ws": workspace},
        )
        attestations = query(
            "select * from provisioning.attestations where $ws is null or workspace_slug = $ws "
            "order by decided_at desc, campaign_id, review_item",
            {"ws": workspace},
        )
    except duckdb.CatalogException:
        return pd.DataFrame(), pd.DataFrame()
    return campaigns, attestations
