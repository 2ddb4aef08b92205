{# What a project permission gives on the project's repositories: create-repo gives write. #}
{% macro project_to_repository_permission(column) -%}
    case {{ column }} when 'create-repo' then 'write' else {{ column }} end
{%- endmacro %}

{# Order of permissions within one resource type; higher wins. Workspace roles: member < create-project < owner. #}
{% macro permission_rank(column) -%}
    case {{ column }}
        when 'read' then 1 when 'member' then 1
        when 'write' then 2 when 'create-project' then 2
        when 'create-repo' then 3
        when 'admin' then 4 when 'owner' then 4
        else 0
    end
{%- endmacro %}

{#
  How a grant path reads, e.g. `project via group leads via project PAY: write`. Every label in the warehouse,
  the review files and the evidence comes from here.
#}
{% macro grant_path_label(source='grant_source', group='via_group_slug', project='via_project_key', permission='permission') -%}
    {{ source }}
    || case when {{ group }} is not null then ' via group ' || {{ group }} else '' end
    || case when {{ project }} is not null then ' via project ' || {{ project }} else '' end
    || ': ' || {{ permission }}
{%- endmacro %}

{#
  The same path in words, for people (the dashboard, reports): `workspace owner`, `direct (read)`,
  `via group leads (write)`, `via project PAY through group leads (admin)`, `via project PAY (admin)`.
#}
{% macro grant_path_text(source='grant_source', group='via_group_slug', project='via_project_key', permission='permission') -%}
    case
        when {{ source }} = 'workspace' then 'workspace owner'
        when {{ project }} is not null and {{ group }} is not null
            then 'via project ' || {{ project }} || ' through group ' || {{ group }} || ' (' || {{ permission }} || ')'
        when {{ project }} is not null then 'via project ' || {{ project }} || ' (' || {{ permission }} || ')'
        when {{ group }} is not null then 'via group ' || {{ group }} || ' (' || {{ permission }} || ')'
        else 'direct (' || {{ permission }} || ')'
    end
{%- endmacro %}

{#
  The distinct non-null values of a column over a group of grant paths, as a sorted list (never null). Sorted
  and deduplicated after the aggregate: a DISTINCT aggregate costs its own hash table per column.
#}
{% macro distinct_list(column) -%}
    list_sort(list_distinct(list({{ column }})))
{%- endmacro %}

{#
  A grant path in words without its permission, for rows that carry the permission beside it (the changes, with
  old and new permission) and for every kind of row they hold: `workspace role`, `member of group leads`,
  `group grant` (a repository or project granted to the group itself), `workspace owner`, `direct`,
  `via group leads`, `via project PAY`, `via project PAY through group leads`.
#}
{% macro change_path_text(principal_type='principal_type', resource_type='resource_type', resource_key='resource_key', source='grant_source', group='via_group_slug', project='via_project_key') -%}
    case
        when {{ resource_type }} = 'workspace' and {{ source }} = 'direct' then 'workspace role'
        when {{ resource_type }} = 'group' then 'member of group ' || {{ resource_key }}
        when {{ principal_type }} = 'group' and {{ source }} = 'direct' then 'group grant'
        when {{ source }} = 'workspace' then 'workspace owner'
        when {{ project }} is not null and {{ group }} is not null
            then 'via project ' || {{ project }} || ' through group ' || {{ group }}
        when {{ project }} is not null then 'via project ' || {{ project }}
        when {{ group }} is not null then 'via group ' || {{ group }}
        else 'direct'
    end
{%- endmacro %}
