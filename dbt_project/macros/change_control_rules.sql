{#
  The change-control risks (docs/design.md, "Change control"), beside the access risks of access_rules.sql and
  with the same columns: risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail.
  Each `select '<risk>'` line names one risk; their severity and guidance are seeds/change_control_risk_guidance.csv.
#}
{% macro change_control_risks(rights, branches, rules, deploy_keys, workspaces) %}
-- Production branches that no push rule protects, where the rules are fully readable (a project rule no API
-- serves may protect the others: they are unknown, change_control_unknowns, never unrestricted).
select 'production branch without a push restriction' as risk, b.workspace_slug, 'repository' as resource_type,
       b.repository_slug as resource_key, '' as user_display_name, '' as user_uuid,
       b.production_branch || ' (' || b.production_branch_source || '): no push rule' as detail
from {{ branches }} b
where b.rules_read and b.rules_unreadable_reason is null
  and not exists (select 1 from {{ rules }} r where r.sync_id = b.sync_id and r.repository_uuid = b.repository_uuid
                  and r.kind = 'push')
union all
select 'change possible without an enforced review', workspace_slug, 'repository', repository_slug,
       user_display_name, user_uuid,
       case when can_push then 'pushes directly: ' || push_path else 'merges unreviewed: ' || review_path end
from {{ rights }}
where can_change_alone
union all
select 'exempted from a branch restriction', r.workspace_slug, 'repository', b.repository_slug,
       unnest(r.exempt_names), '',
       r.kind || ' rule #' || r.restriction_id || ' (' || r.matcher || ') on the production branch allows only '
       || array_to_string(r.exempt_names, ', ')
from {{ rules }} r
inner join {{ branches }} b on r.sync_id = b.sync_id and r.repository_uuid = b.repository_uuid
where r.kind in ('push', 'restrict_merges') and len(r.exempt_names) > 0
union all
select 'merge checks not enforced', b.workspace_slug, 'repository', b.repository_slug, '', '',
       string_agg(r.kind || coalesce(' ' || r.value, ''), ', ' order by r.restriction_id)
       || ' on ' || b.production_branch || ' only warn: no enforce_merge_checks rule'
from {{ rules }} r
inner join {{ branches }} b on r.sync_id = b.sync_id and r.repository_uuid = b.repository_uuid
where r.kind like 'require_%'
  and not exists (select 1 from {{ rules }} e where e.sync_id = r.sync_id and e.repository_uuid = r.repository_uuid
                  and e.kind = 'enforce_merge_checks')
group by b.workspace_slug, b.repository_slug, b.production_branch
union all
select 'deploy key unused for 180 days', workspace_slug, resource_type, resource_key, '', '',
       'key ' || coalesce(label, key_id::varchar) || ': '
       || case when last_used is null then 'never used' else 'last used ' || strftime(last_used, '%Y-%m-%d') end
       || ', added ' || strftime(added_on, '%Y-%m-%d')
from {{ deploy_keys }}
where days_unused >= 180
union all
select 'deploy key added by a former member', workspace_slug, resource_type, resource_key,
       coalesce(added_by_name, ''), coalesce(added_by_uuid, ''),
       'key ' || coalesce(label, key_id::varchar) || ' was added by someone who is no member of the workspace'
from {{ deploy_keys }}
where added_by_non_member
union all
select 'member without 2FA who can change production', workspace_slug, 'repository', repository_slug,
       user_display_name, user_uuid,
       'two-step verification off; '
       || case when can_push then 'can push' when can_merge then 'can merge'
               else 'may change it (rules not fully readable)' end
from {{ rights }}
where has_2fa_enabled = false and (can_push is not false or can_merge is not false)
union all
select 'forks allowed to public', workspace_slug, 'repository', repository_slug, '', '',
       'fork policy allow_forks: anyone who can read it may fork it publicly'
from {{ branches }}
where fork_policy = 'allow_forks'
union all
select 'change control not readable', workspace_slug, 'workspace', workspace_slug, '', '', change_control
from {{ workspaces }}
where change_control not like 'readable%'
{% endmacro %}


{#
  Where a change-control risk could not be checked: one row per (risk, workspace) with the columns of the
  findings, `unknown_count` (the repositories, or people, it is unknown for) and a detail saying why. A risk
  with no finding there is then "unknown", never "checked: none" (risk_register, risk_summary). Where each risk
  is unknown: the rule-based ones on repositories whose rules are not fully readable (rules_unreadable_reason;
  "without a push restriction" only where no visible push rule applies),
  the deploy-key ones where the lists were not read, 2FA where Bitbucket does not say it for someone who may
  change production. Public forks (the repository object) and "change control not readable" are always known.
#}
{% macro change_control_unknowns(rights, branches, rules) %}
with unread as (
    select
        workspace_slug,
        repository_slug,
        rules_read,
        -- A visible push rule already restricts pushing: the branch is not unrestricted, whatever else applies.
        exists (select 1 from {{ rules }} r where r.sync_id = b.sync_id and r.repository_uuid = b.repository_uuid
                and r.kind = 'push') as has_push_rule,
        rules_unreadable_reason,
        case
            when rules_unreadable_reason like 'workspace %' then 'change control not readable'
            when rules_unreadable_reason like 'not read yet%' then 'not read yet'
            else 'project rules no API serves'
        end as why
    from {{ branches }} as b
    where production_branch is not null and rules_unreadable_reason is not null
),

per_risk as (
    select 'production branch without a push restriction' as risk, workspace_slug, count(*) as n,
           'repositories whose rules are not fully readable' as what,
           string_agg(distinct why, ', ' order by why) as why
    from unread where not has_push_rule group by all
    union all
    select risk, workspace_slug, count(*), 'repositories whose rules are not fully readable',
           string_agg(distinct why, ', ' order by why)
    from unread, (values ('exempted from a branch restriction'), ('merge checks not enforced')) as t(risk)
    group by all
    union all
    select 'change possible without an enforced review', workspace_slug, count(distinct repository_slug),
           'repositories whose rules are not fully readable (' || count(*) || ' people with write)',
           string_agg(distinct rules_unreadable_reason, '; ' order by rules_unreadable_reason)
    from {{ rights }} where can_change_alone is null group by all
    union all
    select risk, workspace_slug, count(*), 'repositories whose access keys were not read',
           string_agg(distinct why, ', ' order by why)
    from unread, (values ('deploy key unused for 180 days'), ('deploy key added by a former member')) as t(risk)
    where not rules_read
    group by all
    union all
    select 'member without 2FA who can change production', workspace_slug, count(distinct user_uuid),
           'people who may change production and whose two-step verification Bitbucket does not report',
           'has_2fa_enabled unknown'
    from {{ rights }}
    where has_2fa_enabled is null and (can_push is not false or can_merge is not false)
    group by all
)

select risk, workspace_slug, 'workspace' as resource_type, workspace_slug as resource_key,
       '' as user_display_name, '' as user_uuid,
       'unknown for ' || n || ' ' || what || ': ' || why as detail,
       n as unknown_count
from per_risk
{% endmacro %}
