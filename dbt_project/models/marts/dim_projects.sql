select
    p.workspace_slug,
    p.project_uuid,
    p.project_key,
    p.project_name,
    p.is_private,
    p.created_on,
    p.updated_on,
    p.sync_id,
    p.synced_at
from {{ ref('stg_bitbucket__projects') }} as p
inner join {{ ref('stg_bitbucket__syncs') }} as s on p.sync_id = s.sync_id and s.is_latest
