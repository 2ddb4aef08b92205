"""Extraction: Bitbucket → raw snapshot tables in DuckDB, one immutable snapshot per sync."""
