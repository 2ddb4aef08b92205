{#
  The grant-path expansion, restricted to the syncs that `sync_filter` (a predicate on sync_id) selects and,
  for the inputs that belong to a workspace, to the observations `observation_filter` (a predicate on
  sync_id and workspace_slug) selects; by default the same as `sync_filter`. The restriction is applied to
  every input first, so a model that needs each workspace's latest observation (fct_grants) or the new syncs
  (fct_grant_history) never expands the others: the daily cost does not grow with the raw snapshots retained.
#}
{#
  A grant whose permission is `none` (the spec lists it in every permission enum; no page says it grants
  anything) is kept in raw and staging but is never a grant path, so never access.
#}
{#
  `inputs` replaces the staging relations (keys wm, gm, pup, pgp, prj, rup, rgp, rep) with relations or CTEs of
  the same columns: the refresh plan predicts access this way from a sync still in progress.
#}
{% macro grant_paths(sync_filter, observation_filter=none, inputs=none) %}
{% set ws_filter = observation_filter or sync_filter %}
{% set i = inputs or {
    'wm': ref('stg_bitbucket__workspace_members'), 'gm': ref('int_group_memberships'),
    'pup': ref('stg_bitbucket__project_user_permissions'), 'pgp': ref('stg_bitbucket__project_group_permissions'),
    'prj': ref('stg_bitbucket__projects'), 'rup': ref('stg_bitbucket__repository_user_permissions'),
    'rgp': ref('stg_bitbucket__repository_group_permissions'), 'rep': ref('stg_bitbucket__repositories')} %}
with

wm as (select * from {{ i.wm }} where {{ ws_filter }}),
gm as (select * from {{ i.gm }} where {{ ws_filter }}),
pup as (select * from {{ i.pup }} where {{ ws_filter }} and permission <> 'none'),
pgp as (select * from {{ i.pgp }} where {{ ws_filter }} and permission <> 'none'),
prj as (select * from {{ i.prj }} where {{ ws_filter }}),
rup as (select * from {{ i.rup }} where {{ ws_filter }} and permission <> 'none'),
rgp as (select * from {{ i.rgp }} where {{ ws_filter }} and permission <> 'none'),
rep as (select * from {{ i.rep }} where {{ ws_filter }}),

owners as (select sync_id, workspace_slug, user_uuid from wm where workspace_role = 'owner'),

memberships as (select sync_id, workspace_slug, group_slug, user_uuid from gm),

workspace_roles as (
    select
        sync_id, workspace_slug, 'workspace' as resource_type, workspace_uuid as resource_id,
        workspace_slug as resource_key, 'user' as principal_type, user_uuid as principal_id,
        workspace_role as permission, 'direct' as grant_source,
        null::varchar as via_group_slug, null::varchar as via_project_key
    from wm
),

group_memberships as (
    select sync_id, workspace_slug, 'group', group_slug, group_slug, 'user', user_uuid, 'member', 'direct', null, null
    from memberships
),

project_direct as (
    select sync_id, workspace_slug, 'project', project_uuid, project_key, 'user', user_uuid, permission, 'direct', null, null
    from pup
    union all
    select sync_id, workspace_slug, 'project', project_uuid, project_key, 'group', group_slug, permission, 'direct', null, null
    from pgp
),

project_via_group as (
    select p.sync_id, p.workspace_slug, 'project', p.project_uuid, p.project_key, 'user', m.user_uuid,
        p.permission, 'group', p.group_slug, null
    from pgp as p
    inner join memberships as m using (sync_id, workspace_slug, group_slug)
),

project_via_owner as (
    select p.sync_id, p.workspace_slug, 'project', p.project_uuid, p.project_key, 'user', o.user_uuid,
        'admin', 'workspace', null, null
    from prj as p
    inner join owners as o using (sync_id, workspace_slug)
),

repository_direct as (
    select sync_id, workspace_slug, 'repository', repository_uuid, repository_slug, 'user', user_uuid,
        permission, 'direct', null, null
    from rup
    union all
    select sync_id, workspace_slug, 'repository', repository_uuid, repository_slug, 'group', group_slug,
        permission, 'direct', null, null
    from rgp
),

repository_via_group as (
    select r.sync_id, r.workspace_slug, 'repository', r.repository_uuid, r.repository_slug, 'user', m.user_uuid,
        r.permission, 'group', r.group_slug, null
    from rgp as r
    inner join memberships as m using (sync_id, workspace_slug, group_slug)
),

-- Project grants reach every repository of the project, for users directly or through a group.
project_grants_on_users as (
    select sync_id, workspace_slug, project_uuid, user_uuid, permission, null::varchar as via_group_slug
    from pup
    union all
    select p.sync_id, p.workspace_slug, p.project_uuid, m.user_uuid, p.permission, p.group_slug
    from pgp as p
    inner join memberships as m using (sync_id, workspace_slug, group_slug)
),

repository_via_project as (
    select r.sync_id, r.workspace_slug, 'repository', r.repository_uuid, r.repository_slug, 'user', g.user_uuid,
        {{ project_to_repository_permission('g.permission') }}, 'project', g.via_group_slug, r.project_key
    from rep as r
    inner join project_grants_on_users as g
        on r.sync_id = g.sync_id and r.workspace_slug = g.workspace_slug and r.project_uuid = g.project_uuid
),

repository_via_owner as (
    select r.sync_id, r.workspace_slug, 'repository', r.repository_uuid, r.repository_slug, 'user', o.user_uuid,
        'admin', 'workspace', null, null
    from rep as r
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
{% endmacro %}


{# Grant paths with the names analysts read and a stable grant_key, for the syncs and observations selected. #}
{% macro named_grant_paths(sync_filter, observation_filter=none) %}
{% set ws_filter = observation_filter or sync_filter %}
with

paths as ({{ grant_paths(sync_filter, observation_filter) }}),

syncs as (select sync_id, synced_at from {{ ref('stg_bitbucket__syncs') }} where {{ sync_filter }}),

resource_names as (
    select sync_id, 'workspace' as resource_type, workspace_uuid as resource_id, workspace_name as resource_name
    from {{ ref('stg_bitbucket__workspaces') }} where {{ ws_filter }}
    union all
    select sync_id, 'project', project_uuid, project_name from {{ ref('stg_bitbucket__projects') }} where {{ ws_filter }}
    union all
    select sync_id, 'repository', repository_uuid, repository_name
    from {{ ref('stg_bitbucket__repositories') }} where {{ ws_filter }}
),

group_names as (
    select sync_id, workspace_slug, group_slug, group_name from {{ ref('stg_bitbucket__groups') }} where {{ ws_filter }}
),

users as (
    select sync_id, user_uuid, account_id, display_name from {{ ref('stg_bitbucket__users') }} where {{ sync_filter }}
)

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
inner join syncs as s using (sync_id)
left join resource_names as rn
    on p.sync_id = rn.sync_id and p.resource_type = rn.resource_type and p.resource_id = rn.resource_id
left join group_names as gr
    on p.resource_type = 'group' and p.sync_id = gr.sync_id and p.workspace_slug = gr.workspace_slug
    and p.resource_key = gr.group_slug
left join group_names as gp
    on p.principal_type = 'group' and p.sync_id = gp.sync_id and p.workspace_slug = gp.workspace_slug
    and p.principal_id = gp.group_slug
left join users as u on p.principal_type = 'user' and p.sync_id = u.sync_id and p.principal_id = u.user_uuid
{% endmacro %}
