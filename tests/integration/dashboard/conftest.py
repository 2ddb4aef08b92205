"""The dashboard tests read `dashboard_db` (tests/conftest.py)."""
