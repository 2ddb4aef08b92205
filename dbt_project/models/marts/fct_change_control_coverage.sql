-- Per workspace and complete sync: how many repositories' change control is known (coverage, until the rolling
-- first pass completes), and the share of production branches protected by a push restriction, over time.
with reads as (
    select sync_id, workspace_slug, resource_id as repository_uuid, min(read_at) as read_at
    from {{ ref('stg_bitbucket__change_control_reads') }}
    where resource_type = 'repository' and list = 'branch_restrictions'
    group by all
),

models as (
    select sync_id, repository_uuid, production_branch, development_branch
    from {{ ref('stg_bitbucket__branching_models') }}
),

repos as (
    select
        r.sync_id,
        r.synced_at,
        r.workspace_slug,
        r.repository_uuid,
        coalesce(m.production_branch, r.mainbranch) as production_branch,
        m.production_branch is not null as by_model,
        m.development_branch,
        x.read_at
    from {{ ref('stg_bitbucket__repositories') }} as r
    left join models as m using (sync_id, repository_uuid)
    left join reads as x using (sync_id, repository_uuid)
),

pushes as (
    select distinct r.sync_id, r.repository_uuid
    from repos as r
    inner join {{ ref('stg_bitbucket__branch_restrictions') }} as b using (sync_id, repository_uuid)
    where b.kind = 'push' and case
        when b.branch_match_kind = 'glob'
            then regexp_full_match(r.production_branch, replace(regexp_escape(coalesce(b.pattern, '')), '\*', '.*'))
        when b.branch_type = 'production' then r.by_model
        when b.branch_type = 'development' then r.production_branch = r.development_branch
        else starts_with(r.production_branch, b.branch_type || '/')
    end
)

select
    r.sync_id,
    r.synced_at,
    r.workspace_slug,
    w.change_control,
    count(*) as repositories,
    count(r.read_at) as repositories_read,
    round(count(r.read_at) / count(*), 4) as coverage,
    count(p.repository_uuid) as production_branches_push_restricted,
    round(count(p.repository_uuid) / nullif(count(r.read_at), 0), 4) as share_push_restricted,
    min(r.read_at) as oldest_read_at
from repos as r
left join pushes as p using (sync_id, repository_uuid)
left join {{ ref('stg_bitbucket__workspaces') }} as w using (sync_id, workspace_slug)
group by all
