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
    r.synced_at,
    -- How fresh its grants are: an incremental sync reads a repository's lists only when needed.
    l.permissions_read_at,
    l.permissions_read_in_sync_id,
    l.permissions_read_in_sync_id <> r.sync_id as permissions_carried_forward
from {{ ref('stg_bitbucket__repositories') }} as r
left join (
    select sync_id, resource_id as repository_uuid, min(read_at) as permissions_read_at,
        arg_min(observed_sync_id, read_at) as permissions_read_in_sync_id
    from {{ ref('stg_bitbucket__permission_lists') }}
    where resource_type = 'repository' and {{ latest_observation() }}
    group by all
) as l using (sync_id, repository_uuid)
where {{ latest_observation('r.sync_id', 'r.workspace_slug') }}
