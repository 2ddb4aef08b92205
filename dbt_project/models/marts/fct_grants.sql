-- One row per grant path in each workspace's latest observation (the latest complete sync that covered it):
-- a workspace a newer sync left out keeps its last observed grants, with that sync's synced_at.
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
    case when principal_type = 'user' then principal_name end as user_display_name,
    user_account_id,
    permission,
    {{ permission_rank('permission') }} as permission_rank,
    grant_source,
    via_group_slug,
    via_project_key,
    grant_key,
    {{ grant_path_text() }} as access_path
from (
    {{ named_grant_paths(latest_observation_syncs(), latest_observation()) }}
)
