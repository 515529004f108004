"""Errors of the Feast nodes; each subclasses a builtin exception and names the node, port or param at fault."""

from __future__ import annotations


class FeastNodeError(Exception):
    """Base class of every error raised by a node of the `feast` plugin."""


class FeastRepoError(FeastNodeError, ValueError):
    """The `repo` input is no usable Feast repository (no `feature_store.yaml`, an invalid one, no registry)."""


class FeatureRefError(FeastNodeError, ValueError):
    """The `features` param is empty, malformed, or names a feature view or feature the registry lacks."""


class EntityTableError(FeastNodeError, ValueError):
    """The `entities` table lacks a join-key or timestamp column, or one of them holds unusable values."""


class FeastParamError(FeastNodeError, ValueError):
    """A param or input value the node cannot use (a bad timestamp, an unknown feature view to materialize)."""


class FeastStoreError(FeastNodeError, RuntimeError):
    """Feast itself failed while reading or writing the stores (the message carries Feast's reason)."""
