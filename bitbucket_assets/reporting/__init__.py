"""Reporting over the marts: access-review workbooks and the audit evidence pack."""
