"""rayweave's first-party Feast plugin (`feast`): feature stores in workflows, on Arrow tables.

- `feast/historical_features@1`: point-in-time-correct feature values joined to an entity table with event
  timestamps (training sets, batch scoring);
- `feast/online_features@1`: the latest feature values of entity rows from the online store;
- `feast/materialize@1`: load feature values from the offline store into the online store.

Every node takes the Feast repository (a directory holding `feature_store.yaml`) as its `repo` input; local
files it names (the repository, a file registry, a SQLite online store, file sources) must lie below the run's
data roots (`rayweave_feast.repo`). The plugin runs in its own Ray runtime environment; Feast is imported
inside the nodes only.
"""
