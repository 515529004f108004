"""What the HTTP client of the SDK reads from the environment, read in one place (prefix `RAYWEAVE_`).

`RAYWEAVE_SERVER` (the server's URL; the CLI's `--server` reads it too), `RAYWEAVE_API_KEY`, `RAYWEAVE_HOME`
(where `admin.key` is looked for) and `RAYWEAVE_CLIENT_TIMEOUT_S` (seconds an HTTP request may take). A client
is given its values as arguments first; what it is not given comes from here.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The server a client talks to when neither its arguments nor `RAYWEAVE_SERVER` name one.
DEFAULT_URL = "http://127.0.0.1:8000"


class ClientSettings(BaseSettings):
    """The client's configuration from `RAYWEAVE_*` environment variables (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="RAYWEAVE_", extra="ignore")

    server: str = Field(default=DEFAULT_URL, description="URL of the rayweave server.")
    api_key: SecretStr | None = Field(default=None, description="API key sent as a bearer token.")
    home: Path = Field(default=Path(".rayweave"), description="Installation directory holding `admin.key`.")
    client_timeout_s: float = Field(default=30.0, gt=0, description="Seconds one HTTP request may take.")

    @property
    def admin_key_path(self) -> Path:
        """The admin key the server writes on its first start (`{home}/admin.key`)."""
        return self.home / "admin.key"
