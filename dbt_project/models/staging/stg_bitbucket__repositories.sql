select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.repository_uuid,
    r.repository_slug,
    r.full_name,
    r.name as repository_name,
    r.project_uuid,
    r.project_key,
    r.is_private,
    r.created_on,
    r.updated_on,
    -- The repository's main branch and fork policy, as its own object carries them (no extra call).
    json_extract_string(r.raw, '$.mainbranch.name') as mainbranch,
    json_extract_string(r.raw, '$.fork_policy') as fork_policy
from {{ source('bitbucket_raw', 'repositories') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
