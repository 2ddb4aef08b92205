-- The branch restrictions that apply to each repository's production branch (int_production_branches), with
-- who they exempt (macros/change_control_rights.sql).
{{ production_branch_rules(ref('int_production_branches')) }}
