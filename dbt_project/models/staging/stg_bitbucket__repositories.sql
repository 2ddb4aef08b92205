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
    r.updated_on
from {{ source('bitbucket_raw', 'repositories') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
