-- One row per sync in the history: what it saw (users, groups, repositories from its manifest) and what was
-- held at that moment (grant paths; users holding admin or owner: fct_workspace_trends' row over every
-- workspace, counted once per sync), for the dashboard's trends.
select
    s.sync_id,
    s.synced_at,
    s.status,
    s.workspaces,
    cast(s.entity_counts ->> 'users' as integer) as users,
    cast(s.entity_counts ->> 'groups' as integer) as groups,
    cast(s.entity_counts ->> 'repositories' as integer) as repositories,
    coalesce(t.grant_paths, 0) as grant_paths,
    coalesce(t.owners_and_admins, 0) as owners_and_admins,
    -- The manifest, for evidence of completeness: every table's rows, the calls made, what was skipped.
    s.entity_counts,
    s.api_calls,
    s.anomalies,
    s.skipped_workspaces,
    s.refresh
from {{ ref('stg_bitbucket__sync_manifests') }} as s
left join {{ ref('fct_workspace_trends') }} as t on t.sync_id = s.sync_id and t.workspace_slug is null
