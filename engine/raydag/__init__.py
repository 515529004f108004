"""A way in for Ray users: Ray DAGs (`f.bind(...)` of `@ray.remote` functions) as durable rayweave workflows.

`engine.raydag.workflow` stands in for the removed `ray.workflow` module (`workflow.run(dag, workflow_id=...)`);
`engine.raydag.convert.workflow_from_dag` builds the rayweave workflow a DAG describes. See
docs/guides/migrating-from-ray-workflows.md.
"""
