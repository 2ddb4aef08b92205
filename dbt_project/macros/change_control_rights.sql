{#
  Who can change production code, written once and used twice: the marts at each workspace's latest observation
  (int_production_branches, int_production_branch_rules, fct_change_rights, fct_deploy_keys) and the table
  macros over any date (models/marts/table_macros: `marts.change_rights_as_of`, the change-control rows of
  `marts.risk_register_as_of`). `as_of` is none for the latest observation, or an SQL expression: each workspace is
  then judged on its last observation at or before it. `bare` names relations without their catalog, as table
  macros must (table_macro.sql).
#}

{# A relation of the project, with its catalog or (`bare`) without. #}
{% macro cc_ref(name, bare) %}
{%- if bare %}{{ return(unqualified(ref(name))) }}{% else %}{{ return(ref(name)) }}{% endif -%}
{% endmacro %}

{% macro cc_source(schema, name, bare) %}
{%- if bare %}{{ return(unqualified(source(schema, name))) }}{% else %}{{ return(source(schema, name)) }}{% endif -%}
{% endmacro %}

{# The predicate selecting each workspace's observation: the latest, or the last at or before `as_of`. #}
{% macro observed(as_of=none, bare=false, sync_column='sync_id', workspace_column='workspace_slug') %}
{%- if as_of is none -%}
{{ latest_observation(sync_column, workspace_column) }}
{%- else -%}
{{ sync_column }} || '|' || {{ workspace_column }} in (
    select observation_key from {{ cc_ref('stg_bitbucket__workspace_observations', bare) }}
    where synced_at <= cast({{ as_of }} as timestamptz)
    qualify row_number() over (partition by workspace_slug order by synced_at desc) = 1
)
{%- endif -%}
{% endmacro %}


{#
  Each repository's production branch in the observation, and whether its branch rules can be read in full
  (docs/design.md, "Change control"):
  - the production branch of the effective branching model, else `mainbranch` (`production_branch_source`);
  - rules are fully readable only where the workspace's change control was readable, the repository's lists
    were read (now or carried), and its project was checked and has no project-level restrictions
    (`provisioning.project_branch_rules`, a table people keep today: over a past date it is read as it is now).
#}
{% macro production_branches(as_of=none, bare=false) %}
with repos as (
    select * from {{ cc_ref('stg_bitbucket__repositories', bare) }} where {{ observed(as_of, bare) }}
),

models as (
    select * from {{ cc_ref('stg_bitbucket__branching_models', bare) }} where {{ observed(as_of, bare) }}
),

reads as (
    select
        sync_id,
        resource_id as repository_uuid,
        count(distinct list) filter (where list in ('branch_restrictions', 'branching_model', 'override_settings'))
            as rule_lists_read,
        min(read_at) as rules_read_at,
        bool_or(is_carried_forward) as rules_carried_forward
    from {{ cc_ref('stg_bitbucket__change_control_reads', bare) }}
    where {{ observed(as_of, bare) }} and resource_type = 'repository'
    group by all
),

workspaces as (
    select sync_id, workspace_slug, change_control
    from {{ cc_ref('stg_bitbucket__workspaces', bare) }}
    where {{ observed(as_of, bare) }}
),

checked as (
    select workspace_slug, project_key, has_project_rules, checked_by, checked_on
    from {{ cc_source('provisioning', 'project_branch_rules', bare) }}
)

select
    r.sync_id,
    r.synced_at,
    r.workspace_slug,
    r.repository_uuid,
    r.repository_slug,
    r.project_key,
    r.is_private,
    r.fork_policy,
    r.mainbranch,
    case
        when m.production_branch is not null then m.production_branch
        else coalesce(r.mainbranch, m.development_branch)
    end as production_branch,
    case when m.production_branch is not null then 'branching_model' else 'mainbranch' end
        as production_branch_source,
    m.development_branch,
    m.branching_model_overridden,
    coalesce(x.rule_lists_read, 0) = 3 as rules_read,
    x.rules_read_at,
    coalesce(x.rules_carried_forward, false) as rules_carried_forward,
    w.change_control,
    c.has_project_rules,
    c.checked_by as project_rules_checked_by,
    c.checked_on as project_rules_checked_on,
    case
        when w.change_control not like 'readable%' then 'workspace ' || w.change_control
        when coalesce(x.rule_lists_read, 0) < 3 then 'not read yet (the rolling first pass)'
        when c.has_project_rules is null then 'project ' || r.project_key
            || ' may enforce branch restrictions no API serves (not checked: provisioning.project_branch_rules)'
        when c.has_project_rules then 'project ' || r.project_key
            || ' enforces branch restrictions no API serves'
    end as rules_unreadable_reason
from repos as r
left join models as m on r.sync_id = m.sync_id and r.repository_uuid = m.repository_uuid
left join reads as x on r.sync_id = x.sync_id and r.repository_uuid = x.repository_uuid
left join workspaces as w on r.sync_id = w.sync_id and r.workspace_slug = w.workspace_slug
left join checked as c on r.workspace_slug = c.workspace_slug and r.project_key = c.project_key
{% endmacro %}


{# Each rule's exemptions, one row per rule: user uuids, group slugs, and the names people read. #}
{% macro restriction_exemptions(as_of=none, bare=false) %}
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
from {{ cc_ref('stg_bitbucket__branch_restriction_exemptions', bare) }}
where {{ observed(as_of, bare) }}
group by all
{% endmacro %}


{#
  The branch restrictions that apply to each production branch of `branches` (production_branches' rows), with
  who they exempt. Glob: `*` matches any run of characters and every other character itself, over the whole
  name, case-sensitively (the spec); `branching_model` rules match the branch of their type (production when
  the branching model has one, development, or a prefix type such as `release/`).
#}
{% macro production_branch_rules(branches, as_of=none, bare=false) %}
with restrictions as (
    select * from {{ cc_ref('stg_bitbucket__branch_restrictions', bare) }} where {{ observed(as_of, bare) }}
),

exempt as (
    {{ restriction_exemptions(as_of, bare) }}
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
from {{ branches }} as b
inner join restrictions as r using (sync_id, repository_uuid)
left join exempt as e using (sync_id, repository_uuid, restriction_id)
where
    case
        when r.branch_match_kind = 'glob'
            then regexp_full_match(b.production_branch, replace(regexp_escape(coalesce(r.pattern, '')), '\*', '.*'))
        when r.branch_type = 'production' then b.production_branch_source = 'branching_model'
        when r.branch_type = 'development' then b.production_branch = b.development_branch
        else starts_with(b.production_branch, r.branch_type || '/')
    end
{% endmacro %}


{#
  Who can change each production branch of `branches` (production_branches' rows, with `rules` their
  production_branch_rules), and how: one row per (user, repository, production branch) for everyone `effective`
  (rows of fct_effective_access or marts.effective_access_as_of) gives write or admin on the repository (read
  alone changes nothing). Each right is true, false, or null (unknown):
  - false is certain: the visible rules (or the permission) already stop it, and rules no API serves can only
    restrict further;
  - true only where the rules are fully readable (`rules_fully_readable`); elsewhere what the visible rules
    allow is an upper bound, and the right is null.
  Undocumented Bitbucket behaviour the answer relies on is named per row in `assumptions`.
#}
{% macro change_rights(branches, rules, effective, as_of=none, bare=false) %}
with branches as (
    select * from {{ branches }}
),

rules as (
    select * from {{ rules }}
),

writers as (
    select
        workspace_slug,
        resource_id as repository_uuid,
        user_uuid,
        user_account_id,
        user_display_name,
        permission,
        access_paths[1] as access_path
    from {{ effective }}
    where resource_type = 'repository' and permission in ('write', 'admin')
),

memberships as (
    select sync_id, workspace_slug, user_uuid, list(group_slug order by group_slug) as group_slugs
    from {{ cc_ref('int_group_memberships', bare) }}
    where {{ observed(as_of, bare) }}
    group by all
),

two_step as (
    select sync_id, workspace_slug, user_uuid, has_2fa_enabled
    from {{ cc_ref('stg_bitbucket__workspace_members', bare) }}
    where {{ observed(as_of, bare) }}
),

-- Each writer against each rule that names who alone may push or merge.
listed as (
    select
        r.sync_id,
        w.repository_uuid,
        w.user_uuid,
        r.kind,
        r.restriction_id,
        r.matcher,
        r.exempt_names,
        list_contains(r.exempt_user_uuids, w.user_uuid) as by_user,
        list_intersect(r.exempt_group_slugs, coalesce(m.group_slugs, [])) as via_groups
    from writers as w
    inner join rules as r on w.workspace_slug = r.workspace_slug and w.repository_uuid = r.repository_uuid
    left join memberships as m on r.sync_id = m.sync_id and w.workspace_slug = m.workspace_slug
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
        ) as explanation,
        list_sort(list_distinct(flatten(list(via_groups)))) as exempt_via_groups,
        list(kind || ' rule #' || restriction_id || ' (' || matcher || ')' order by restriction_id)
            filter (where by_user) as named_in_rules
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
        b.sync_id,
        b.synced_at,
        w.*,
        b.repository_slug,
        b.project_key,
        b.production_branch,
        b.production_branch_source,
        b.rules_read_at,
        b.rules_unreadable_reason is null as rules_fully_readable,
        b.rules_unreadable_reason,
        p.explanation as push_rules_explanation,
        p.exempt_via_groups as push_exempt_groups,
        p.named_in_rules as push_named_in_rules,
        mg.exempt_via_groups as merge_exempt_groups,
        mg.named_in_rules as merge_named_in_rules,
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
    inner join branches as b on w.workspace_slug = b.workspace_slug and w.repository_uuid = b.repository_uuid
        and b.production_branch is not null
    left join per_writer as p on p.sync_id = b.sync_id and p.repository_uuid = w.repository_uuid
        and p.user_uuid = w.user_uuid and p.kind = 'push'
    left join per_writer as mg on mg.sync_id = b.sync_id and mg.repository_uuid = w.repository_uuid
        and mg.user_uuid = w.user_uuid and mg.kind = 'restrict_merges'
    left join per_repository as r on r.sync_id = b.sync_id and r.repository_uuid = w.repository_uuid
    left join two_step as t on t.sync_id = b.sync_id and t.workspace_slug = w.workspace_slug
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
    ) as assumptions,
    -- What takes a right away (the change-control review: reporting/review.py): the groups through which the
    -- push and merge rules exempt the person, the rules that name them, and whether a rule restricts at all.
    coalesce(push_exempt_groups, []::varchar[]) as push_exempt_groups,
    coalesce(push_named_in_rules, []::varchar[]) as push_named_in_rules,
    coalesce(merge_exempt_groups, []::varchar[]) as merge_exempt_groups,
    coalesce(merge_named_in_rules, []::varchar[]) as merge_named_in_rules,
    has_push_rule,
    has_merge_rule
from rights
{% endmacro %}


{#
  Every repository and project access key in the observation: who added it, whether they are still a member,
  and how long since it was last used (at the observation).
#}
{% macro deploy_keys(as_of=none, bare=false) %}
with members as (
    select sync_id, workspace_slug, user_uuid from {{ cc_ref('stg_bitbucket__workspace_members', bare) }}
    where {{ observed(as_of, bare) }}
)

select
    k.sync_id,
    k.synced_at,
    k.workspace_slug,
    k.resource_type,
    k.resource_id,
    k.resource_key,
    k.key_id,
    k.label,
    k.added_on,
    k.last_used,
    k.added_by_uuid,
    k.added_by_account_id,
    k.added_by_name,
    k.added_by_uuid is not null and m.user_uuid is null as added_by_non_member,
    date_diff('day', coalesce(k.last_used, k.added_on), k.synced_at) as days_unused,
    k.observed_sync_id
from {{ cc_ref('stg_bitbucket__deploy_keys', bare) }} as k
left join members as m on m.sync_id = k.sync_id and m.workspace_slug = k.workspace_slug
    and m.user_uuid = k.added_by_uuid
where {{ observed(as_of, bare, 'k.sync_id', 'k.workspace_slug') }}
{% endmacro %}


{# Each workspace's row of stg_bitbucket__workspaces in the observation (its `change_control` state). #}
{% macro observed_workspaces(as_of=none, bare=false) %}
(select * from {{ cc_ref('stg_bitbucket__workspaces', bare) }} where {{ observed(as_of, bare) }})
{% endmacro %}
