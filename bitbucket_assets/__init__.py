"""bitbucket-access: a Bitbucket Cloud access warehouse built with Dagster, dbt and DuckDB."""
