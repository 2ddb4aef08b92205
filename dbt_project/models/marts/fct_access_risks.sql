-- Open risks at the latest complete sync (the same rules as `marts.access_risks_as_of(ts)` for any other time):
-- owners, direct admin grants, access only through direct grants or from outside the membership, dormant
-- accounts, repositories without an admin, public repositories, and access still held by leavers; each with
-- its severity and guidance (seeds/risk_guidance.csv), the most severe first.
{% set as_of = '(select max(synced_at) from ' ~ ref('stg_bitbucket__syncs') ~ ')' %}
select
    risks.*,
    {{ as_of }} as as_of,
    g.severity,
    {{ severity_order('g.severity') }} as severity_order,
    g.why_it_matters,
    g.what_to_do
from (
    {{ access_risks(
        ref('fct_grant_history'), ref('stg_bitbucket__workspace_observations'),
        ref('stg_bitbucket__workspace_members'), ref('stg_bitbucket__repositories'), ref('stg_bitbucket__users'),
        as_of, leavers=source('provisioning', 'leavers')
    ) }}
) as risks
left join {{ ref('risk_guidance') }} as g using (risk)
order by severity_order, risk, workspace_slug, resource_key, user_display_name
