-- One row per (user, resource) in each workspace's latest observation: the highest permission the user really
-- holds, and the grant paths that produce it. A lower grant never overrides a higher one (macros/access_rules.sql).
select
    sync_id,
    synced_at,
    workspace_slug,
    resource_type,
    resource_id,
    resource_key,
    resource_name,
    user_uuid,
    user_account_id,
    user_display_name,
    permission,
    grant_path_count,
    top_grant_paths as grant_paths,
    all_grant_path_count,
    all_grant_paths,
    access_paths,
    grant_sources,
    via_group_slugs,
    via_project_keys,
    is_workspace_member
from ({{ effective_access(ref('fct_grants'), extra_columns=['sync_id', 'synced_at']) }})
