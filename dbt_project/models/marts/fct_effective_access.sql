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
    permission_rank,
    grant_path_count,
    top_grant_paths as grant_paths,
    all_grant_path_count,
    all_grant_paths,
    access_paths,
    grant_sources,
    via_group_slugs,
    via_project_keys,
    is_workspace_member,
    l.permissions_read_at
from ({{ effective_access(ref('fct_grants'), extra_columns=['sync_id', 'synced_at']) }}) as e
-- When the project's or repository's permission lists were read (carried forward lists keep their date).
left join (
    select sync_id, resource_type, resource_id, min(read_at) as permissions_read_at
    from {{ ref('stg_bitbucket__permission_lists') }}
    where {{ latest_observation() }}
    group by all
) as l using (sync_id, resource_type, resource_id)
