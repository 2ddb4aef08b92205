"""The dbt project as Dagster assets, in two steps of the sync: the refresh plan's views before the extraction
(which reads them), everything else after it."""
