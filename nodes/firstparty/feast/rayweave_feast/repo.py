"""Opening a Feast repository within the run's access policy, and checking what the nodes are asked for.

`open_store` checks the repository directory against the run's data roots (`nodes.builtin.paths.locate`,
the same rule as the built-in file nodes) before Feast reads anything, then the local files its
`feature_store.yaml` names: a file registry and a SQLite online store. `check_sources` does the same for the
file sources of the feature views a node reads. Remote locations (an `s3://` registry, Redis, PostgreSQL, a
warehouse) are reached with the credentials of the repository's configuration and are not files of the worker.

Feast opens these files itself, by path: the check resolves every symlink first, but it cannot hold the files
open for Feast the way the built-in nodes do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from nodes import context
from nodes.builtin.paths import locate
from rayweave_feast.errors import FeastRepoError, FeatureRefError

__all__ = ["FeatureRef", "check_sources", "open_store", "parse_refs", "resolve_views"]

_YAML = "feature_store.yaml"


def _local_path(uri: str) -> str | None:
    """The path on this worker that a location Feast would open names, or None when it is remote (`s3://`)."""
    parsed = urlparse(uri)
    if not parsed.scheme:
        return uri
    return parsed.path if parsed.scheme == "file" else None


def _under(repo: Path, path: str) -> str:
    return str(Path(path) if Path(path).is_absolute() else repo / path)


def open_store(repo: str, node: str) -> Any:
    """A `feast.FeatureStore` of the repository directory `repo`, checked against the run's data roots.

    `node` (e.g. ``feast/online_features@1``) prefixes every message.
    """
    policy = context.current().policy
    where = f"{node}: input port 'repo'"
    real = Path(locate(policy, repo, where).real)
    if not (real / _YAML).is_file():
        what = "does not exist" if not real.exists() else f"has no {_YAML}"
        raise FeastRepoError(
            f"{where}: {repo!r} is not a Feast repository: it {what}; point 'repo' at the directory holding "
            f"{_YAML} (the one `feast apply` was run in)"
        )
    from feast import FeatureStore

    try:
        store = FeatureStore(repo_path=str(real))
    except Exception as exc:  # Feast raises pydantic, YAML and its own errors for a bad configuration
        raise FeastRepoError(f"{where}: {_YAML} of {repo!r} is invalid: {exc}; fix the file") from exc
    config = store.config
    registry = config.registry
    registry_path = _local_path(str(registry.path))
    if getattr(registry, "registry_type", "file") == "file" and registry_path:
        locate(policy, _under(real, registry_path), f"{where}: {_YAML} field 'registry'")
    online = config.online_store
    if getattr(online, "type", "") == "sqlite" and getattr(online, "path", None):
        locate(policy, _under(real, str(online.path)), f"{where}: {_YAML} field 'online_store.path'")
    return store


def check_sources(store: Any, views: Iterable[Any], node: str) -> None:
    """Check the local file sources of `views` (batch sources of feature views) against the data roots."""
    from feast import FileSource

    policy = context.current().policy
    for view in views:
        source = getattr(view, "batch_source", None)
        if not isinstance(source, FileSource):
            continue  # a warehouse table, a stream: reached over the network with the repository's settings
        path = _local_path(source.path)
        if path:
            where = f"{node}: file source {source.name!r} of feature view {view.name!r}"
            locate(policy, _under(Path(store.repo_path), path), where)


@dataclass(frozen=True)
class FeatureRef:
    """One `view:feature` reference of the `features` param."""

    view: str
    feature: str

    @property
    def text(self) -> str:
        """The reference as Feast takes it."""
        return f"{self.view}:{self.feature}"

    def column(self, full_feature_names: bool) -> str:
        """The name of the output column Feast gives this feature."""
        return f"{self.view}__{self.feature}" if full_feature_names else self.feature


def parse_refs(features: Sequence[str], node: str) -> list[FeatureRef]:
    """The `features` param as references; malformed, empty or repeated ones fail naming the param."""
    where = f"{node}: param 'features'"
    if not features:
        raise FeatureRefError(f"{where} is empty; list the features to get, as 'feature_view:feature'")
    refs: list[FeatureRef] = []
    for text in features:
        view, sep, feature = str(text).partition(":")
        if not sep or not view or not feature or ":" in feature:
            raise FeatureRefError(
                f"{where}: {text!r} is not a feature reference; write 'feature_view:feature', e.g. "
                f"'driver_stats:conv_rate'"
            )
        ref = FeatureRef(view.strip(), feature.strip())
        if ref in refs:
            raise FeatureRefError(f"{where}: {text!r} is listed twice; list each feature once")
        refs.append(ref)
    return refs


def _views_by_name(store: Any) -> dict[str, Any]:
    views: dict[str, Any] = {}
    for listing in (store.list_all_feature_views, store.list_on_demand_feature_views):
        for view in listing():
            views.setdefault(view.name, view)
    return views


def resolve_views(store: Any, refs: Sequence[FeatureRef], node: str) -> dict[str, Any]:
    """The feature views the references name, by name; an unknown view or feature fails naming both."""
    where = f"{node}: param 'features'"
    try:
        known = _views_by_name(store)
    except FileNotFoundError as exc:
        raise FeastRepoError(
            f"{node}: input port 'repo': the repository has no registry yet ({exc}); run `feast apply` in it"
        ) from exc
    views: dict[str, Any] = {}
    for ref in refs:
        view = known.get(ref.view.split("@", 1)[0])
        if view is None:
            names = ", ".join(sorted(known)) or "none"
            raise FeatureRefError(
                f"{where}: {ref.text!r} names feature view {ref.view!r}, which project {store.project!r} does "
                f"not have (feature views: {names}); use one of them, or `feast apply` the view first"
            )
        features = [field.name for field in view.features]
        if ref.feature not in features:
            raise FeatureRefError(
                f"{where}: {ref.text!r} names feature {ref.feature!r}, which feature view {view.name!r} does "
                f"not have (features: {', '.join(features)}); use one of them"
            )
        views[view.name] = view
    return views
