-- One row per change to a branch restriction rule, dated by the read that saw it (docs/design.md, "Change
-- control"): `rule_removed`, `rule_weakened` (fewer approvals or builds asked for), `exemption_added`,
-- `exemption_removed`, `rule_added`, `rule_changed` (matcher or kind). A repository's first observation is its
-- baseline, not a change.
with states as (
    select
        *,
        lag(is_present) over w as was_present,
        lag(kind) over w as old_kind,
        lag(matcher) over w as old_matcher,
        lag(value) over w as old_value,
        lag(exemptions) over w as old_exemptions,
        lag(repository_slug) over w as old_repository_slug
    from {{ ref('int_branch_restriction_states') }}
    window w as (partition by repository_uuid, restriction_id order by synced_at)
),

changes as (
    select
        *,
        case
            when was_present and not is_present then 'rule_removed'
            when not was_present and is_present then 'rule_added'
            when not (was_present and is_present) then null
            when kind is distinct from old_kind or matcher is distinct from old_matcher then 'rule_changed'
            when value < old_value then 'rule_weakened'
            when len(list_filter(exemptions, lambda x: not list_contains(old_exemptions, x))) > 0 then 'exemption_added'
            when len(list_filter(old_exemptions, lambda x: not list_contains(exemptions, x))) > 0
                then 'exemption_removed'
            when value is distinct from old_value then 'rule_changed'
        end as change
    from states
    where observation_number > 1
)

select
    sync_id || '|' || repository_uuid || '|' || restriction_id as change_id,
    sync_id,
    synced_at,
    read_at as observed_at,
    workspace_slug,
    repository_uuid,
    coalesce(repository_slug, old_repository_slug) as repository_slug,
    restriction_id,
    change,
    coalesce(kind, old_kind) as kind,
    coalesce(matcher, old_matcher) as matcher,
    old_value,
    value as new_value,
    list_filter(coalesce(exemptions, []), lambda x: not list_contains(coalesce(old_exemptions, []), x))
        as exemptions_added,
    list_filter(coalesce(old_exemptions, []), lambda x: not list_contains(coalesce(exemptions, []), x))
        as exemptions_removed,
    change in ('rule_removed', 'rule_weakened', 'exemption_added') as weakens_control
from changes
where change is not null
