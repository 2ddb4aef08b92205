-- Every grant path of every complete sync, before names are attached.
-- A path says which principal holds which permission on which resource, and why:
--   direct    configured on this resource for this principal (a user or a group)
--   group     a user holds it through membership of via_group_slug
--   project   inherited by a repository from project via_project_key (create-repo gives write)
--   workspace implied by the workspace owner role (admin on every project and repository)
with

owners as (
    select sync_id, workspace_slug, user_uuid
    from {{ ref('stg_bitbucket__workspace_members') }}
    where workspace_role = 'owner'
),

memberships as (
    select sync_id, workspace_slug, group_slug, user_uuid from {{ ref('int_group_memberships') }}
),

workspace_roles as (
    select
        sync_id, workspace_slug, 'workspace' as resource_type, workspace_uuid as resource_id,
        workspace_slug as resource_key, 'user' as principal_type, user_uuid as principal_id,
        workspace_role as permission, 'direct' as grant_source,
        null::varchar as via_group_slug, null::varchar as via_project_key
    from {{ ref('stg_bitbucket__workspace_members') }}
),

group_memberships as (
    select
        sync_id, workspace_slug, 'group', group_slug, group_slug, 'user', user_uuid,
        'member', 'direct', null, null
    from memberships
),

project_direct as (
    select
        sync_id, workspace_slug, 'project', project_uuid, project_key, 'user', user_uuid,
        permission, 'direct', null, null
    from {{ ref('stg_bitbucket__project_user_permissions') }}
    union all
    select
        sync_id, workspace_slug, 'project', project_uuid, project_key, 'group', group_slug,
        permission, 'direct', null, null
    from {{ ref('stg_bitbucket__project_group_permissions') }}
),

project_via_group as (
    select
        p.sync_id, p.workspace_slug, 'project', p.project_uuid, p.project_key, 'user', m.user_uuid,
        p.permission, 'group', p.group_slug, null
    from {{ ref('stg_bitbucket__project_group_permissions') }} as p
    inner join memberships as m using (sync_id, workspace_slug, group_slug)
),

project_via_owner as (
    select
        p.sync_id, p.workspace_slug, 'project', p.project_uuid, p.project_key, 'user', o.user_uuid,
        'admin', 'workspace', null, null
    from {{ ref('stg_bitbucket__projects') }} as p
    inner join owners as o using (sync_id, workspace_slug)
),

repository_direct as (
    select
        sync_id, workspace_slug, 'repository', repository_uuid, repository_slug, 'user', user_uuid,
        permission, 'direct', null, null
    from {{ ref('stg_bitbucket__repository_user_permissions') }}
    union all
    select
        sync_id, workspace_slug, 'repository', repository_uuid, repository_slug, 'group', group_slug,
        permission, 'direct', null, null
    from {{ ref('stg_bitbucket__repository_group_permissions') }}
),

repository_via_group as (
    select
        r.sync_id, r.workspace_slug, 'repository', r.repository_uuid, r.repository_slug, 'user', m.user_uuid,
        r.permission, 'group', r.group_slug, null
    from {{ ref('stg_bitbucket__repository_group_permissions') }} as r
    inner join memberships as m using (sync_id, workspace_slug, group_slug)
),

-- Project grants reach every repository of the project, for users directly or through a group.
project_grants_on_users as (
    select sync_id, workspace_slug, project_uuid, user_uuid, permission, null::varchar as via_group_slug
    from {{ ref('stg_bitbucket__project_user_permissions') }}
    union all
    select p.sync_id, p.workspace_slug, p.project_uuid, m.user_uuid, p.permission, p.group_slug
    from {{ ref('stg_bitbucket__project_group_permissions') }} as p
    inner join memberships as m using (sync_id, workspace_slug, group_slug)
),

repository_via_project as (
    select
        r.sync_id, r.workspace_slug, 'repository', r.repository_uuid, r.repository_slug, 'user', g.user_uuid,
        {{ project_to_repository_permission('g.permission') }}, 'project', g.via_group_slug, r.project_key
    from {{ ref('stg_bitbucket__repositories') }} as r
    inner join project_grants_on_users as g
        on r.sync_id = g.sync_id and r.workspace_slug = g.workspace_slug and r.project_uuid = g.project_uuid
),

repository_via_owner as (
    select
        r.sync_id, r.workspace_slug, 'repository', r.repository_uuid, r.repository_slug, 'user', o.user_uuid,
        'admin', 'workspace', null, null
    from {{ ref('stg_bitbucket__repositories') }} as r
    inner join owners as o using (sync_id, workspace_slug)
)

select * from workspace_roles
union all select * from group_memberships
union all select * from project_direct
union all select * from project_via_group
union all select * from project_via_owner
union all select * from repository_direct
union all select * from repository_via_group
union all select * from repository_via_project
union all select * from repository_via_owner
