"""The `config` of a run's node contexts: the few installation settings nodes need, made from `Settings`.

Nodes run in Ray workers whose environment is not the installation's: a node must never read `RAYWEAVE_*`
variables behind the settings' back. The process that starts a run (`engine.run`, the durable runner behind
the CLI and the HTTP API) knows the installation's `Settings`; its executor turns them into this small mapping
of strings once per run, and every task carries it to `nodes.context.current().config`.

Keys (all strings):

- `mlflow.tracking_uri`: the MLflow tracking URI of ML nodes (`Settings.resolved_mlflow_tracking_uri`);
- `mlflow.artifacts_uri`: the artifact root of the experiments they create
  (`Settings.resolved_mlflow_artifacts_uri`);
- `llm.base_url`, `llm.model`, `llm.api_key_env`: the OpenAI-compatible endpoint of `nlp/generate@1`, its model,
  and the name of the worker's environment variable holding its API key (`Settings.llm_*`; never the key);
- `ray.run_coordinator`: the name of the detached actor that hosts runs on Ray, for plugins' helpers that follow
  a run to its end (the ML plugin's parent-run closer) without importing the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster.settings import Settings

__all__ = [
    "LLM_API_KEY_ENV",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "MLFLOW_ARTIFACTS_URI",
    "MLFLOW_TRACKING_URI",
    "RUN_COORDINATOR",
    "node_config_for",
]

#: The key of the MLflow tracking URI in a node context's `config`.
MLFLOW_TRACKING_URI = "mlflow.tracking_uri"
#: The key of the MLflow artifact root in a node context's `config`.
MLFLOW_ARTIFACTS_URI = "mlflow.artifacts_uri"
#: The keys of the text generation endpoint (`nlp/generate@1`): base URL, model, the API key's variable name.
LLM_BASE_URL = "llm.base_url"
LLM_MODEL = "llm.model"
LLM_API_KEY_ENV = "llm.api_key_env"
#: The key of the run coordinator actor's name (in rayweave's actor namespace).
RUN_COORDINATOR = "ray.run_coordinator"


def node_config_for(settings: Settings) -> dict[str, str]:
    """The node config of runs under `settings` (see the module docstring)."""
    from engine.execution.ray.remote import COORDINATOR_NAME

    return {
        MLFLOW_TRACKING_URI: settings.resolved_mlflow_tracking_uri,
        MLFLOW_ARTIFACTS_URI: settings.resolved_mlflow_artifacts_uri,
        LLM_BASE_URL: settings.llm_base_url,
        LLM_MODEL: settings.llm_model,
        LLM_API_KEY_ENV: settings.llm_api_key_env,
        RUN_COORDINATOR: COORDINATOR_NAME,
    }
