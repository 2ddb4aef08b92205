-- Each repository's production branch in its workspace's latest observation, and whether its branch rules can
-- be read in full (macros/change_control_rights.sql; docs/design.md, "Change control").
{{ production_branches() }}
