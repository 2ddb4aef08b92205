-- Every branch restriction rule per repository and branch pattern in each workspace's latest observation, with
-- who it exempts, whether it applies to the production branch, and when it was read.
with exempt as (
    {{ restriction_exemptions() }}
),

reads as (
    select sync_id, resource_id as repository_uuid, read_at, is_carried_forward
    from {{ ref('stg_bitbucket__change_control_reads') }}
    where {{ latest_observation() }} and resource_type = 'repository' and list = 'branch_restrictions'
)

select
    b.sync_id,
    b.synced_at,
    b.workspace_slug,
    b.repository_uuid,
    b.repository_slug,
    b.restriction_id,
    b.kind,
    b.branch_match_kind,
    b.pattern,
    b.branch_type,
    b.value,
    coalesce(e.exempt_user_uuids, []) as exempt_user_uuids,
    coalesce(e.exempt_group_slugs, []) as exempt_group_slugs,
    coalesce(e.exempt_names, []) as exempt_names,
    p.restriction_id is not null as applies_to_production,
    pb.production_branch,
    r.read_at,
    r.is_carried_forward
from {{ ref('stg_bitbucket__branch_restrictions') }} as b
left join exempt as e using (sync_id, repository_uuid, restriction_id)
left join {{ ref('int_production_branch_rules') }} as p using (sync_id, repository_uuid, restriction_id)
left join {{ ref('int_production_branches') }} as pb using (sync_id, repository_uuid)
left join reads as r using (sync_id, repository_uuid)
where {{ latest_observation('b.sync_id', 'b.workspace_slug') }}
