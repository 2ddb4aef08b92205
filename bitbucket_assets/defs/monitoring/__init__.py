"""What tells an operator that syncs stopped working."""
