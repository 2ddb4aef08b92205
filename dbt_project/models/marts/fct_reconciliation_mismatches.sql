-- Repository effective access as the marts compute it against Bitbucket's own effective permissions captured
-- in the same observations (workspaces the credential administers): every row here is a disagreement.
with ours as (
    select workspace_slug, resource_id as repository_uuid, user_uuid, permission
    from {{ ref('fct_effective_access') }}
    where resource_type = 'repository'
        -- Workspaces whose effective list was not read in their latest observation are not compared.
        and workspace_slug in (select workspace_slug from {{ ref('dim_workspaces') }} where effective_list = 'read')
),

theirs as (
    select e.workspace_slug, e.repository_uuid, e.user_uuid, e.permission
    from {{ ref('stg_bitbucket__effective_repository_permissions') }} as e
    where {{ latest_observation('e.sync_id', 'e.workspace_slug') }}
        and e.workspace_slug in (select workspace_slug from {{ ref('dim_workspaces') }} where effective_list = 'read')
        and e.permission <> 'none'
)

select 'only in fct_effective_access' as side, * from (select * from ours except select * from theirs)
union all
select 'only in Bitbucket' as side, * from (select * from theirs except select * from ours)
