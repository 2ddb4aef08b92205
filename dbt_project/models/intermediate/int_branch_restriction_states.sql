-- Every branch restriction rule of every repository in every complete snapshot that holds the repository's
-- change control (read then, or carried), and in the snapshots where the rule is absent although the
-- repository's rules were there: the states history and change events are made of. Carried rows repeat the
-- sync that read them, so a change is dated by the read that saw it (`read_at`), not by the snapshot.
with observations as (
    select sync_id, synced_at, workspace_slug, resource_id as repository_uuid, read_at, observed_sync_id
    from {{ ref('stg_bitbucket__change_control_reads') }}
    where resource_type = 'repository' and list = 'branch_restrictions'
),

exempt as (
    select
        sync_id,
        repository_uuid,
        restriction_id,
        list(
            case when principal_type = 'user' then 'user ' || coalesce(principal_name, principal_id) || ' ' || principal_id
                else 'group ' || principal_id end
            order by principal_type, principal_id
        ) as exemptions
    from {{ ref('stg_bitbucket__branch_restriction_exemptions') }}
    group by all
),

rules as (
    select
        b.sync_id,
        b.repository_uuid,
        b.repository_slug,
        b.restriction_id,
        b.kind,
        case when b.branch_match_kind = 'glob' then b.pattern else 'branch type ' || b.branch_type end as matcher,
        b.value,
        coalesce(e.exemptions, []) as exemptions
    from {{ ref('stg_bitbucket__branch_restrictions') }} as b
    left join exempt as e using (sync_id, repository_uuid, restriction_id)
),

keys as (
    select distinct repository_uuid, restriction_id from rules
)

select
    o.sync_id,
    o.synced_at,
    o.workspace_slug,
    o.repository_uuid,
    k.restriction_id,
    o.read_at,
    o.observed_sync_id,
    r.restriction_id is not null as is_present,
    r.repository_slug,
    r.kind,
    r.matcher,
    r.value,
    r.exemptions,
    row_number() over (partition by o.repository_uuid, k.restriction_id order by o.synced_at) as observation_number
from observations as o
inner join keys as k using (repository_uuid)
left join rules as r on o.sync_id = r.sync_id and o.repository_uuid = r.repository_uuid
    and k.restriction_id = r.restriction_id
