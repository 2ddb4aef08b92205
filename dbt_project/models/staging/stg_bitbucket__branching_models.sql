select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.repository_uuid,
    r.repository_slug,
    r.production_branch,
    r.production_use_mainbranch,
    r.development_branch,
    r.branching_model_overridden,
    coalesce(r.observed_sync_id, r.sync_id) as observed_sync_id
from {{ source('bitbucket_raw', 'branching_models') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
