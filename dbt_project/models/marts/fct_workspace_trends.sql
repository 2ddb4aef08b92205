{{
    config(
        materialized='incremental',
        unique_key='sync_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}
-- What was held at each sync in the history, per workspace (and, with `workspace_slug` null, over every
-- workspace): the dashboard's trends and its workspace filter read this, so both count the same way.
-- Incremental: what was held at a sync never changes once the history has folded that sync in (later syncs
-- only close versions after it and open new ones), so a run counts only the syncs newer than its last; the
-- daily cost follows the current grants, not the number of days kept.
with

head as (
    {% if is_incremental() %}
    select max(synced_at) as head_at from {{ this }}
    {% else %}
    select null::timestamptz as head_at
    {% endif %}
),

new_syncs as (
    select sync_id, synced_at from {{ ref('stg_bitbucket__sync_manifests') }}
    where ((select head_at from head) is null or synced_at > (select head_at from head))
      -- only syncs the history has folded in (a run that selected this model alone counts them later)
      and synced_at <= (select max(last_sync_at) from {{ ref('fct_grant_history') }})
),

held as (
    select s.sync_id, s.synced_at, h.*
    from new_syncs as s
    inner join (
        -- Versions closed before the newest counted sync cannot be held at a newer one.
        select * from {{ ref('fct_grant_history') }}
        where (select head_at from head) is null or valid_to is null or valid_to > (select head_at from head)
    ) as h
        on h.valid_from <= s.synced_at and (h.valid_to is null or h.valid_to > s.synced_at)
)

select
    sync_id,
    any_value(synced_at) as synced_at,
    workspace_slug,
    count(distinct principal_id) filter (where principal_type = 'user') as users_with_access,
    count(distinct workspace_slug || '/' || resource_id) filter (where resource_type = 'group') as groups_with_members,
    count(distinct workspace_slug || '/' || resource_id) filter (where resource_type = 'repository') as repositories,
    count(distinct principal_id) filter (
        where principal_type = 'user' and permission in ('admin', 'owner')
    ) as owners_and_admins,
    count(*) as grant_paths
from held
group by grouping sets ((sync_id, workspace_slug), (sync_id))
