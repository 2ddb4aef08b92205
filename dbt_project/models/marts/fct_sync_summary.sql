-- One row per sync in the history: what it saw (users, groups, repositories from its manifest) and what was
-- held at that moment (grant paths; users holding admin or owner), for the dashboard's trends.
with held as (
    select
        s.sync_id,
        count(h.grant_key) as grant_paths,
        count(distinct h.principal_id) filter (
            where h.principal_type = 'user' and h.permission in ('admin', 'owner')
        ) as owners_and_admins
    from {{ ref('stg_bitbucket__sync_manifests') }} as s
    left join {{ ref('fct_grant_history') }} as h
        on h.valid_from <= s.synced_at and (h.valid_to is null or h.valid_to > s.synced_at)
    group by s.sync_id
)

select
    s.sync_id,
    s.synced_at,
    s.status,
    s.workspaces,
    cast(s.entity_counts ->> 'users' as integer) as users,
    cast(s.entity_counts ->> 'groups' as integer) as groups,
    cast(s.entity_counts ->> 'repositories' as integer) as repositories,
    h.grant_paths,
    h.owners_and_admins,
    -- The manifest, for evidence of completeness: every table's rows, the calls made, what was skipped.
    s.entity_counts,
    s.api_calls,
    s.anomalies,
    s.skipped_workspaces,
    s.refresh
from {{ ref('stg_bitbucket__sync_manifests') }} as s
inner join held as h using (sync_id)
