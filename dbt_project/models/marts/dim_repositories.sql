select
    r.workspace_slug,
    r.repository_uuid,
    r.repository_slug,
    r.full_name,
    r.repository_name,
    r.project_uuid,
    r.project_key,
    r.is_private,
    -- Public: anyone, signed in or not, can read and clone it; Bitbucket's effective list names no such reader.
    not r.is_private as is_public,
    r.created_on,
    r.updated_on,
    r.sync_id,
    r.synced_at
from {{ ref('stg_bitbucket__repositories') }} as r
where {{ latest_observation('r.sync_id', 'r.workspace_slug') }}
