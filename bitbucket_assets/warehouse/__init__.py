"""The warehouse as files: where it lives, the analysts' read copy, the writer pool. No Dagster in here."""
