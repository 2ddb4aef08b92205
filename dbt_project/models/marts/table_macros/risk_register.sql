-- marts.risk_register(workspace): `marts.risk_register_as_of` at the latest sync, read from `fct_access_risks`
-- (built with the marts) instead of judging the history again: what the dashboard's Risks page reads for its
-- latest snapshot date (seconds on a large organisation otherwise).
{{ config(parameters=['in_workspace']) }}
select register.*, f.as_of
from ({{ risk_register(unqualified(ref('fct_access_risks')), unqualified(ref('risk_guidance')), 'in_workspace') }})
    as register
cross join (select max(synced_at) as as_of from {{ unqualified(ref('stg_bitbucket__syncs')) }}) as f
order by severity_order, risk, workspace_slug, resource_key, user_display_name
