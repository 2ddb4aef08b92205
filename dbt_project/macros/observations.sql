{#
  Predicates that select each workspace's latest observation (docs/design.md, "Coverage"): the latest
  complete sync that covered that workspace, not the latest sync overall.
#}
{% macro latest_observation(sync_column='sync_id', workspace_column='workspace_slug') %}
{{ sync_column }} || '|' || {{ workspace_column }} in (
    select observation_key from {{ ref('stg_bitbucket__workspace_observations') }} where is_latest_for_workspace
)
{% endmacro %}

{# Syncs holding at least one workspace's latest observation (for inputs that are not per workspace). #}
{% macro latest_observation_syncs(sync_column='sync_id') %}
{{ sync_column }} in (
    select sync_id from {{ ref('stg_bitbucket__workspace_observations') }} where is_latest_for_workspace
)
{% endmacro %}
