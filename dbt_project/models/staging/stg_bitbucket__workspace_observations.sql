-- One row per workspace a complete sync covered: the unit of observation (macros/observations.sql). A sync run
-- with a narrower BITBUCKET_WORKSPACES says nothing about the workspaces it left out, so they keep their last
-- observed state (is_latest_for_workspace stays on their last covering sync) and are never read as removals.
{{ workspace_observations(ref('stg_bitbucket__syncs')) }}
