-- Grant paths with the names analysts read, for every complete sync.
with

paths as (select * from {{ ref('int_grant_paths') }}),

resource_names as (
    select sync_id, 'workspace' as resource_type, workspace_uuid as resource_id, workspace_name as resource_name
    from {{ ref('stg_bitbucket__workspaces') }}
    union all
    select sync_id, 'project', project_uuid, project_name from {{ ref('stg_bitbucket__projects') }}
    union all
    select sync_id, 'repository', repository_uuid, repository_name from {{ ref('stg_bitbucket__repositories') }}
),

group_names as (
    select sync_id, workspace_slug, group_slug, group_name from {{ ref('stg_bitbucket__groups') }}
),

users as (select sync_id, user_uuid, account_id, display_name from {{ ref('stg_bitbucket__users') }})

select
    p.sync_id,
    s.synced_at,
    p.workspace_slug,
    p.resource_type,
    p.resource_id,
    p.resource_key,
    coalesce(rn.resource_name, gr.group_name, p.resource_key) as resource_name,
    p.principal_type,
    p.principal_id,
    case p.principal_type when 'user' then u.display_name else gp.group_name end as principal_name,
    case p.principal_type when 'user' then u.account_id end as user_account_id,
    p.permission,
    p.grant_source,
    p.via_group_slug,
    p.via_project_key,
    md5(concat_ws('|', p.workspace_slug, p.resource_type, p.resource_id, p.principal_type, p.principal_id,
        p.permission, p.grant_source, coalesce(p.via_group_slug, ''), coalesce(p.via_project_key, ''))) as grant_key
from paths as p
inner join {{ ref('stg_bitbucket__syncs') }} as s using (sync_id)
left join resource_names as rn
    on p.sync_id = rn.sync_id and p.resource_type = rn.resource_type and p.resource_id = rn.resource_id
left join group_names as gr
    on p.resource_type = 'group' and p.sync_id = gr.sync_id and p.workspace_slug = gr.workspace_slug
    and p.resource_key = gr.group_slug
left join group_names as gp
    on p.principal_type = 'group' and p.sync_id = gp.sync_id and p.workspace_slug = gp.workspace_slug
    and p.principal_id = gp.group_slug
left join users as u on p.principal_type = 'user' and p.sync_id = u.sync_id and p.principal_id = u.user_uuid
