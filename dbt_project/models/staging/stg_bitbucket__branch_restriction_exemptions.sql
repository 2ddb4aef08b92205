select
    s.synced_at,
    r.sync_id,
    r.workspace_uuid,
    r.workspace_slug,
    r.repository_uuid,
    r.restriction_id,
    r.principal_type,
    r.principal_id,
    r.account_id,
    r.principal_name
from {{ source('bitbucket_raw', 'branch_restriction_exemptions') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
