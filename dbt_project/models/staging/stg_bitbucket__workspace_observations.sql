-- One row per workspace a complete sync covered: the unit of observation. A sync run with a narrower
-- BITBUCKET_WORKSPACES says nothing about the workspaces it left out, so they keep their last observed
-- state (is_latest_for_workspace stays on their last covering sync) and are never read as removals.
with covered as (
    select sync_id, synced_at, unnest(workspaces) as workspace_slug
    from {{ ref('stg_bitbucket__syncs') }}
)

select
    sync_id,
    workspace_slug,
    synced_at,
    sync_id || '|' || workspace_slug as observation_key,
    row_number() over (partition by workspace_slug order by synced_at desc) = 1 as is_latest_for_workspace
from covered
