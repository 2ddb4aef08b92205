-- Open change-control risks in each workspace's latest observation (macros/change_control_rules.sql), with the
-- columns of fct_access_risks so the two can be read together: severity and guidance from
-- seeds/change_control_risk_guidance.csv, the most severe first.
select
    risks.*,
    (select max(synced_at) from {{ ref('stg_bitbucket__syncs') }}) as as_of,
    g.severity,
    {{ severity_order('g.severity') }} as severity_order,
    g.why_it_matters,
    g.what_to_do
from (
    {{ change_control_risks(
        ref('fct_change_rights'), ref('int_production_branches'), ref('int_production_branch_rules'),
        ref('fct_deploy_keys'),
        observed_workspaces()
    ) }}
) as risks
left join {{ ref('change_control_risk_guidance') }} as g using (risk)
order by severity_order, risk, workspace_slug, resource_key, user_display_name
