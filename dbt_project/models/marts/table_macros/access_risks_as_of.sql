-- marts.access_risks_as_of(ts): the open risks at `ts`, by the rules of fct_access_risks, with their severity and
-- guidance (seeds/risk_guidance.csv), the most severe first.
{{ config(parameters=['as_of']) }}
select
    risks.*,
    cast(as_of as timestamptz) as as_of,
    g.severity,
    {{ severity_order('g.severity') }} as severity_order,
    g.why_it_matters,
    g.what_to_do
from ({{ access_risks(
    unqualified(ref('fct_grant_history')), unqualified(ref('stg_bitbucket__workspace_observations')),
    unqualified(ref('stg_bitbucket__workspace_members')), unqualified(ref('stg_bitbucket__repositories')),
    unqualified(ref('stg_bitbucket__users')), 'as_of', leavers=unqualified(source('provisioning', 'leavers'))
) }}) as risks
left join {{ unqualified(ref('risk_guidance')) }} as g using (risk)
order by severity_order, risk, workspace_slug, resource_key, user_display_name
