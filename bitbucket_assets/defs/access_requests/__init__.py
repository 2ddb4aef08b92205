"""Access requests: the provisioning tables, the jobs that fulfil approved requests and expire just-in-time
access, their sensor and schedule."""
