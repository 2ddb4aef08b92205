"""Dagster definitions, one package per domain, each with a `definitions(settings)` of its own that
`bitbucket_assets.definitions` merges (and the CLI loads only the ones a command runs):

- `raw_snapshot`: the raw schema and the extraction into it, with the raw checks;
- `dbt_models`: the dbt project (the refresh plan views the extraction reads, then staging → marts and the
  analysts' table macros) and the reconciliation check;
- `upkeep`: raw retention, the history's order, the analysts' read copy;
- `access_requests`: the provisioning tables, the provisioning and expiry jobs, their schedule and sensor;
- `monitoring`: alerts on failed runs and the raw snapshot's freshness policy;
- `sync_job`: the daily sync job over the first three and its schedule; `resources`: every resource.
"""
