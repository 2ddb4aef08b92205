-- Who can change each repository's production branch, and how, at each workspace's latest observation
-- (docs/design.md, "Change control"; the rules: macros/change_control_rights.sql, also behind
-- marts.change_rights_as_of).
{{ change_rights(ref('int_production_branches'), ref('int_production_branch_rules'), ref('fct_effective_access')) }}
