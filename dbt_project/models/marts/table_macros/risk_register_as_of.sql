-- marts.risk_register_as_of(ts, workspace): every finding at `ts` with its guidance, access and change control
-- (`area`), one `checked: none` row for each risk that found nothing, and `unknown` rows where a change-control
-- risk could not be checked (rules not fully readable), in one workspace (its slug) or all (null): what the
-- dashboard's Risks and Change control pages, risks.csv and the evidence report show.
{{ config(parameters=['as_of', 'in_workspace']) }}
with cc_branches as ({{ production_branches('as_of', bare=true) }}),

cc_rules as ({{ production_branch_rules('cc_branches', 'as_of', bare=true) }}),

cc_rights as ({{ change_rights('cc_branches', 'cc_rules', unqualified(ref('effective_access_as_of')) ~ '(as_of)',
                               'as_of', bare=true) }}),

cc_keys as ({{ deploy_keys('as_of', bare=true) }}),

findings as (
    select risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail
    from {{ unqualified(ref('access_risks_as_of')) }}(as_of)
    union all
    select risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail
    from ({{ change_control_risks('cc_rights', 'cc_branches', 'cc_rules', 'cc_keys',
                                  observed_workspaces('as_of', bare=true)) }})
),

unknowns as ({{ change_control_unknowns('cc_rights', 'cc_branches', 'cc_rules') }})

select register.* exclude (status, area), cast(as_of as timestamptz) as as_of, register.status, register.area
from ({{ risk_register('findings', all_risk_guidance(bare=true), 'in_workspace', unknowns='unknowns') }}) as register
order by severity_order, risk, workspace_slug, resource_key, user_display_name
