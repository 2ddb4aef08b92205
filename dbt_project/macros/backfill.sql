{#
  Columns added to the incremental history marts after warehouses were built with them: dbt appends them
  (`on_schema_change='append_new_columns'`) and leaves them null on the rows already there; these post-hooks fill
  those rows once, from the same rules as new rows. A table without such rows costs a scan that DuckDB's
  null statistics mostly skip.
#}
{% macro backfill_history_columns() %}
update {{ this }} set
    permission_rank = {{ permission_rank('permission') }},
    user_display_name = case when principal_type = 'user' then principal_name end,
    access_path = {{ grant_path_text() }}
where permission_rank is null
{% endmacro %}

{% macro backfill_change_columns() %}
update {{ this }} set
    old_permission_rank = {{ permission_rank('old_permission') }},
    new_permission_rank = {{ permission_rank('new_permission') }},
    user_display_name = case when principal_type = 'user' then principal_name end,
    access_path = {{ change_path_text() }}
where old_permission_rank is null or new_permission_rank is null or access_path is null
{% endmacro %}
