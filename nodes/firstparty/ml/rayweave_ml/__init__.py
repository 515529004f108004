"""rayweave's first-party ML plugin (`ml`): scikit-learn training on Arrow tables with MLflow tracking.

Modules: `rayweave_ml.nodes` (the nodes), `rayweave_ml.tracking` (MLflow: database, experiments, the parent
run of a rayweave run, the nested run of a node), `rayweave_ml.models` (model references and the per-process
cache of loaded models), `rayweave_ml.estimators` (estimators by dotted name, metrics by task type),
`rayweave_ml.errors`. The package runs inside the plugin's Ray runtime environment; nothing heavy is imported
when it is imported.
"""
