-- marts.change_rights_as_of(ts, workspace): fct_change_rights at `ts` (each workspace on its last observation at
-- or before it, with the access held then), of one workspace (its slug) or all (null).
{{ config(parameters=['as_of', 'in_workspace']) }}
with cc_branches as ({{ production_branches('as_of', bare=true) }}),

cc_rules as ({{ production_branch_rules('cc_branches', 'as_of', bare=true) }})

select rights.*, cast(as_of as timestamptz) as as_of
from ({{ change_rights('cc_branches', 'cc_rules', unqualified(ref('effective_access_as_of')) ~ '(as_of)',
                       'as_of', bare=true) }}) as rights
where in_workspace is null or workspace_slug = in_workspace
order by workspace_slug, repository_slug, user_display_name
