{#
  A model materialized as a DuckDB table macro: `create or replace macro <schema>.<name>(<parameters>) as table
  <the model's select>`. The analysts' functions over any date (models/marts/table_macros) are models this way,
  so dbt's lineage and Dagster's graph show what they read. Their body names relations without the catalog
  (`unqualified`), so they keep working in copies of the file (the analysts' read copy has another name).
#}
{% materialization table_macro, adapter='duckdb' %}
  {%- set parameters = config.get('parameters') or [] -%}
  {%- do adapter.create_schema(api.Relation.create(database=this.database, schema=this.schema)) -%}
  {{ run_hooks(pre_hooks) }}
  {% call statement('main') -%}
    create or replace macro {{ this.include(database=false) }}({{ parameters | join(', ') }}) as table
    {{ sql }}
  {%- endcall %}
  {{ run_hooks(post_hooks) }}
  {% do adapter.commit() %}
  {{ return({'relations': []}) }}
{% endmaterialization %}


{# A relation without its catalog: `marts.fct_grant_history`. #}
{% macro unqualified(relation) %}{{ return(relation.include(database=false)) }}{% endmacro %}
