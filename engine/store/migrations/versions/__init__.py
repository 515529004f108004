"""Migration revisions, oldest first (`v0001_initial_schema` creates every table; `v0002_run_skipped_outputs`
adds the skipped outputs of a run)."""
