-- Open change-control risks in each workspace's latest observation (macros/change_control_rules.sql), with the
-- columns of fct_access_risks so the two can be read together.
select
    risks.*,
    (select max(synced_at) from {{ ref('stg_bitbucket__syncs') }}) as as_of
from (
    {{ change_control_risks(
        ref('fct_change_rights'), ref('int_production_branches'), ref('int_production_branch_rules'),
        ref('fct_deploy_keys'),
        '(select * from ' ~ ref('stg_bitbucket__workspaces') ~ ' where ' ~ latest_observation() ~ ')'
    ) }}
) as risks
