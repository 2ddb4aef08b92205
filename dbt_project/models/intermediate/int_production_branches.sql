-- Each repository's production branch in its workspace's latest observation, and whether its branch rules can
-- be read in full (docs/design.md, "Change control"):
-- - the production branch of the effective branching model, else `mainbranch` (`production_branch_source`);
-- - rules are fully readable only where the workspace's change control was readable, the repository's lists
--   were read (now or carried), and its project was checked and has no project-level restrictions
--   (`provisioning.project_branch_rules`): Bitbucket enforces those but serves them through no API.
with repos as (
    select * from {{ ref('stg_bitbucket__repositories') }} where {{ latest_observation() }}
),

models as (
    select * from {{ ref('stg_bitbucket__branching_models') }} where {{ latest_observation() }}
),

reads as (
    select
        sync_id,
        resource_id as repository_uuid,
        count(distinct list) filter (where list in ('branch_restrictions', 'branching_model', 'override_settings'))
            as rule_lists_read,
        min(read_at) as rules_read_at,
        bool_or(is_carried_forward) as rules_carried_forward
    from {{ ref('stg_bitbucket__change_control_reads') }}
    where {{ latest_observation() }} and resource_type = 'repository'
    group by all
),

workspaces as (
    select sync_id, workspace_slug, change_control
    from {{ ref('stg_bitbucket__workspaces') }}
    where {{ latest_observation() }}
),

checked as (
    select workspace_slug, project_key, has_project_rules, checked_by, checked_on
    from {{ source('provisioning', 'project_branch_rules') }}
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
