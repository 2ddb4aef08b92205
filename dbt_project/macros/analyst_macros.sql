{#
  Table macros analysts (and the review export, the evidence pack and the dashboard) call in plain SQL,
  created after every dbt run from the rules in access_rules.sql:
    select * from marts.access_as_of('2026-03-01')             -- every grant path held at that time
    select * from marts.effective_access_as_of('2026-03-01')   -- the highest permission per user and resource
    select * from marts.review_population('2026-03-01', null)  -- an access review's rows (or one workspace's)
    select * from marts.access_risks_as_of('2026-03-01')       -- the open risks at that time
  "As of" means: seen by the last complete sync at or before that time.
#}
{% macro create_analyst_macros() %}
{# A run that built only some models on a new warehouse (e.g. the refresh plan's views) has no history yet. #}
{% if execute and adapter.get_relation(database=target.database, schema='marts', identifier='fct_grant_history') %}
{# Hooks cannot `ref`: these are the relations the marts and staging schemas always hold. #}
{% set history = 'marts.fct_grant_history' %}
{% set sql %}
create or replace macro marts.access_as_of(as_of) as table
    {{ paths_held_at(history, 'as_of') }};

create or replace macro marts.effective_access_as_of(as_of) as table
    select
        workspace_slug, resource_type, resource_id, resource_key, resource_name, user_uuid, user_account_id,
        user_display_name, permission,
        all_grant_paths as grant_paths,  -- every path, highest first (as this macro always gave them)
        grant_sources, via_group_slugs, via_project_keys, is_workspace_member, first_granted_at,
        access_paths  -- the same paths in words, highest first
    from ({{ effective_access('marts.access_as_of(as_of)', first_granted='min(valid_from)') }});

create or replace macro marts.review_population(as_of, in_workspace) as table
    {{ review_population(history, 'staging.stg_bitbucket__workspace_members', 'as_of', 'in_workspace') }};

create or replace macro marts.access_risks_as_of(as_of) as table
    select risks.*, cast(as_of as timestamptz) as as_of
    from ({{ access_risks(
        history, 'staging.stg_bitbucket__workspace_observations', 'staging.stg_bitbucket__workspace_members',
        'staging.stg_bitbucket__repositories', 'staging.stg_bitbucket__users', 'as_of', leavers=leavers_relation()
    ) }}) as risks
    order by risk, workspace_slug, resource_key, user_display_name;
{% endset %}
{% do run_query(sql) %}
{% endif %}
{% endmacro %}
