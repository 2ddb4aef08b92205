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


# The list behind each overview measure (its drill-down), held at a time in one workspace or all: counted as
# `marts.fct_workspace_trends` counts it, so the list has as many rows as the measure says. Keyed by measure;
# the key is checked against this dict, never put into the SQL.
_HELD = """
    with held as (
        select * from marts.fct_grant_history
        where valid_from <= $as_of and (valid_to is null or valid_to > $as_of)
          and ($ws is null or workspace_slug = $ws)
    )
"""
MEASURE_LISTS = {
    "users_with_access": _HELD
    + """
        select principal_id as user_uuid, arg_max(principal_name, valid_from) as user_display_name,
            string_agg(distinct workspace_slug, ', ' order by workspace_slug) as workspaces,
            count(distinct resource_id) filter (where resource_type = 'repository') as repositories,
            count(distinct resource_id) filter (where resource_type = 'group') as groups
        from held where principal_type = 'user' group by principal_id
        order by repositories desc, user_display_name, user_uuid
    """,
    "owners_and_admins": _HELD
    + """
        select principal_id as user_uuid, arg_max(principal_name, valid_from) as user_display_name,
            coalesce(string_agg(distinct resource_key, ', ' order by resource_key)
                filter (where resource_type = 'workspace'), '') as owner_of,
            count(distinct resource_id) filter (where resource_type = 'repository')
                as repositories_administered,
            count(distinct resource_id) filter (where resource_type = 'project') as projects_administered,
            coalesce(string_agg(distinct access_path, '; ' order by access_path)
                filter (where resource_type <> 'workspace' and grant_source <> 'workspace'), '')
                as admin_paths_besides_owner
        from held where principal_type = 'user' and permission in ('admin', 'owner') group by principal_id
        order by owner_of = '', repositories_administered desc, user_display_name, user_uuid
    """,
    "groups_with_members": _HELD
    + """
        select workspace_slug, resource_key as group_slug, arg_max(resource_name, valid_from) as group_name,
            count(distinct principal_id) as members
        from held where resource_type = 'group' and principal_type = 'user'
        group by workspace_slug, resource_id, resource_key
        order by members desc, workspace_slug, group_slug
    """,
    "repositories": _HELD
    + """
        select workspace_slug, resource_key as repository_slug, arg_max(resource_name, valid_from) as name,
            count(distinct principal_id) filter (where principal_type = 'user') as users,
            count(distinct principal_id) filter (where principal_type = 'user' and permission = 'admin')
                as admins
        from held where resource_type = 'repository' group by workspace_slug, resource_id, resource_key
        order by users desc, workspace_slug, repository_slug
    """,
}


def measure_list(measure: str, workspace: str | None, as_of: datetime) -> pd.DataFrame:
    """The rows an overview measure counts at `as_of` (`MEASURE_LISTS`)."""
    if measure not in MEASURE_LISTS:
        raise KeyError(f"no list behind the measure {measure!r}")
    return query(MEASURE_LISTS[measure], {"as_of": as_of, "ws": workspace})


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


# How a grant path reaches a user (`grant_source` in the marts), in words: the Who-has-access filter.
PATH_KINDS = {
    "direct": "direct grant",
    "group": "through a group",
    "project": "through a project",
    "workspace": "workspace owner",
}


def who_has_access(
    workspace: str,
    resource_type: str,
    key: str,
    as_of: datetime,
    permission: str | None = None,
    path_kind: str | None = None,
) -> pd.DataFrame:
    """Everyone who can reach one repository or project at `as_of`, the highest permission first, filtered in
    SQL by the permission held and by a kind of path they hold it through (`PATH_KINDS`; None: any)."""
    return query(
        "select user_uuid, user_display_name, user_account_id, permission, permission_rank, "
        "array_to_string(access_paths, '; ') as paths, first_granted_at "
        "from marts.effective_access_as_of($as_of) where workspace_slug = $ws and resource_type = $type "
        "and resource_key = $key and ($permission is null or permission = $permission) "
        "and ($kind is null or list_contains(grant_sources, $kind)) "
        "order by permission_rank desc, user_display_name, user_uuid",
        {
            "as_of": as_of,
            "ws": workspace,
            "type": resource_type,
            "key": key,
            "permission": permission,
            "kind": path_kind,
        },
    )


def access_counts(workspace: str, resource_type: str, key: str, as_of: datetime) -> pd.DataFrame:
    """Users per permission held on one resource at `as_of`, the highest first (the filter's choices)."""
    return query(
        "select permission, any_value(permission_rank) as permission_rank, count(*) as users "
        "from marts.effective_access_as_of($as_of) where workspace_slug = $ws and resource_type = $type "
        "and resource_key = $key group by permission order by permission_rank desc, permission",
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
    """Everyone in the workspace (None: all), by name, with what tells people of the same name apart
    (nickname, account id, workspaces, how many resources they reach at the latest sync) and whether they own
    a workspace."""
    return query(
        "select u.user_uuid, u.display_name, u.account_id, u.nickname, array_to_string(u.workspaces, ', ') "
        "as workspaces, u.is_workspace_owner, coalesce(e.resources, 0) as resources "
        "from marts.dim_users u left join (select user_uuid, count(*) as resources "
        "from marts.fct_effective_access where $ws is null or workspace_slug = $ws group by user_uuid) e "
        "using (user_uuid) "
        "where $ws is null or list_contains(u.workspaces, $ws) order by u.display_name, u.user_uuid",
        {"ws": workspace},
    )


def default_person(users: pd.DataFrame) -> str | None:
    """The person the Person page opens on: whoever reaches the most without owning a workspace. Owners (the
    sync's own account among them: its credential must administer the workspace) reach everything through the
    owner role, a page of "workspace owner" rows that answers nothing."""
    candidates = users[~users.is_workspace_owner.fillna(False).astype(bool)]
    if candidates.empty:
        candidates = users
    if candidates.empty:
        return None
    ranked = candidates.sort_values(["resources", "display_name", "user_uuid"], ascending=[False, True, True])
    return str(ranked.user_uuid.iloc[0])


def person_access(user_uuid: str, workspace: str | None, as_of: datetime) -> pd.DataFrame:
    return query(
        "select workspace_slug, resource_type, resource_key, permission, permission_rank, "
        "array_to_string(access_paths, '; ') as paths, first_granted_at "
        "from marts.effective_access_as_of($as_of) where user_uuid = $user "
        "and ($ws is null or workspace_slug = $ws) "
        "order by permission_rank desc, workspace_slug, resource_type, resource_key",
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


# What happened to a person in a workspace over a period, from the state of each (user, resource) the
# period's changes touched, before the period and at its end: joined or left (a workspace role gained or
# lost), moved (left a group and joined another), else their access changed. "Gained" and "lost" count
# repositories and projects the person could not reach before or cannot reach any more, not grant paths (a
# move from one group to another that keeps a repository changes two paths and no access). Filtered and
# aggregated in SQL: the history is read only for the touched pairs.
CHANGE_SUMMARY = """
    with period as (
        select * from marts.fct_access_changes
        where changed_at >= $from and changed_at <= $to and principal_type = 'user'
          and ($ws is null or workspace_slug = $ws)
    ),
    touched as (
        select workspace_slug, resource_type, resource_id, principal_id,
               any_value(resource_key) as resource_key, count(*) as path_rows,
               max(changed_at) as last_changed_at
        from period group by all
    ),
    states as (
        select t.*,
            max(h.permission_rank) filter (
                where h.valid_from < $from and (h.valid_to is null or h.valid_to >= $from)) as rank_before,
            max(h.permission_rank) filter (
                where h.valid_from <= $to and (h.valid_to is null or h.valid_to > $to)) as rank_after
        from touched t
        left join marts.fct_grant_history h
          on h.workspace_slug = t.workspace_slug and h.resource_type = t.resource_type
         and h.resource_id = t.resource_id and h.principal_type = 'user' and h.principal_id = t.principal_id
        group by all
    ),
    people as (
        select
            s.principal_id as user_uuid,
            s.workspace_slug,
            bool_or(s.resource_type = 'workspace' and s.rank_before is null and s.rank_after is not null)
                as joined,
            bool_or(s.resource_type = 'workspace' and s.rank_before is not null and s.rank_after is null)
                as left_workspace,
            coalesce(string_agg(s.resource_key, ', ' order by s.resource_key) filter (
                where s.resource_type = 'group' and s.rank_before is null and s.rank_after is not null), '')
                as groups_joined,
            coalesce(string_agg(s.resource_key, ', ' order by s.resource_key) filter (
                where s.resource_type = 'group' and s.rank_before is not null and s.rank_after is null), '')
                as groups_left,
            count(*) filter (where s.resource_type in ('repository', 'project')
                and s.rank_before is null and s.rank_after is not null) as gained,
            count(*) filter (where s.resource_type in ('repository', 'project')
                and s.rank_before is not null and s.rank_after is null) as lost,
            count(*) filter (where s.resource_type in ('repository', 'project')
                and s.rank_after > s.rank_before) as raised,
            count(*) filter (where s.resource_type in ('repository', 'project')
                and s.rank_after < s.rank_before) as lowered,
            cast(sum(s.path_rows) as bigint) as path_rows,
            max(s.last_changed_at) as last_changed_at
        from states s
        group by all
    ),
    named as (
        select principal_id as user_uuid, arg_max(principal_name, changed_at) as user_display_name,
               arg_max(user_account_id, changed_at) as user_account_id
        from period group by all
    )
    select n.user_display_name, p.workspace_slug,
        case when p.joined then 'joined' when p.left_workspace then 'left'
             when p.groups_joined <> '' and p.groups_left <> '' then 'moved'
             else 'access changed' end as what,
        p.groups_joined, p.groups_left, p.gained, p.lost, p.raised, p.lowered, p.path_rows, p.last_changed_at,
        p.user_uuid, n.user_account_id
    from people p join named n using (user_uuid)
    order by p.last_changed_at desc,
        case when p.joined then 1 when p.left_workspace then 2
             when p.groups_joined <> '' and p.groups_left <> '' then 3 else 4 end,
        n.user_display_name, p.workspace_slug, p.user_uuid
"""
WHAT = ("joined", "left", "moved", "access changed")


def change_summary(start: datetime, end: datetime, workspace: str | None) -> pd.DataFrame:
    """Per person and workspace, what the period's changes did (`CHANGE_SUMMARY`), the latest first: one row
    per person, few enough to pick by `what` on the page."""
    return query(CHANGE_SUMMARY, {"from": start, "to": end, "ws": workspace})


def change_counts(start: datetime, end: datetime, workspace: str | None) -> dict[str, int]:
    """Grant-path rows added, removed and changed over the period."""
    frame = query(
        "select change, count(*) as n from marts.fct_access_changes where changed_at >= $from "
        "and changed_at <= $to and ($ws is null or workspace_slug = $ws) group by change",
        {"from": start, "to": end, "ws": workspace},
    )
    return {str(c): int(n) for c, n in zip(frame.change, frame.n, strict=True)}


def changes(start: datetime, end: datetime, workspace: str | None, user: str | None = None) -> pd.DataFrame:
    """The period's grant-path rows, newest first, groups' own grants before the people's rows of the same
    sync, then by name; the path in words (a group's own grant says `group grant`, a membership `member of
    group ...`, where grant_source says `direct` for both)."""
    return query(
        "select principal_name as name, changed_at, change, workspace_slug, resource_type, resource_key, "
        "access_path as path, old_permission, new_permission, principal_type, principal_id, user_account_id, "
        "grant_source, via_group_slug, via_project_key, sync_id "
        "from marts.fct_access_changes where changed_at >= $from and changed_at <= $to "
        "and ($ws is null or workspace_slug = $ws) and ($user is null or principal_id = $user) "
        "order by changed_at desc, principal_type <> 'group', principal_name, workspace_slug, resource_type, "
        "resource_key, path",
        {"from": start, "to": end, "ws": workspace, "user": user},
    )


# The risk register (findings with their severity and guidance, `checked: none` for a risk without one), the
# most severe first; the words are dbt's seed (dbt_project/seeds/risk_guidance.csv), as in risks.csv. At or
# after the latest sync it is read from the marts (`marts.risk_register`), earlier judged from the history.
_REGISTER_COLUMNS = """
    select risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail,
           severity, why_it_matters, what_to_do, is_finding, status, area
"""
_REGISTER_ORDER = "order by severity_order, risk, workspace_slug, resource_key, user_display_name"
_IN_AREA = "where $area is null or area = $area"
RISKS = f"{_REGISTER_COLUMNS} from marts.risk_register_as_of($to, $ws) {_IN_AREA} {_REGISTER_ORDER}"
LATEST_RISKS = f"{_REGISTER_COLUMNS} from marts.risk_register($ws) {_IN_AREA} {_REGISTER_ORDER}"


def _utc(moment) -> pd.Timestamp:
    """A timestamp in UTC (a naive one is taken to be UTC, as the warehouse's are)."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def risks(as_of: datetime, workspace: str | None, area: str | None = None) -> pd.DataFrame:
    """The register at `as_of`: every risk (or those of one `area`, `access` or `change control`)."""
    latest = query("select max(synced_at) as latest from marts.fct_sync_summary").latest.iloc[0]
    if latest is not None and not pd.isna(latest) and _utc(as_of) >= _utc(latest):
        try:
            return query(LATEST_RISKS, {"ws": workspace, "area": area})
        except duckdb.CatalogException:  # a warehouse built before the macro existed
            pass
    return query(RISKS, {"to": as_of, "ws": workspace, "area": area})


# Provisioning rows with the person's and the group's names first (the ids stay, for the CSV), filtered in
# SQL.
# A person the snapshot does not know (a request for an account id never seen) keeps their id as the name.
_NAMED_PROVISIONING = """
    select coalesce(u.user_display_name, r.{person}) as person,
           coalesce(g.group_name, r.group_slug) as group_name, r.*
    from {table} as r
    left join marts.dim_users as u on r.{person} in (u.user_uuid, u.account_id)
    left join marts.dim_groups as g on g.workspace_slug = r.workspace_slug and g.group_slug = r.group_slug
    where $ws is null or r.workspace_slug = $ws
    order by r.{newest} desc
"""


def provisioning(workspace: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requests and every attempt, named, with whatever columns the warehouse has (older ones lack the
    newer)."""
    try:
        requests = query(
            _NAMED_PROVISIONING.format(
                table="provisioning.access_requests", person="user_id", newest="updated_at"
            ),
            {"ws": workspace},
        )
        log = query(
            _NAMED_PROVISIONING.format(
                table="provisioning.actions", person="user_uuid", newest="attempted_at"
            ),
            {"ws": workspace},
        )
    except duckdb.CatalogException:
        return pd.DataFrame(), pd.DataFrame()
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
