"""`ModelReplica`: the Ray Serve deployment of one registered MLflow model.

Each replica loads the pyfunc model from the registry (tracking URI from the installation's settings), batches
concurrent requests dynamically (`@serve.batch`: up to `max_batch_size` requests, waiting at most
`batch_wait_ms` for a batch to fill; a request that arrives while nothing else is in flight is predicted at
once, so a lone client never waits for a batch) and answers three ways: `infer` (an Open Inference Protocol,
records or Arrow IPC body, called through a Serve handle by the API's `/v2` routes), `predict_table` (a pyarrow
Table, for nodes inside the cluster) and the fast path, an HTTP server inside the replica on a loopback port
that every replica of the model shares (`serve.models.fastpath`, docs/adr/014).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from ray import serve

log = logging.getLogger("rayweave.models")

#: Default dynamic batching: at most this many requests per model call...
MAX_BATCH_SIZE = 16
#: ...waiting at most this long for a batch to fill once two or more requests are in flight.
BATCH_WAIT_MS = 2.0


@dataclass(frozen=True)
class ModelSpec:
    """What a model deployment serves and how: sent to every replica (and returned by `info`)."""

    name: str
    version: str
    tracking_uri: str
    database_url: str
    port: int
    host: str = "127.0.0.1"
    max_batch_size: int = MAX_BATCH_SIZE
    batch_wait_ms: float = BATCH_WAIT_MS
    mlflow_run_id: str = ""
    oidc: Any = None
    #: How the deployment scales (kept so a failed redeploy can restore it): a fixed count, or (MIN, MAX).
    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    #: With `autoscale`: Serve's delay before it removes an idle replica (None: Serve's default).
    downscale_delay_s: float | None = None
    #: The installation's event bus (`RAYWEAVE_EVENT_BUS`): a replica announces that it came up or went.
    event_bus: str = ""

    @property
    def model_uri(self) -> str:
        """The MLflow registry URI of the model version (`models:/NAME/VERSION`)."""
        return f"models:/{self.name}/{self.version}"

    @property
    def endpoint(self) -> str:
        """The fast path's base URL (OIP routes under it)."""
        return f"http://{self.host}:{self.port}"


def load_served_model(tracking_uri: str, model_uri: str) -> Any:
    """The pyfunc model a replica serves, loaded from the registry as a replica loads it (also the check a
    redeploy makes before it touches a running deployment: `serve.models.manager.deploy`)."""
    import mlflow

    from serve.models.codec import columns_of

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(model_uri)
    columns_of(model.metadata.get_input_schema())
    return model


class _Failed:
    """A request's failure inside a batch (re-raised in that request only)."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ModelReplica:
    """One replica of a model deployment (see the module docstring)."""

    async def __init__(self, spec: ModelSpec) -> None:  # type: ignore[misc]  # Serve awaits it
        from serve.loopback import keep_replica_grpc_on_loopback
        from serve.models.codec import columns_of

        keep_replica_grpc_on_loopback()
        self.spec = spec
        self.model = load_served_model(spec.tracking_uri, spec.model_uri)
        self.columns = columns_of(self.model.metadata.get_input_schema())
        self._output_schema = self.model.metadata.get_output_schema()
        # Inputs are checked and cast against the signature here (`codec.conform`) before the model sees them,
        # so the flavor's own predict is called without pyfunc repeating that check (about 0.3 ms per call on
        # this machine, a tenth of the fast path's budget; docs/adr/014). Models without columns keep pyfunc's.
        impl = getattr(self.model, "_model_impl", None)
        self._predict = impl.predict if self.columns and impl is not None else self.model.predict
        batched: Any = self._batched
        batched.set_max_batch_size(max(1, spec.max_batch_size))
        batched.set_batch_wait_timeout_s(spec.batch_wait_ms / 1000)
        self._inflight = 0
        self.requests = 0
        self.batch_sizes: Counter[int] = Counter()
        self._server: Any = None
        if spec.port:
            from serve.models.fastpath import start_fast_path

            self._server = await start_fast_path(self, spec)
        self._announce("up")

    # --- predictions -------------------------------------------------------------------------------------------

    async def predict_frame(self, frame: Any) -> Any:
        """The model's predictions for a checked DataFrame, batched with concurrent requests."""
        self.requests += 1
        self._inflight += 1
        try:
            if self.spec.max_batch_size > 1 and self._inflight == 1:
                # Let requests that arrived with this one reach this point too before deciding: predicting a
                # lone request at once keeps its latency, but holding the loop would never let a batch form.
                await asyncio.sleep(0)
            if self.spec.max_batch_size <= 1 or self._inflight == 1:
                self.batch_sizes[1] += 1
                return self._predict(frame)
            result = await self._batched(frame)
        finally:
            self._inflight -= 1
        if isinstance(result, _Failed):
            raise result.error
        return result

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_MS / 1000)
    async def _batched(self, frames: list[Any]) -> list[Any]:
        import pandas as pd

        self.batch_sizes[len(frames)] += 1
        if len(frames) == 1:
            return [self._safe_predict(frames[0])]
        try:
            whole = self._predict(pd.concat(frames, ignore_index=True))
        except Exception:  # one bad request must not fail the others: predict each alone
            return [self._safe_predict(frame) for frame in frames]
        return _split(whole, [len(frame) for frame in frames])

    def _safe_predict(self, frame: Any) -> Any:
        try:
            return self._predict(frame)
        except Exception as exc:
            return _Failed(exc)

    async def infer(self, body: bytes, content_type: str) -> tuple[int, str, bytes]:
        """Answer one prediction request body: (HTTP status, content type, response body)."""
        import json

        from serve.models.codec import ARROW_FILE, ARROW_STREAM, InputError, arrow_body, decode, outputs

        try:
            frame = decode(body, content_type, self.columns)
            predictions = await self.predict_frame(frame)
        except InputError as exc:
            return exc.status, "application/problem+json", json.dumps(exc.problem()).encode()
        except Exception as exc:  # the model refused the (schema-conforming) input
            error = InputError(
                f"model {self.spec.name!r} version {self.spec.version} could not predict this input: "
                f"{type(exc).__name__}: {str(exc)[:500]}",
                field="inputs",
            )
            return error.status, "application/problem+json", json.dumps(error.problem()).encode()
        media = content_type.split(";", 1)[0].strip().lower()
        if media in (ARROW_STREAM, ARROW_FILE):
            return 200, ARROW_STREAM, arrow_body(predictions)
        doc = {
            "model_name": self.spec.name,
            "model_version": self.spec.version,
            "outputs": outputs(predictions),
        }
        return 200, "application/json", json.dumps(doc).encode()

    async def predict_table(self, table: Any) -> Any:
        """Predictions for a pyarrow Table of inputs, as a pyarrow Table (`predict` column, or the model's own
        output columns); raises `InputError` naming a bad column."""
        import pyarrow as pa

        from serve.models.codec import conform, predictions_frame

        frame = conform(table.to_pandas(), self.columns)
        predictions = await self.predict_frame(frame)
        return pa.Table.from_pandas(predictions_frame(predictions), preserve_index=False)

    # --- metadata ----------------------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """The OIP model metadata: name, versions, platform, inputs and outputs."""
        from serve.models.codec import columns_of

        outputs = [
            {"name": c.name, "datatype": c.oip_datatype, "shape": [-1]}
            for c in columns_of(self._output_schema)
        ] or [
            {"name": "predict", "datatype": "BYTES" if self._output_schema is None else "FP64", "shape": [-1]}
        ]
        return {
            "name": self.spec.name,
            "versions": [self.spec.version],
            "platform": "mlflow_pyfunc",
            "inputs": [{"name": c.name, "datatype": c.oip_datatype, "shape": [-1]} for c in self.columns],
            "outputs": outputs,
        }

    def info(self) -> dict[str, Any]:
        """The deployment's spec (without the OIDC configuration) and this replica's request and batch counts."""
        spec = asdict(self.spec)
        spec.pop("oidc", None)
        return {"spec": spec, "stats": self.stats()}

    def stats(self) -> dict[str, Any]:
        """Requests answered by this replica and how many model calls each batch size took."""
        return {
            "replica": serve.get_replica_context().replica_id.unique_id,
            "requests": self.requests,
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
        }

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Serve's `user_config` hook: the deployment keeps the public part of its spec there as its record
        (`serve.models.manager.public_spec`); the replica works from the spec it was started with."""

    async def check_health(self) -> None:
        """Serve's health check: the fast path's server must still be serving."""
        if self._server is not None and self._server.should_exit:
            raise RuntimeError(f"the fast path of model {self.spec.name!r} stopped")

    def _announce(self, change: str) -> Any:
        """Publish `model.scaled` (a replica of this model came up or goes) on the installation's broker; the
        bus of the process, which is returned (None without a broker: nobody outside would hear it)."""
        if not self.spec.event_bus:
            return None
        from engine.bus import model_notice, model_topic, shared_bus

        try:
            replica = serve.get_replica_context().replica_id.unique_id
            bus = shared_bus(self.spec.event_bus)
            notice = model_notice(self.spec.name, "model.scaled", replica=replica, change=change)
            bus.publish(model_topic(self.spec.name), notice)
        except Exception:  # never fails a replica: subscribers read Serve's record anyway
            log.exception("model %s: could not announce that a replica is %s", self.spec.name, change)
            return None
        return bus

    async def __del__(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._announce("down") is not None:
            from engine.bus import close_shared

            await asyncio.to_thread(
                close_shared, self.spec.event_bus
            )  # sends the notice before the replica ends


def _split(predictions: Any, lengths: list[int]) -> list[Any]:
    import pandas as pd

    parts, start = [], 0
    for n in lengths:
        if isinstance(predictions, pd.DataFrame | pd.Series):
            parts.append(predictions.iloc[start : start + n].reset_index(drop=True))
        else:
            parts.append(predictions[start : start + n])
        start += n
    return parts
