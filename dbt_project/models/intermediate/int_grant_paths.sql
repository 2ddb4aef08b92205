-- Every grant path of every complete sync, before names are attached (expansion rules: macros/grant_paths.sql).
-- A path says which principal holds which permission on which resource, and why:
--   direct    configured on this resource for this principal (a user or a group)
--   group     a user holds it through membership of via_group_slug
--   project   inherited by a repository from project via_project_key (create-repo gives write)
--   workspace implied by the workspace owner role (admin on every project and repository)
{{ grant_paths('true') }}
