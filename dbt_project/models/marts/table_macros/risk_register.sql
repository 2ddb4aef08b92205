-- marts.risk_register(workspace): `marts.risk_register_as_of` at the latest sync, read from the marts built with
-- it (`fct_access_risks`, `fct_change_control_risks`, the change-control rights and rules) instead of judging
-- the history again: what the dashboard's Risks page reads for its latest snapshot date (seconds on a large
-- organisation otherwise).
{{ config(parameters=['in_workspace']) }}
with findings as (
    select risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail
    from {{ unqualified(ref('fct_access_risks')) }}
    union all
    select risk, workspace_slug, resource_type, resource_key, user_display_name, user_uuid, detail
    from {{ unqualified(ref('fct_change_control_risks')) }}
),

unknowns as ({{ change_control_unknowns(
    unqualified(ref('fct_change_rights')),
    unqualified(ref('int_production_branches')),
    unqualified(ref('int_production_branch_rules'))
) }}),

latest as (select max(synced_at) as as_of from {{ unqualified(ref('stg_bitbucket__syncs')) }})

select register.* exclude (status, area), cast(latest.as_of as timestamptz) as as_of, register.status,
       register.area
from ({{ risk_register('findings', all_risk_guidance(bare=true), 'in_workspace', unknowns='unknowns') }})
    as register
cross join latest
order by severity_order, risk, workspace_slug, resource_key, user_display_name
