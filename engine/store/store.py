"""`Store`: one object grouping the repositories over one database engine."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Engine

from engine.store.api_keys import ApiKeyRepository
from engine.store.audit import AuditRepository
from engine.store.events import EventRepository
from engine.store.node_runs import NodeRunRepository
from engine.store.plugins import PluginRepository
from engine.store.runs import RunRepository
from engine.store.users import UserRepository
from engine.store.workflows import WorkflowRepository


class Store:
    """The persistent state of an installation. Build it with `open_store(url)`; close it when done.

    Thread-safe: repositories open a short session per call on a pooled engine.
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

    @property
    def backend(self) -> str:
        """`"sqlite"` or `"postgresql"`."""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
