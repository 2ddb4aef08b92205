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
where {{ latest_observation('p.sync_id', 'p.workspace_slug') }}
