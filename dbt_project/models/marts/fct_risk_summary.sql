-- One row per risk the rules check, at the latest complete sync: how many findings, `open` or `checked: none`
-- (an auditor tells "checked, none found" from "not checked"), with severity and guidance; the most severe first.
select
    summary.*,
    (select max(synced_at) from {{ ref('stg_bitbucket__syncs') }}) as as_of
from ({{ risk_summary(ref('fct_access_risks'), ref('risk_guidance')) }}) as summary
order by severity_order, findings desc, risk
