"""Alembic migrations of the store (run them with `rayweave db upgrade` or `engine.store.migrate`)."""
