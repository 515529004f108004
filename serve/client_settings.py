"""What the HTTP client of the SDK reads from the environment, read in one place (prefix `RAYWEAVE_`).

`RAYWEAVE_SERVER` (the server's URL; the CLI's `--server` reads it too), `RAYWEAVE_API_KEY`, `RAYWEAVE_HOME`
(where `admin.key` is looked for), `RAYWEAVE_CLIENT_TIMEOUT_S` (seconds an HTTP request may take) and
`RAYWEAVE_CA_BUNDLE` (the certificate authorities to trust for an https:// server with a private CA). A client
is given its values as arguments first; what it is not given comes from here.
"""

from __future__ import annotations

import ssl
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
    ca_bundle: Path | None = Field(
        default=None,
        description=(
            "PEM file of the certificate authorities a client trusts for an https:// server (a private CA);"
            " default: the system's."
        ),
    )

    def tls_context(self) -> ssl.SSLContext:
        """The TLS context of HTTPS and WSS connections: the system's trust store, or only `ca_bundle`."""
        if self.ca_bundle is None:
            return ssl.create_default_context()
        try:
            return ssl.create_default_context(cafile=str(self.ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(
                f"RAYWEAVE_CA_BUNDLE: cannot read certificate authorities from {self.ca_bundle} ({exc}); give a"
                " PEM file"
            ) from None

    @property
    def admin_key_path(self) -> Path:
        """The admin key the server writes on its first start (`{home}/admin.key`)."""
        return self.home / "admin.key"
