"""Connecting to or starting Ray, and the settings of an installation.

Imports only Ray and pydantic-settings; everything here loads lazily (`from cluster.settings import Settings`,
`from cluster.ray_runtime import ensure_ray`).
"""
