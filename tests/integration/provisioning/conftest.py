"""The provisioning tests' warehouse (`warehouse`, in tests/conftest.py) and helpers
(tests/support/provisioning.py)."""
