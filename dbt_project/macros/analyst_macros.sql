{#
  Table macros analysts call in plain SQL, created after every dbt run:
    select * from marts.access_as_of('2026-03-01')            -- every grant path held at that time
    select * from marts.effective_access_as_of('2026-03-01')  -- the highest permission per user and resource
  "As of" means: seen by the last complete sync at or before that time.
#}
{% macro create_analyst_macros() %}
{% if execute %}
{% set sql %}
create or replace macro marts.access_as_of(as_of) as table
    select *
    from marts.fct_grant_history
    where valid_from <= cast(as_of as timestamptz)
      and (valid_to is null or valid_to > cast(as_of as timestamptz));

create or replace macro marts.effective_access_as_of(as_of) as table
    select
        workspace_slug,
        resource_type,
        resource_id,
        any_value(resource_key) as resource_key,
        any_value(resource_name) as resource_name,
        principal_id as user_uuid,
        any_value(user_account_id) as user_account_id,
        any_value(principal_name) as user_display_name,
        arg_max(permission, {{ permission_rank('permission') }}) as permission,
        list(grant_source
             || case when via_group_slug is not null then ' via group ' || via_group_slug else '' end
             || case when via_project_key is not null then ' via project ' || via_project_key else '' end
             || ': ' || permission order by {{ permission_rank('permission') }} desc) as grant_paths
    from marts.access_as_of(as_of)
    where principal_type = 'user' and resource_type in ('workspace', 'project', 'repository')
    group by workspace_slug, resource_type, resource_id, principal_id;
{% endset %}
{% do run_query(sql) %}
{% endif %}
{% endmacro %}
