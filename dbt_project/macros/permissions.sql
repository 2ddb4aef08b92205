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
