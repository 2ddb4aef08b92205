"""Provisioning: fulfil approved group-membership requests exactly once, with an audit trail."""
