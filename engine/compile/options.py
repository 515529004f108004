"""Per-node execution options: the node type's declaration merged with the document's overrides.

A document's ``retry``/``resources`` give only the fields they change; everything else keeps what the node
type declares (``@node(retries=..., resources=...)``). ``timeout_s`` and ``cache`` override when set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.workflow.document import NodeDoc
    from nodes import NodeSpec, Resources, RetryPolicy


def effective_retry(spec: NodeSpec, options: NodeDoc | None) -> RetryPolicy:
    """The node's retry policy: the spec's, with the fields the document sets replaced.

    Raises ValueError (the SDK's PolicyError) when the merged policy is invalid (e.g. ``max_s < initial_s``).
    """
    if options is None or options.retry is None:
        return spec.retry
    from nodes import RetryPolicy

    data = spec.retry.to_json()
    data.update(options.retry.model_dump(exclude_none=True))
    return RetryPolicy.from_json(data)


def effective_resources(spec: NodeSpec, options: NodeDoc | None) -> Resources:
    """The node's resources: the spec's, with the fields the document sets replaced."""
    if options is None or options.resources is None:
        return spec.resources
    return spec.resources.merged(options.resources.model_dump(exclude_none=True))


def effective_timeout(spec: NodeSpec, options: NodeDoc | None) -> float | None:
    """The per-attempt timeout: the document's when set, else the spec's (None = no timeout)."""
    if options is not None and options.timeout_s is not None:
        return float(options.timeout_s)
    return spec.timeout_s


def effective_cache(spec: NodeSpec, options: NodeDoc | None) -> bool:
    """Whether results may be cached: both the spec and the document must allow it."""
    if options is not None and options.cache is not None:
        return spec.cache and options.cache
    return spec.cache
