-- Every version of every branch restriction rule, per repository and branch pattern, with `valid_from` /
-- `valid_to` (null while current): dated by the read that saw the version first and the one that saw it end.
with states as (
    select
        *,
        sum(case when is_present is distinct from prev_present or (is_present and fingerprint is distinct from prev_fingerprint) then 1 else 0 end)
            over (partition by repository_uuid, restriction_id order by synced_at rows unbounded preceding) as version
    from (
        select
            *,
            kind || '|' || coalesce(matcher, '') || '|' || coalesce(value::varchar, '') || '|'
            || array_to_string(coalesce(exemptions, []), ',') as fingerprint,
            lag(is_present) over w as prev_present,
            lag(kind || '|' || coalesce(matcher, '') || '|' || coalesce(value::varchar, '') || '|'
                || array_to_string(coalesce(exemptions, []), ',')) over w as prev_fingerprint
        from {{ ref('int_branch_restriction_states') }}
        window w as (partition by repository_uuid, restriction_id order by synced_at)
    )
),

versions as (
    select
        repository_uuid,
        restriction_id,
        version,
        any_value(workspace_slug) as workspace_slug,
        arg_max(repository_slug, synced_at) as repository_slug,
        any_value(kind) as kind,
        any_value(matcher) as matcher,
        any_value(value) as value,
        any_value(exemptions) as exemptions,
        min(read_at) as valid_from,
        arg_min(observed_sync_id, synced_at) as first_seen_sync_id,
        max(synced_at) as last_sync_at
    from states
    where is_present
    group by all
),

ends as (
    select repository_uuid, restriction_id, version, min(read_at) as ended_at, arg_min(sync_id, synced_at) as closed_by
    from states
    group by all
)

select
    v.repository_uuid || '|' || v.restriction_id || '|' || v.version as rule_version_id,
    v.workspace_slug,
    v.repository_uuid,
    v.repository_slug,
    v.restriction_id,
    v.kind,
    v.matcher,
    v.value,
    v.exemptions,
    v.valid_from,
    e.ended_at as valid_to,
    v.first_seen_sync_id,
    e.closed_by as closed_by_sync_id,
    e.ended_at is null as is_current,
    v.last_sync_at
from versions as v
left join ends as e on v.repository_uuid = e.repository_uuid and v.restriction_id = e.restriction_id
    and e.version = v.version + 1
