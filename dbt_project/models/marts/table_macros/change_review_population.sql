-- marts.change_review_population(ts, workspace): the change-control review's rows at `ts` (review export
-- --campaign change-control): everyone who could put a change on a production branch alone, by pushing or by
-- merging without an enforced review (change_rights_as_of's can_change_alone; unknown rights are not listed),
-- in the access review's columns, with what a `revoke` takes away:
-- - `removable_via_groups`: the groups through which a push or merge rule exempts them, or, where no rule
--   restricts that way, the groups behind their write or admin paths to the repository;
-- - `paths_outside_groups`: what only a person can change in Bitbucket: a rule that names them directly (the
--   tool does not edit branch restrictions), or write access from outside groups on an unrestricted branch.
{{ config(parameters=['as_of', 'in_workspace']) }}
with rights as (
    select * from {{ unqualified(ref('change_rights_as_of')) }}(as_of, in_workspace) where can_change_alone
),

groups_of as (
    select workspace_slug, principal_id as user_uuid, string_agg(resource_key, ', ' order by resource_key) as groups
    from ({{ paths_held_at(unqualified(ref('fct_grant_history')), 'as_of') }})
    where principal_type = 'user' and resource_type = 'group'
    group by all
),

-- The paths that give write or admin on each repository: through which groups, and which kinds come from
-- outside any group (direct grants, project grants, the owner role).
writing as (
    select
        workspace_slug,
        resource_id as repository_uuid,
        principal_id as user_uuid,
        coalesce(list(distinct via_group_slug order by via_group_slug)
            filter (where via_group_slug is not null), []::varchar[]) as write_groups,
        coalesce(list(distinct grant_source order by grant_source)
            filter (where via_group_slug is null), []::varchar[]) as write_sources_outside_groups
    from ({{ paths_held_at(unqualified(ref('fct_grant_history')), 'as_of') }})
    where principal_type = 'user' and resource_type = 'repository' and permission in ('write', 'admin')
    group by all
),

accessed as (
    select workspace_slug, user_uuid, max(last_accessed) as last_accessed
    from {{ unqualified(ref('stg_bitbucket__workspace_members')) }}
    where synced_at <= cast(as_of as timestamptz)
    group by all
),

ways as (
    select
        *,
        can_push and not has_push_rule or can_merge_without_review and not has_merge_rule as through_access,
        list_concat(
            case when can_push then push_named_in_rules else []::varchar[] end,
            case when can_merge_without_review then merge_named_in_rules else []::varchar[] end
        ) as named_in
    from rights
    left join writing using (workspace_slug, repository_uuid, user_uuid)
)

select
    r.workspace_slug || ':repository:' || r.repository_slug || ':' || r.user_uuid || ':production' as review_item,
    cast(as_of as timestamptz) as as_of,
    r.workspace_slug,
    'repository' as resource_type,
    r.repository_slug as resource_key,
    r.production_branch as resource_name,
    r.user_uuid,
    r.user_account_id,
    r.user_display_name,
    r.permission,
    concat_ws(
        ' | ',
        case when r.can_push then 'pushes to ' || r.production_branch || ': ' || r.push_path end,
        case when r.can_merge_without_review
            then 'merges unreviewed: ' || r.merge_path || '; review ' || r.review_path end
    ) as grant_paths,
    null::timestamptz as first_granted_at,
    a.last_accessed,
    coalesce(g.groups, '') as groups,
    list_sort(list_distinct(list_concat(
        case when r.can_push then
            case when r.has_push_rule then r.push_exempt_groups else r.write_groups end
        else []::varchar[] end,
        case when r.can_merge_without_review then
            case when r.has_merge_rule then r.merge_exempt_groups else r.write_groups end
        else []::varchar[] end
    ))) as removable_via_groups,
    list_concat(
        [x || ' names them: remove them from it in the repository''s branch restrictions' for x in r.named_in],
        case when r.through_access and len(r.write_sources_outside_groups) > 0
            then [r.permission || ' through ' || {{ path_kinds_in_words('r.write_sources_outside_groups') }}
                || ', which no group removal takes away: remove it, or add a push restriction and enforce '
                || 'merge checks on ' || r.production_branch]
            else []::varchar[] end
    ) as paths_outside_groups
from ways as r
left join groups_of as g on g.workspace_slug = r.workspace_slug and g.user_uuid = r.user_uuid
left join accessed as a on a.workspace_slug = r.workspace_slug and a.user_uuid = r.user_uuid
order by r.workspace_slug, r.repository_slug, r.user_display_name
