-- The branch restrictions that apply to each repository's production branch (int_production_branches), with
-- who they exempt. Glob: `*` matches any run of characters and every other character itself, over the whole
-- name, case-sensitively (the spec); `branching_model` rules match the branch of their type (production when
-- the branching model has one, development, or a prefix type such as `release/`).
with rules as (
    select * from {{ ref('stg_bitbucket__branch_restrictions') }} where {{ latest_observation() }}
),

exempt as (
    select
        sync_id,
        repository_uuid,
        restriction_id,
        list(principal_id order by principal_id) filter (where principal_type = 'user') as exempt_user_uuids,
        list(principal_id order by principal_id) filter (where principal_type = 'group') as exempt_group_slugs,
        list(
            case when principal_type = 'user' then coalesce(principal_name, principal_id)
                else 'group ' || principal_id end
            order by principal_type desc, principal_id
        ) as exempt_names
    from {{ ref('stg_bitbucket__branch_restriction_exemptions') }}
    where {{ latest_observation() }}
    group by all
)

select
    b.sync_id,
    b.workspace_slug,
    b.repository_uuid,
    b.production_branch,
    r.restriction_id,
    r.kind,
    r.value,
    r.branch_match_kind,
    r.pattern,
    r.branch_type,
    case when r.branch_match_kind = 'glob' then r.pattern else 'branch type ' || r.branch_type end as matcher,
    coalesce(e.exempt_user_uuids, []) as exempt_user_uuids,
    coalesce(e.exempt_group_slugs, []) as exempt_group_slugs,
    coalesce(e.exempt_names, []) as exempt_names
from {{ ref('int_production_branches') }} as b
inner join rules as r using (sync_id, repository_uuid)
left join exempt as e using (sync_id, repository_uuid, restriction_id)
where
    case
        when r.branch_match_kind = 'glob'
            then regexp_full_match(b.production_branch, replace(regexp_escape(coalesce(r.pattern, '')), '\*', '.*'))
        when r.branch_type = 'production' then b.production_branch_source = 'branching_model'
        when r.branch_type = 'development' then b.production_branch = b.development_branch
        else starts_with(b.production_branch, r.branch_type || '/')
    end
