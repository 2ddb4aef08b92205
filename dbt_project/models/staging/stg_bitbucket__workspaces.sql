select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.name as workspace_name,
    r.is_private,
    r.administrator as synced_as_administrator,
    r.created_on,
    coalesce(r.group_source, 'bitbucket-1.0') as group_source,
    -- Older syncs read it wherever the credential was an administrator.
    coalesce(r.effective_list, case when r.administrator then 'read' else 'not read' end) as effective_list,
    -- Syncs before change control was read leave it null.
    coalesce(r.change_control, 'not read (a sync before change control was read)') as change_control,
    coalesce(r.two_step_source, 'not reported') as two_step_source
from {{ source('bitbucket_raw', 'workspaces') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
