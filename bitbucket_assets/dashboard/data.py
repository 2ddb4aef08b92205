"""Queries behind the dashboard. Each opens the analysts' read copy read-only and closes it at once,
so the dashboard can never block the pipeline (it never opens the file the pipeline writes)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from ..provisioning.approvals import ApproverPolicy
from ..reporting.evidence import QUERIES
from ..settings import load_settings
from ..warehouse.files import reader_database


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
        raise FileNotFoundError(f"no warehouse at {target}: run `bitbucket-access sync` (or `make demo`) first")
    return target


def query(sql: str, params: dict | list | None = None) -> pd.DataFrame:
    with duckdb.connect(_readable(), read_only=True) as con:
        return con.execute(sql, params or []).df()


def snapshots_over_time() -> pd.DataFrame:
    """Users, groups, repositories, owners/admins and grant paths at every sync kept in history."""
    return query(
        "select synced_at, users, groups, repositories, grant_paths, owners_and_admins "
        "from marts.fct_sync_summary order by synced_at"
    )


def resources() -> pd.DataFrame:
    return query(
        "select distinct workspace_slug, resource_type, resource_key from marts.fct_grant_history "
        "where resource_type in ('repository', 'project') order by all"
    )


def who_has_access(workspace: str, resource_type: str, key: str, as_of: datetime) -> pd.DataFrame:
    return query(
        "select user_display_name, user_account_id, permission, array_to_string(grant_paths, '; ') as grant_paths "
        "from marts.effective_access_as_of($as_of) "
        "where workspace_slug = $ws and resource_type = $type and resource_key = $key order by user_display_name",
        {"as_of": as_of, "ws": workspace, "type": resource_type, "key": key},
    )


def people() -> pd.DataFrame:
    return query("select user_uuid, display_name, account_id from marts.dim_users order by display_name")


def person_access(user_uuid: str) -> pd.DataFrame:
    return query(
        "select workspace_slug, resource_type, resource_key, permission, array_to_string(grant_paths, '; ') "
        "as grant_paths from marts.fct_effective_access where user_uuid = ? order by all",
        [user_uuid],
    )


def person_history(user_uuid: str) -> pd.DataFrame:
    return query(
        "select valid_from, valid_to, workspace_slug, resource_type, resource_key, permission, grant_source, "
        "via_group_slug, via_project_key from marts.fct_grant_history where principal_id = ? "
        "order by valid_from desc, resource_key",
        [user_uuid],
    )


def changes(start: datetime, end: datetime) -> pd.DataFrame:
    return query(QUERIES["changes"], {"from": start, "to": end})


def risks(as_of: datetime) -> pd.DataFrame:
    return query(QUERIES["risks"], {"to": as_of})


def provisioning() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requests and every attempt, with whatever columns the warehouse has (older ones lack the newer)."""
    try:
        requests = query("select * from provisioning.access_requests order by updated_at desc")
        log = query("select * from provisioning.actions order by attempted_at desc")
    except duckdb.CatalogException:
        return pd.DataFrame(), pd.DataFrame()
    return requests, log
