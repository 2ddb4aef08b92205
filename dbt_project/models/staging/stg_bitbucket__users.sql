select
    s.synced_at,
    r.sync_id,
    r.user_uuid,
    r.account_id,
    r.display_name,
    r.nickname,
    r.user_type
from {{ source('bitbucket_raw', 'users') }} as r
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
