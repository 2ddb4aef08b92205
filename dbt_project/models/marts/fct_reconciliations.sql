{{
    config(
        materialized='incremental',
        unique_key='sync_id',
        incremental_strategy='delete+insert',
    )
}}
-- One row per build, kept for every sync that was the latest: how many repository access rows were compared
-- with Bitbucket's own effective permissions and how many disagreed. The evidence pack cites it per sync.
select
    (select sync_id from {{ ref('stg_bitbucket__syncs') }} where is_latest) as sync_id,
    (select synced_at from {{ ref('stg_bitbucket__syncs') }} where is_latest) as synced_at,
    (select count(*) from {{ ref('fct_effective_access') }} where resource_type = 'repository'
     and workspace_slug in (select workspace_slug from {{ ref('dim_workspaces') }} where effective_list = 'read'))
        as compared_rows,
    (select count(*) from {{ ref('fct_reconciliation_mismatches') }}) as mismatches,
    -- Nothing compared (no workspace's effective list read) is not a pass.
    (select count(*) from {{ ref('fct_reconciliation_mismatches') }}) = 0
        and exists (select 1 from {{ ref('dim_workspaces') }} where effective_list = 'read') as passed,
    (select list(distinct workspace_slug order by workspace_slug) from {{ ref('dim_workspaces') }}
     where effective_list = 'read') as compared_workspaces
where exists (select 1 from {{ ref('stg_bitbucket__syncs') }} where is_latest)
