"""Run lineage for other systems: OpenLineage run events posted to a configured endpoint (`openlineage`)."""
