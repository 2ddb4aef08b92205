-- marts.risk_register_as_of(ts, workspace): every finding at `ts` with its guidance, and one `checked: none` row
-- for each risk that found nothing, in one workspace (its slug) or all (null): what the dashboard's Risks page,
-- risks.csv and the evidence report show.
{{ config(parameters=['as_of', 'in_workspace']) }}
select register.*, cast(as_of as timestamptz) as as_of
from ({{ risk_register(unqualified(ref('access_risks_as_of')) ~ '(as_of)', unqualified(ref('risk_guidance')),
                       'in_workspace') }}) as register
order by severity_order, risk, workspace_slug, resource_key, user_display_name
