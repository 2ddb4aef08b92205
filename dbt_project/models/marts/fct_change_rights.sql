-- Who can change each repository's production branch, and how (docs/design.md, "Change control"): one row per
-- (user, repository, production branch) for everyone who holds write or admin on the repository (read alone
-- changes nothing). Each right is true, false, or null (unknown):
-- - false is certain: the visible rules (or the permission) already stop it, and rules no API serves can only
--   restrict further;
-- - true only where the rules are fully readable (`rules_fully_readable`); elsewhere what the visible rules
--   allow is an upper bound, and the right is null.
-- Undocumented Bitbucket behaviour the answer relies on is named per row in `assumptions`.
with branches as (
    select * from {{ ref('int_production_branches') }}
),

rules as (
    select * from {{ ref('int_production_branch_rules') }}
),

writers as (
    select
        sync_id,
        synced_at,
        workspace_slug,
        resource_id as repository_uuid,
        user_uuid,
        user_account_id,
        user_display_name,
        permission,
        access_paths[1] as access_path
    from {{ ref('fct_effective_access') }}
    where resource_type = 'repository' and permission in ('write', 'admin')
),

memberships as (
    select sync_id, workspace_slug, user_uuid, list(group_slug order by group_slug) as group_slugs
    from {{ ref('int_group_memberships') }}
    where {{ latest_observation() }}
    group by all
),

two_step as (
    select sync_id, workspace_slug, user_uuid, has_2fa_enabled
    from {{ ref('stg_bitbucket__workspace_members') }}
    where {{ latest_observation() }}
),

-- Each writer against each rule that names who alone may push or merge.
listed as (
    select
        w.sync_id,
        w.repository_uuid,
        w.user_uuid,
        r.kind,
        r.restriction_id,
        r.matcher,
        r.exempt_names,
        list_contains(r.exempt_user_uuids, w.user_uuid) as by_user,
        list_intersect(r.exempt_group_slugs, coalesce(m.group_slugs, [])) as via_groups
    from writers as w
    inner join rules as r on w.sync_id = r.sync_id and w.repository_uuid = r.repository_uuid
    left join memberships as m on w.sync_id = m.sync_id and w.workspace_slug = m.workspace_slug
        and w.user_uuid = m.user_uuid
    where r.kind in ('push', 'restrict_merges')
),

per_writer as (
    select
        sync_id,
        repository_uuid,
        user_uuid,
        kind,
        -- Every matching rule must list the user ("DENY overrides ALLOW").
        bool_and(by_user or len(via_groups) > 0) as allowed,
        string_agg(
            case
                when by_user then 'listed in ' || kind || ' rule #' || restriction_id || ' (' || matcher || ')'
                when len(via_groups) > 0
                    then 'listed in ' || kind || ' rule #' || restriction_id || ' (' || matcher || ') via group '
                    || array_to_string(via_groups, ', ')
                else 'not listed in ' || kind || ' rule #' || restriction_id || ' (' || matcher
                    || '), which allows only ' || coalesce(nullif(array_to_string(exempt_names, ', '), ''), 'nobody')
            end,
            '; ' order by restriction_id
        ) as explanation
    from listed
    group by all
),

per_repository as (
    select
        sync_id,
        repository_uuid,
        bool_or(kind = 'push') as has_push_rule,
        bool_or(kind = 'restrict_merges') as has_merge_rule,
        string_agg('#' || restriction_id || ' (' || matcher || ')', ', ' order by restriction_id)
            filter (where kind = 'force') as force_rules,
        string_agg('#' || restriction_id || ' (' || matcher || ')', ', ' order by restriction_id)
            filter (where kind = 'delete') as delete_rules,
        string_agg('#' || restriction_id || ' (' || matcher || ')', ', ' order by restriction_id)
            filter (where kind = 'enforce_merge_checks') as enforce_rules,
        max(coalesce(value, 1)) filter (
            where kind in (
                'require_approvals_to_merge',
                'require_default_reviewer_approvals_to_merge',
                'require_review_group_approvals_to_merge'
            )
        ) as approvals_required,
        string_agg(kind || coalesce(' ' || value, '') || ' #' || restriction_id, ', ' order by restriction_id)
            filter (
                where kind in (
                    'require_approvals_to_merge',
                    'require_default_reviewer_approvals_to_merge',
                    'require_review_group_approvals_to_merge'
                )
            ) as approval_rules
    from rules
    group by all
),

decided as (
    select
        w.*,
        b.repository_slug,
        b.project_key,
        b.production_branch,
        b.production_branch_source,
        b.rules_read_at,
        b.rules_unreadable_reason is null as rules_fully_readable,
        b.rules_unreadable_reason,
        p.explanation as push_rules_explanation,
        coalesce(p.allowed, true) as push_allowed,
        mg.explanation as merge_rules_explanation,
        coalesce(mg.allowed, true) as merge_allowed,
        coalesce(r.has_push_rule, false) as has_push_rule,
        coalesce(r.has_merge_rule, false) as has_merge_rule,
        r.force_rules,
        r.delete_rules,
        r.enforce_rules,
        r.approvals_required,
        r.approval_rules,
        r.enforce_rules is not null and coalesce(r.approvals_required, 0) >= 1 as review_enforced,
        t.has_2fa_enabled
    from writers as w
    -- A repository without a main branch (empty) has no production code to change: no rows.
    inner join branches as b on w.sync_id = b.sync_id and w.repository_uuid = b.repository_uuid
        and b.production_branch is not null
    left join per_writer as p on p.sync_id = w.sync_id and p.repository_uuid = w.repository_uuid
        and p.user_uuid = w.user_uuid and p.kind = 'push'
    left join per_writer as mg on mg.sync_id = w.sync_id and mg.repository_uuid = w.repository_uuid
        and mg.user_uuid = w.user_uuid and mg.kind = 'restrict_merges'
    left join per_repository as r on r.sync_id = w.sync_id and r.repository_uuid = w.repository_uuid
    left join two_step as t on t.sync_id = w.sync_id and t.workspace_slug = w.workspace_slug
        and t.user_uuid = w.user_uuid
),

rights as (
    select
        *,
        push_allowed and force_rules is null as force_allowed,
        push_allowed and delete_rules is null as delete_allowed,
        merge_allowed and not review_enforced as unreviewed_merge_allowed
    from decided
)

select
    sync_id,
    synced_at,
    workspace_slug,
    repository_uuid,
    repository_slug,
    project_key,
    production_branch,
    production_branch_source,
    user_uuid,
    user_account_id,
    user_display_name,
    permission,
    access_path,
    has_2fa_enabled,
    rules_fully_readable,
    rules_unreadable_reason,
    rules_read_at,
    case when not push_allowed then false when rules_fully_readable then true end as can_push,
    permission || ' (' || access_path || '); ' || coalesce(
        push_rules_explanation, 'no push restriction on ' || production_branch
    ) as push_path,
    case when not merge_allowed then false when rules_fully_readable then true end as can_merge,
    permission || ' (' || access_path || '); ' || coalesce(
        merge_rules_explanation, 'no merge restriction on ' || production_branch
    ) as merge_path,
    case when not unreviewed_merge_allowed then false when rules_fully_readable then true end
        as can_merge_without_review,
    case
        when not merge_allowed then 'cannot merge: ' || merge_rules_explanation
        when review_enforced
            then 'enforced (' || enforce_rules || '): ' || approval_rules || ', by someone other than the author'
        when approval_rules is not null then 'not enforced: ' || approval_rules || ' only warn (no enforce_merge_checks)'
        when enforce_rules is not null then 'merge checks enforced (' || enforce_rules || ') but none asks for an approval'
        else 'no approval required on ' || production_branch
    end as review_path,
    case when not force_allowed then false when rules_fully_readable then true end as can_force_push,
    case
        when not push_allowed then 'cannot push'
        when force_rules is not null then 'blocked by force rule ' || force_rules
        else 'can push, and no force rule on ' || production_branch
    end as force_push_path,
    case when not delete_allowed then false when rules_fully_readable then true end as can_delete,
    case
        when not push_allowed then 'cannot push'
        when delete_rules is not null then 'blocked by delete rule ' || delete_rules
        else 'can push, and no delete rule on ' || production_branch
    end as delete_path,
    -- Onto production without anyone else's enforced review: by pushing, or by an unreviewed merge.
    (case when not push_allowed then false when rules_fully_readable then true end)
    or (case when not unreviewed_merge_allowed then false when rules_fully_readable then true end)
        as can_change_alone,
    list_filter(
        [
            case when permission = 'admin' and (has_push_rule or has_merge_rule)
                then 'repository and workspace admins are bound by push and merge restrictions (undocumented)' end,
            case when push_allowed and delete_rules is null
                then 'whoever may push may delete the branch when no delete rule matches (undocumented)' end,
            case when has_merge_rule
                then 'restrict_merges alone decides who merges; a push rule does not grant merging' end,
            case when review_enforced and permission = 'admin'
                then 'enforced merge checks bind admins too (undocumented)' end
        ],
        lambda x: x is not null
    ) as assumptions
from rights
