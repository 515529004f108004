"""Errors of the cluster package."""

from __future__ import annotations


class ClusterConnectionError(ConnectionError):
    """Ray at the configured address could not be joined; the message names the address and what to check."""
