{#
  Which snapshots exist and which sync holds each workspace's latest observation (docs/design.md, "Coverage"):
  the latest complete sync that covered that workspace, not the latest sync overall. Written once and used over
  two inputs: the published snapshots (staging) and the raw tables mid-sync (the refresh plan).
#}

{# Complete syncs only: the one place that decides which snapshots exist downstream. #}
{% macro complete_syncs(syncs) %}
select
    sync_id,
    started_at,
    finished_at as synced_at,
    workspaces,
    entity_counts,
    row_number() over (order by finished_at desc) = 1 as is_latest
from {{ syncs }}
where status = 'complete'
{% endmacro %}

{#
  One row per workspace a complete sync covered: the unit of observation. A sync run with a narrower
  BITBUCKET_WORKSPACES says nothing about the workspaces it left out, so they keep their last observed state.
#}
{% macro workspace_observations(complete_syncs) %}
select
    sync_id,
    workspace_slug,
    synced_at,
    sync_id || '|' || workspace_slug as observation_key,
    row_number() over (partition by workspace_slug order by synced_at desc) = 1 as is_latest_for_workspace
from (select sync_id, synced_at, unnest(workspaces) as workspace_slug from {{ complete_syncs }})
{% endmacro %}

{#
  One row per permission list in each complete snapshot: read by that sync, or carried forward from the sync
  that last read it (extraction/refresh.py).
#}
{% macro permission_lists(fetch_log, complete_syncs) %}
select
    s.synced_at,
    f.sync_id,
    f.workspace_uuid,
    f.workspace_slug,
    f.resource_type,
    f.resource_id,
    f.list,
    f.rows as list_rows,
    f.fetched_at as read_at,
    coalesce(f.observed_sync_id, f.sync_id) as observed_sync_id,
    coalesce(f.observed_sync_id, f.sync_id) <> f.sync_id as is_carried_forward,
    f.read_reason
from {{ fetch_log }} as f
inner join {{ complete_syncs }} as s using (sync_id)
{% endmacro %}

{# Predicates that select each workspace's latest observation (`observations`: staging's, by default). #}
{% macro latest_observation(sync_column='sync_id', workspace_column='workspace_slug', observations=none) %}
{{ sync_column }} || '|' || {{ workspace_column }} in (
    select observation_key from {{ observations or ref('stg_bitbucket__workspace_observations') }}
    where is_latest_for_workspace
)
{% endmacro %}

{# Syncs holding at least one workspace's latest observation (for inputs that are not per workspace). #}
{% macro latest_observation_syncs(sync_column='sync_id') %}
{{ sync_column }} in (
    select sync_id from {{ ref('stg_bitbucket__workspace_observations') }} where is_latest_for_workspace
)
{% endmacro %}
