"""The raw snapshot: the raw schema, the extraction into it, and the raw checks."""
