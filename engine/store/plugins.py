"""Installed plugin versions and their manifests."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from typing import Any

from sqlmodel import col, select

from engine.store.base import Repository
from engine.store.columns import utcnow
from engine.store.errors import NotFoundError
from engine.store.models import Plugin


class PluginRepository(Repository):
    """Plugin records (name + version is the key; several versions of one plugin may be installed)."""

    def add(self, name: str, version: str, manifest: Mapping[str, Any], *, enabled: bool = True) -> Plugin:
        """Record an installed plugin version; installing the same version again replaces its manifest."""
        data = json.loads(json.dumps(dict(manifest)))
        with self.session() as session:
            row = session.get(Plugin, (name, version))
            if row is None:
                row = Plugin(
                    name=name, version=version, manifest=data, enabled=enabled, installed_at=utcnow()
                )
            else:
                row.manifest, row.enabled, row.installed_at = data, enabled, utcnow()
            session.add(row)
        return row

    def get(self, name: str, version: str) -> Plugin:
        """One installed plugin version; raises `NotFoundError`."""
        with self.reading() as session:
            row = session.get(Plugin, (name, version))
        if row is None:
            raise NotFoundError(
                f"plugin {name!r} version {version!r} is not installed; list plugins to see versions"
            )
        return row

    def list(self, *, name: str | None = None, enabled_only: bool = False) -> builtins.list[Plugin]:
        """Installed plugin versions, by name then version."""
        query = select(Plugin)
        if name is not None:
            query = query.where(Plugin.name == name)
        if enabled_only:
            query = query.where(col(Plugin.enabled).is_(True))
        with self.reading() as session:
            return builtins.list(session.exec(query.order_by(col(Plugin.name), col(Plugin.version))))

    def set_enabled(self, name: str, version: str, enabled: bool) -> Plugin:
        """Enable or disable an installed plugin version without removing it."""
        with self.session() as session:
            row = session.get(Plugin, (name, version))
            if row is None:
                raise NotFoundError(f"plugin {name!r} version {version!r} is not installed")
            row.enabled = enabled
            session.add(row)
        return row

    def remove(self, name: str, version: str) -> None:
        """Forget an installed plugin version; raises `NotFoundError` if it was not installed."""
        with self.session() as session:
            row = session.get(Plugin, (name, version))
            if row is None:
                raise NotFoundError(
                    f"plugin {name!r} version {version!r} is not installed; nothing to remove"
                )
            session.delete(row)
