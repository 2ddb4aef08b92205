{{
    config(
        materialized='incremental',
        unique_key='grant_version_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook='{{ backfill_history_columns() }}',
    )
}}
-- Every grant path with the period it held: valid_from (the sync it was first seen in) to valid_to (the
-- sync it was first missing from; null while current). Built incrementally from complete syncs newer
-- than the last one processed, plus the versions still open, and writes only the versions that changed:
-- the daily cost follows the changes and the current grants, not the number of days kept. A grant that
-- disappears is closed; a re-grant opens a new version. Running again with no new sync changes nothing.
-- Each workspace has its own timeline: the syncs that covered it. A sync that left a workspace out (a
-- narrower BITBUCKET_WORKSPACES) neither closes nor continues that workspace's versions.

{% set attrs = ['workspace_slug', 'resource_type', 'resource_id', 'resource_key', 'resource_name', 'principal_type',
                'principal_id', 'principal_name', 'user_account_id', 'permission', 'grant_source', 'via_group_slug',
                'via_project_key'] %}

with

head as (
    {% if is_incremental() %}
    select max(last_sync_at) as head_at from {{ this }}
    {% else %}
    select null::timestamptz as head_at
    {% endif %}
),

new_syncs as (
    select sync_id, synced_at
    from {{ ref('stg_bitbucket__syncs') }}
    where (select head_at from head) is null or synced_at > (select head_at from head)
),

new_observations as (
    select sync_id, workspace_slug, synced_at,
        row_number() over (partition by workspace_slug order by synced_at) as seq
    from {{ ref('stg_bitbucket__workspace_observations') }}
    where sync_id in (select sync_id from new_syncs)
),

last_observation as (
    select workspace_slug, max(seq) as last_seq from new_observations group by workspace_slug
),

new_paths as (
    select p.grant_key, n.seq, {% for a in attrs %}p.{{ a }}{{ ',' if not loop.last }}{% endfor %}
    from ({{ named_grant_paths("sync_id in (select sync_id from new_syncs)") }}) as p
    inner join new_observations as n on p.sync_id = n.sync_id and p.workspace_slug = n.workspace_slug
),

{% if is_incremental() %}
open_versions as (
    select * from {{ this }} where valid_to is null
),

-- An open version that every new observation of its workspace saw again simply continues: its row stays as it
-- is, so it is left out of the islands below. Most grant paths, most days: the islands then cost what changed.
unchanged as (
    select o.grant_key
    from open_versions as o
    inner join (select grant_key, count(*) as times from new_paths group by grant_key) as seen using (grant_key)
    inner join last_observation as l on l.workspace_slug = o.workspace_slug
    where seen.times = l.last_seq
),
{% endif %}

timeline as (
    select grant_key, seq, null::timestamptz as carried_from, null::varchar as carried_sync_id,
        {% for a in attrs %}{{ a }}{{ ',' if not loop.last }}{% endfor %}
    from new_paths
    {% if is_incremental() %}
    where grant_key not in (select grant_key from unchanged)
    union all
    -- Versions still open from earlier runs take part as "sync 0", so they continue or close.
    select grant_key, 0, valid_from, first_seen_sync_id,
        {% for a in attrs %}{{ a }}{{ ',' if not loop.last }}{% endfor %}
    from open_versions
    where grant_key not in (select grant_key from unchanged)
    {% endif %}
),

islands as (
    select *, seq - row_number() over (partition by grant_key order by seq) as island
    from timeline
),

versions as (
    select
        grant_key,
        min(seq) as first_seq,
        max(seq) as last_seq,
        max(carried_from) as carried_from,
        max(carried_sync_id) as carried_sync_id,
        {% for a in attrs %}arg_max({{ a }}, seq) as {{ a }}{{ ',' if not loop.last }}{% endfor %}
    from islands
    group by grant_key, island
)

select
    md5(v.grant_key || '|' || strftime(coalesce(v.carried_from, f.synced_at), '%Y-%m-%dT%H:%M:%S.%f'))
        as grant_version_id,
    v.grant_key,
    {% for a in attrs %}v.{{ a }},{% endfor %}
    coalesce(v.carried_from, f.synced_at) as valid_from,
    nxt.synced_at as valid_to,
    coalesce(v.carried_sync_id, f.sync_id) as first_seen_sync_id,
    nxt.sync_id as closed_by_sync_id,
    nxt.synced_at is null as is_current,
    (select max(synced_at) from new_syncs) as last_sync_at,
    -- Added after the table existed: at its end, so a warehouse built before gains them (backfilled below).
    {{ permission_rank('v.permission') }} as permission_rank,
    case when v.principal_type = 'user' then v.principal_name end as user_display_name,
    {{ grant_path_text('v.grant_source', 'v.via_group_slug', 'v.via_project_key', 'v.permission') }} as access_path
from versions as v
left join new_observations as f on f.workspace_slug = v.workspace_slug and f.seq = v.first_seq
left join new_observations as nxt on nxt.workspace_slug = v.workspace_slug and nxt.seq = v.last_seq + 1
left join last_observation as l on l.workspace_slug = v.workspace_slug
where exists (select 1 from new_syncs)
    -- A version carried from earlier runs that is still open has not changed (or its workspace was not
    -- observed since): leave its row alone, so a day writes only what changed (new versions and closed ones).
    and not (v.first_seq = 0 and v.last_seq = coalesce(l.last_seq, 0))
