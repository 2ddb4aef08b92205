"""Provisioning domain: the group-membership job, the just-in-time expiry job, their schedule and sensor."""
