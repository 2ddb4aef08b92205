-- Open risks at the latest complete sync (the same rules as `marts.access_risks_as_of(ts)` for any other time):
-- owners, direct admin grants, access only through direct grants or from outside the membership, dormant
-- accounts, repositories without an admin, public repositories, and access still held by leavers.
{% set as_of = '(select max(synced_at) from ' ~ ref('stg_bitbucket__syncs') ~ ')' %}
select
    risks.*,
    {{ as_of }} as as_of
from (
    {{ access_risks(
        ref('fct_grant_history'), ref('stg_bitbucket__workspace_observations'),
        ref('stg_bitbucket__workspace_members'), ref('stg_bitbucket__repositories'), ref('stg_bitbucket__users'),
        as_of, leavers=source('provisioning', 'leavers')
    ) }}
) as risks
