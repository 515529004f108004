"""Migration revisions, oldest first (`v0001_initial_schema` creates every table)."""
