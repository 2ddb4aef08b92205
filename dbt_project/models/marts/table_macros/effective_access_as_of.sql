-- marts.effective_access_as_of(ts): the highest permission per user and resource at `ts`, with its paths.
{{ config(parameters=['as_of']) }}
select
    workspace_slug, resource_type, resource_id, resource_key, resource_name, user_uuid, user_account_id,
    user_display_name, permission,
    all_grant_paths as grant_paths,  -- every path, highest first (as this macro always gave them)
    grant_sources, via_group_slugs, via_project_keys, is_workspace_member, first_granted_at,
    access_paths,  -- the same paths in words, highest first
    permission_rank  -- to sort by: admin above write above read
from ({{ effective_access(unqualified(ref('access_as_of')) ~ '(as_of)', first_granted='min(valid_from)') }})
