"""The one typed settings object of rayweave, read from `RAYWEAVE_*` environment variables.

Entry points (the CLI, the server, tests) build it once with `Settings()` and pass it down explicitly; nothing
reads the environment behind its back.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration of one rayweave installation (prefix `RAYWEAVE_`)."""

    model_config = SettingsConfigDict(env_prefix="RAYWEAVE_", extra="ignore")

    home: Path = Field(
        default=Path(".rayweave"), description="Directory for the SQLite file, caches and keys."
    )
    database_url: str = Field(
        default="", description="SQLAlchemy URL of the database; empty means SQLite at `{home}/rayweave.db`."
    )
    ray_address: str = Field(
        default="", description="Address of a Ray cluster to join; empty starts a local Ray."
    )
    results_uri: str = Field(
        default="",
        description="Durable result store: a directory or pyarrow filesystem URI (s3://...); default {home}/results.",
    )
    cache_dir: Path | None = Field(
        default=None, description="Durable cache directory; default `{home}/cache`."
    )
    plugin_dirs: list[Path] = Field(default_factory=list, description="Directories scanned for plugins.")
    plugin_index: str = Field(
        default="", description="Plugin index: a directory or an http(s) URL of index.json."
    )
    host: str = Field(default="127.0.0.1", description="Host the HTTP API binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port of the HTTP API.")
    oidc_issuer: str = Field(
        default="", description="OIDC issuer whose tokens the API accepts; empty: API keys only."
    )
    oidc_audience: str = Field(default="", description="The `aud` that accepted OIDC tokens must carry.")
    oidc_jwks_url: str = Field(
        default="", description="JWKS URL; default: from the issuer's discovery document."
    )
    oidc_jwks_refetch_floor_s: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Least seconds between two fetches of the OIDC issuer's keys: tokens naming an unknown key id refetch"
            " at most this often."
        ),
    )
    mlflow_tracking_uri: str = Field(default="", description="MLflow tracking URI for ML nodes.")
    ray_num_cpus: int | None = Field(
        default=None, ge=1, description="CPUs of an embedded local Ray (default: all)."
    )
    ray_dashboard: bool = Field(
        default=False, description="Start the Ray dashboard with an embedded local Ray."
    )
    max_tasks_in_flight: int = Field(
        default=4096,
        ge=1,
        description=(
            "Most tasks of one run submitted to Ray and not yet finished; further ready nodes wait in the"
            " run coordinator (Ray holds about 10 KB per submitted task there)."
        ),
    )

    @property
    def resolved_database_url(self) -> str:
        """The database URL to use: the configured one, or the SQLite file under `home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'rayweave.db').resolve()}"

    @property
    def resolved_cache_dir(self) -> Path:
        """The durable cache directory: the configured one, or `{home}/cache`."""
        return self.cache_dir if self.cache_dir is not None else self.home / "cache"
