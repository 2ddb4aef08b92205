-- For the sync in progress: the repositories whose permission lists it must still read, and why. The prediction
-- is the warehouse's own access rules (macros/grant_paths.sql) over today's members, groups, project grants,
-- owners and group grants, with each repository's user grants as last read; where it disagrees with
-- Bitbucket's effective list read today, the repository's grants changed. New and due repositories are read in
-- the sync's first pass; the plan lists whatever of them is still unread. Compared only in workspaces whose
-- effective list the sync read.
with

running as (
    select sync_id from {{ source('bitbucket_sync_in_progress', 'syncs') }} where status in ('running', 'interrupted')
),

complete as ({{ complete_syncs(source('bitbucket_sync_in_progress', 'syncs')) }}),

previous as (
    select sync_id as previous_sync_id, workspace_slug
    from ({{ workspace_observations('complete') }})
    where is_latest_for_workspace
),

{% set raw = {
    'members': source('bitbucket_sync_in_progress', 'workspace_members'), 'group_members': source('bitbucket_sync_in_progress', 'group_members'),
    'pup': source('bitbucket_sync_in_progress', 'project_user_permissions'), 'pgp': source('bitbucket_sync_in_progress', 'project_group_permissions'),
    'projects': source('bitbucket_sync_in_progress', 'projects'), 'repositories': source('bitbucket_sync_in_progress', 'repositories'),
    'rup': source('bitbucket_sync_in_progress', 'repository_user_permissions'),
    'rgp': source('bitbucket_sync_in_progress', 'repository_group_permissions'), 'lists': source('bitbucket_sync_in_progress', 'fetch_log'),
    'effective': source('bitbucket_sync_in_progress', 'effective_repository_permissions')} %}

today_wm as (
    select sync_id, workspace_uuid, workspace_slug, user_uuid, permission as workspace_role
    from {{ raw.members }} inner join running using (sync_id)
),

today_gm as (
    select sync_id, workspace_slug, group_slug, user_uuid from {{ raw.group_members }} inner join running using (sync_id)
),

today_pup as (select * from {{ raw.pup }} inner join running using (sync_id)),
today_pgp as (select * from {{ raw.pgp }} inner join running using (sync_id)),
today_prj as (select * from {{ raw.projects }} inner join running using (sync_id)),
today_rep as (select * from {{ raw.repositories }} inner join running using (sync_id)),

read_today as (
    select sync_id, workspace_slug, resource_id as repository_uuid, list
    from {{ raw.lists }} inner join running using (sync_id)
    where resource_type = 'repository'
),

{% for name, kind in [('rup', 'users'), ('rgp', 'groups')] %}
-- Each repository's {{ kind }} list: today's when read, else as the workspace's latest observation holds it.
today_{{ name }} as (
    select p.* exclude (observed_sync_id) from {{ raw[name] }} as p inner join running using (sync_id)
    union all by name
    select p.* exclude (sync_id, repository_slug, observed_sync_id), t.sync_id, t.repository_slug
    from {{ raw[name] }} as p
    inner join previous as o on p.sync_id = o.previous_sync_id and p.workspace_slug = o.workspace_slug
    inner join today_rep as t on t.workspace_slug = p.workspace_slug and t.repository_uuid = p.repository_uuid
    where not exists (
        select 1 from read_today as d
        where d.sync_id = t.sync_id and d.repository_uuid = p.repository_uuid and d.list = '{{ kind }}'
    )
),
{% endfor %}

paths as (
    {{ grant_paths('true', inputs={'wm': 'today_wm', 'gm': 'today_gm', 'pup': 'today_pup', 'pgp': 'today_pgp',
                                   'prj': 'today_prj', 'rup': 'today_rup', 'rgp': 'today_rgp', 'rep': 'today_rep'}) }}
),

predicted as (
    select sync_id, workspace_slug, resource_id as repository_uuid, principal_id as user_uuid,
        arg_max(permission, {{ permission_rank('permission') }}) as permission
    from paths
    where principal_type = 'user' and resource_type = 'repository'
    group by all
),

actual as (
    select sync_id, workspace_slug, repository_uuid, user_uuid, permission
    from {{ raw.effective }} inner join running using (sync_id)
    where permission <> 'none'
),

compared as (select distinct sync_id, workspace_slug from actual),

differences as (
    select d.sync_id, d.workspace_slug, d.repository_uuid, count(distinct d.user_uuid) as users
    from (
        (select * from predicted except select * from actual)
        union all
        (select * from actual except select * from predicted)
    ) as d
    inner join compared using (sync_id, workspace_slug)
    group by all
),

freshness as (select * from {{ ref('repository_list_freshness') }}),

reasons as (
    select t.sync_id, t.workspace_slug, t.repository_uuid, t.repository_slug,
        case
            when f.repository_uuid is null then 'new'
            when d.repository_uuid is not null
                then 'changed: effective access differs for ' || d.users || ' user' || case when d.users = 1 then '' else 's' end
            else f.due_reason
        end as reason
    from today_rep as t
    left join freshness as f using (sync_id, workspace_slug, repository_uuid)
    left join differences as d using (sync_id, workspace_slug, repository_uuid)
)

select *
from reasons as r
where reason is not null
    and not exists (
        select 1 from read_today as d
        where d.sync_id = r.sync_id and d.repository_uuid = r.repository_uuid and d.list = 'users'
    )
