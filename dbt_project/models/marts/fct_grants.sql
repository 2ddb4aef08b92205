-- One row per grant path in the latest complete sync.
select
    sync_id,
    synced_at,
    workspace_slug,
    resource_type,
    resource_id,
    resource_key,
    resource_name,
    principal_type,
    principal_id,
    principal_name,
    user_account_id,
    permission,
    grant_source,
    via_group_slug,
    via_project_key,
    grant_key
from (
    {{ named_grant_paths("sync_id in (select sync_id from " ~ ref('stg_bitbucket__syncs') ~ " where is_latest)") }}
)
