select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.project_uuid,
    r.project_key,
    r.name as project_name,
    r.is_private,
    r.created_on,
    r.updated_on
from {{ source('bitbucket_raw', 'projects') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
