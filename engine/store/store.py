"""`SqlStore`: the SQL backend of the `Store` protocol (SQLite, PostgreSQL or MariaDB/MySQL through SQLAlchemy):
one object grouping the repositories over one database engine."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.store.api_keys import ApiKeyRepository
from engine.store.audit import AuditRepository
from engine.store.bulk import BulkRepository
from engine.store.collab import CollabRepository
from engine.store.events import EventRepository
from engine.store.node_runs import NodeRunRepository
from engine.store.plugins import PluginRepository
from engine.store.reports import ReportRepository
from engine.store.runs import RunRepository
from engine.store.secrets import SecretRepository
from engine.store.shares import ShareRepository
from engine.store.tenants import TenantRepository
from engine.store.users import UserRepository
from engine.store.webhooks import WebhookRepository
from engine.store.workflows import WorkflowRepository


class SqlStore:
    """The persistent state of an installation in a SQL database; implements `engine.store.protocol.Store`.
    Build it with `open_store(url)`; close it when done.

    Thread-safe: repositories open a short session per call on a pooled engine. `engine` (the SQLAlchemy engine)
    is for the SQL backend's own modules (migrations, copies between databases) and its test support only.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.workflows = WorkflowRepository(engine)
        self.runs = RunRepository(engine)
        self.node_runs = NodeRunRepository(engine)
        self.events = EventRepository(engine)
        self.plugins = PluginRepository(engine)
        self.users = UserRepository(engine)
        self.api_keys = ApiKeyRepository(engine)
        self.audit = AuditRepository(engine)
        self.reports = ReportRepository(engine)
        self.secrets = SecretRepository(engine)
        self.collab = CollabRepository(engine)
        self.bulk = BulkRepository(engine)
        self.tenants = TenantRepository(engine)
        self.shares = ShareRepository(engine)
        self.webhooks = WebhookRepository(engine)

    @property
    def backend(self) -> str:
        """`"sqlite"`, `"postgresql"`, `"mariadb"` or `"mysql"` (SQLAlchemy's dialect name)."""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def connect_url(self) -> str:
        """The database URL with its password: what another process (a durable run's coordinator) opens."""
        return self.engine.url.render_as_string(hide_password=False)

    def ping(self) -> None:
        """One trivial query; raises the driver's error (an `errors.backend_errors()` type) when the database
        does not answer."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


if TYPE_CHECKING:
    from engine.store.protocol import Store

    def _implements_store(store: SqlStore) -> Store:
        # mypy proves here that the SQL backend implements the protocol: a missing or mistyped method fails.
        return store
