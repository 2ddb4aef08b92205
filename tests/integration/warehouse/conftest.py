"""The warehouse tests read `tiny_history` (tests/conftest.py): several syncs of `tiny`, with revocations and
a re-grant between them, each a real sync over HTTP followed by a real dbt build run by Dagster."""
