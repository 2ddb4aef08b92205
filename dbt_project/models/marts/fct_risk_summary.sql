-- One row per risk the rules check, access and change control (`area`), at the latest complete sync: how many
-- findings, `open`, `unknown` (nothing found, but the change-control rules are not readable everywhere: `unknown`
-- counts where) or `checked: none` (an auditor tells "checked, none found" from "not checked"), with severity
-- and guidance; the most severe first.
select
    summary.* exclude (unknown, area),
    (select max(synced_at) from {{ ref('stg_bitbucket__syncs') }}) as as_of,
    summary.unknown,
    summary.area
from ({{ risk_summary(
    '(select risk from ' ~ ref('fct_access_risks') ~ ' union all select risk from '
        ~ ref('fct_change_control_risks') ~ ')',
    all_risk_guidance(),
    unknowns='(' ~ change_control_unknowns(
        ref('fct_change_rights'), ref('int_production_branches'), ref('int_production_branch_rules')
    ) ~ ')'
) }}) as summary
order by severity_order, findings desc, risk
