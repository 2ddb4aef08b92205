select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.repository_uuid,
    r.repository_slug,
    r.restriction_id,
    r.kind,
    r.branch_match_kind,
    -- Bitbucket sends "" for branching-model rules.
    nullif(r.pattern, '') as pattern,
    r.branch_type,
    r.value,
    coalesce(r.observed_sync_id, r.sync_id) as observed_sync_id
from {{ source('bitbucket_raw', 'branch_restrictions') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
