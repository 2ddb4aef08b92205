{{
    config(
        materialized='incremental',
        unique_key='change_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook='{{ backfill_change_columns() }}',
    )
}}
-- One row per grant path added, removed or changed (permission moved on the same path), with the sync
-- and time it was seen. A workspace's first observation is its baseline, not a wave of additions (also
-- for a workspace that joins the sync later); a sync that left a workspace out records no change there.
-- Incremental: a run reads only the history versions opened or closed after the newest change recorded.
with

head as (
    {% if is_incremental() %}
    select max(changed_at) as head_at from {{ this }}
    {% else %}
    select null::timestamptz as head_at
    {% endif %}
),

history as (
    select * from {{ ref('fct_grant_history') }}
    where (select head_at from head) is null
       or valid_from > (select head_at from head)
       or valid_to > (select head_at from head)
),

baseline as (
    select workspace_slug, min(valid_from) as baseline_at from {{ ref('fct_grant_history') }} group by workspace_slug
),

events as (
    select
        valid_from as changed_at, first_seen_sync_id as sync_id, 'added' as change,
        workspace_slug, resource_type, resource_id, resource_key, resource_name, principal_type, principal_id,
        principal_name, user_account_id, grant_source, via_group_slug, via_project_key,
        null::varchar as old_permission, permission as new_permission
    from history
    where valid_from > (select b.baseline_at from baseline as b where b.workspace_slug = history.workspace_slug)
      and ((select head_at from head) is null or valid_from > (select head_at from head))
    union all
    select
        valid_to, closed_by_sync_id, 'removed',
        workspace_slug, resource_type, resource_id, resource_key, resource_name, principal_type, principal_id,
        principal_name, user_account_id, grant_source, via_group_slug, via_project_key,
        permission, null
    from history
    where valid_to is not null and ((select head_at from head) is null or valid_to > (select head_at from head))
)

select
    md5(concat_ws('|', changed_at, workspace_slug, resource_type, resource_id, principal_type, principal_id,
        grant_source, coalesce(via_group_slug, ''), coalesce(via_project_key, ''))) as change_id,
    any_value(sync_id) as sync_id,
    changed_at,
    case when count(*) > 1 then 'changed' else any_value(change) end as change,
    workspace_slug,
    resource_type,
    resource_id,
    any_value(resource_key) as resource_key,
    any_value(resource_name) as resource_name,
    principal_type,
    principal_id,
    any_value(principal_name) as principal_name,
    any_value(user_account_id) as user_account_id,
    grant_source,
    via_group_slug,
    via_project_key,
    max(old_permission) as old_permission,
    max(new_permission) as new_permission,
    -- Added after the table existed: at its end, so a warehouse built before gains them (backfilled below).
    {{ permission_rank('max(old_permission)') }} as old_permission_rank,
    {{ permission_rank('max(new_permission)') }} as new_permission_rank,
    case when principal_type = 'user' then any_value(principal_name) end as user_display_name,
    {{ change_path_text(resource_key='any_value(resource_key)') }} as access_path
from events
group by changed_at, workspace_slug, resource_type, resource_id, principal_type, principal_id, grant_source,
    via_group_slug, via_project_key
