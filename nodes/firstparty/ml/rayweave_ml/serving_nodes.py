"""Calling served models from a workflow: `ml/predict_served@1` through a Ray Serve handle (inside the cluster,
no HTTP) and `ml/predict_oip@1` against any Open Inference Protocol (KServe v2) server by URL.

Both take a pyarrow Table and return it with the model's prediction column(s) appended. A model deployed by
`rayweave models deploy` (or `POST /v1/models`) is the Serve application `rayweave-model-NAME` with one
deployment `model` (the convention of `serve.models.manager`, which this plugin does not import: plugins sit
below the server).
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

import pyarrow as pa

from nodes import context, node
from nodes.builtin.netguard import guarded_transport
from rayweave_ml.errors import ColumnError, MLNodeError, ParamError

#: Serve application and deployment names of a model deployed by rayweave (serve.models.manager).
APP_PREFIX = "rayweave-model-"
DEPLOYMENT = "model"
#: Arrow types -> Open Inference Protocol datatypes.
_OIP_TYPES = (
    (pa.types.is_boolean, "BOOL"),
    (pa.types.is_int8, "INT8"),
    (pa.types.is_int16, "INT16"),
    (pa.types.is_int32, "INT32"),
    (pa.types.is_int64, "INT64"),
    (pa.types.is_uint8, "UINT8"),
    (pa.types.is_uint16, "UINT16"),
    (pa.types.is_uint32, "UINT32"),
    (pa.types.is_uint64, "UINT64"),
    (pa.types.is_float16, "FP16"),
    (pa.types.is_float32, "FP32"),
    (pa.types.is_float64, "FP64"),
)


class ServingError(MLNodeError, RuntimeError):  # type: ignore[misc]  # (mypy sees the plugin package as Any)
    """The served model is not there, refused the input or did not answer."""


class PredictionsOut(TypedDict):
    """The input table with the prediction column(s) appended."""

    table: pa.Table


def _where(type_id: str) -> str:
    ctx = context.current()
    return f"{type_id} (node {ctx.node_id!r})" if ctx.node_id else type_id


def _append(table: pa.Table, predictions: pa.Table, prefix: str, where: str) -> pa.Table:
    for name, column in zip(predictions.column_names, predictions.columns, strict=True):
        out = f"{prefix}{name}"
        if out in table.column_names:
            raise ColumnError(
                f"{where}: the prediction column {out!r} is already a column of input port 'table'; set param "
                "'prefix' (e.g. 'pred_') so the predictions get other names"
            )
        table = table.append_column(out, column)
    return table


@node(
    plugin="ml",
    version="1.0.0",
    category="ml",
    tags=("serving", "model"),
    deterministic=False,  # the model behind a name can be redeployed
    cache=False,
    io_bound=True,
)
def predict_served(
    table: pa.Table, *, model: str, prefix: str = "", timeout_s: float = 60.0
) -> PredictionsOut:
    """Predict with a model served on this cluster's Ray Serve, through a deployment handle (no HTTP).

    The request joins the model's dynamic batches like any other; the replicas check the table's columns
    against the model's signature.

    Args:
        model: the served model's name (as in `rayweave models list`).
        prefix: put before the prediction columns' names (default empty: `predict`, or the model's own
            output names).
        timeout_s: seconds to wait for the answer (default 60.0); must be > 0.

    Returns:
        table: the input table with the prediction column(s) appended.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "score",
          "nodes": {"data": {"type": "ml/load_dataset@1", "params": {"name": "iris"}},
                    "scored": {"type": "ml/predict_served@1", "in": {"table": "data.table"},
                               "params": {"model": "iris", "prefix": "pred_"}}},
          "outputs": {"table": "scored.table"}
        }
        ```
    """
    where = _where("ml/predict_served@1")
    if timeout_s <= 0:
        raise ParamError(f"{where}: param 'timeout_s' is {timeout_s}; use a number > 0")
    from ray import serve

    app = APP_PREFIX + model
    if app not in serve.status().applications:
        raise ServingError(
            f"{where}: param 'model': no model {model!r} is served on this cluster; deploy it with "
            f"`rayweave models deploy models:/{model}/VERSION` (or POST /v1/models)"
        )
    handle = serve.get_deployment_handle(DEPLOYMENT, app)
    try:
        predictions = handle.predict_table.remote(_plain(table)).result(timeout_s=timeout_s)
    except Exception as exc:
        cause = getattr(exc, "cause", None) or exc
        raise ServingError(f"{where}: model {model!r} refused the table: {_reason(cause)}") from None
    return {"table": _append(table, predictions, prefix, where)}


def _plain(table: pa.Table) -> pa.Table:
    """The table without its schema metadata (the replica conforms the columns itself)."""
    return table.replace_schema_metadata(None)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


@node(
    plugin="ml",
    version="1.0.0",
    category="ml",
    tags=("serving", "model", "external", "network"),
    deterministic=False,
    cache=False,
    io_bound=True,
)
def predict_oip(
    table: pa.Table,
    *,
    url: str,
    model: str,
    api_key: str = "",
    prefix: str = "",
    timeout_s: float = 60.0,
) -> PredictionsOut:
    """Predict with any Open Inference Protocol (KServe v2) server: `POST {url}/v2/models/{model}/infer`.

    Each column of the table is sent as one tensor (its name, `[rows]` shape and OIP datatype); each output
    tensor comes back as a column. Works with rayweave's own endpoints, KServe, Triton, Seldon MLServer. The
    call goes through the run's access policy like `builtin/http_request@1`: a server on an internal address
    (loopback, private networks) needs the installation's allowlist (`RAYWEAVE_HTTP_ALLOW`).

    Args:
        url: the server's base URL, e.g. ``http://models.internal:8080`` (without ``/v2``).
        model: the model's name on that server.
        api_key: sent as ``Authorization: Bearer ...`` when not empty; give it as a secret reference
            (``{"secret": "NAME"}``) so it is stored nowhere in the workflow.
        prefix: put before the output columns' names (default empty).
        timeout_s: seconds to wait for connecting and for the answer (default 60.0); must be > 0.

    Returns:
        table: the input table with one column per output tensor appended.

    Example:
        ```json
        {
          "format": "rayweave.workflow/1", "name": "score-remote",
          "nodes": {"data": {"type": "ml/load_dataset@1", "params": {"name": "iris"}},
                    "scored": {"type": "ml/predict_oip@1", "in": {"table": "data.table"},
                               "params": {"url": "http://models.internal:8080", "model": "iris",
                                          "api_key": {"secret": "models-key"}, "prefix": "pred_"}}},
          "outputs": {"table": "scored.table"}
        }
        ```
    """
    import httpx

    where = _where("ml/predict_oip@1")
    if timeout_s <= 0:
        raise ParamError(f"{where}: param 'timeout_s' is {timeout_s}; use a number > 0")
    if not url.startswith(("http://", "https://")):
        raise ParamError(f"{where}: param 'url' is {url!r}; give the server's http(s) base URL")
    endpoint = f"{url.rstrip('/')}/v2/models/{model}/infer"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    transport = guarded_transport(context.current().policy, f"{where}: param 'url'")
    with httpx.Client(transport=transport, timeout=timeout_s, headers=headers) as client:
        try:
            response = client.post(
                endpoint,
                content=json.dumps(oip_request(table, where)).encode(),
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise ServingError(f"{where}: cannot reach {endpoint}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        raise ServingError(f"{where}: {endpoint} answered HTTP {response.status_code}: {_detail(response)}")
    try:
        predictions = oip_outputs(response.json())
    except (ValueError, KeyError, TypeError) as exc:
        raise ServingError(
            f"{where}: {endpoint} did not answer in the Open Inference Protocol: {exc}"
        ) from None
    if predictions.num_rows != table.num_rows:
        raise ServingError(
            f"{where}: {endpoint} answered {predictions.num_rows} rows for {table.num_rows}; is it the right model?"
        )
    return {"table": _append(table, predictions, prefix, where)}


def _detail(response: Any) -> str:
    try:
        doc = response.json()
    except ValueError:
        return str(response.text)[:500]
    if isinstance(doc, dict):
        return str(doc.get("detail") or doc.get("error") or doc)[:500]
    return str(doc)[:500]


def oip_request(table: pa.Table, where: str) -> dict[str, Any]:
    """The OIP request of a table: one 1-D tensor per column."""
    inputs = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        datatype = next((oip for test, oip in _OIP_TYPES if test(column.type)), None)
        if datatype is None:
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                raise ColumnError(
                    f"{where}: column {name!r} of input port 'table' is {column.type}, which the Open Inference "
                    "Protocol cannot carry; cast it to a number, boolean or string column first"
                )
            datatype = "BYTES"
        inputs.append(
            {"name": name, "shape": [table.num_rows], "datatype": datatype, "data": column.to_pylist()}
        )
    return {"inputs": inputs}


def oip_outputs(doc: dict[str, Any]) -> pa.Table:
    """A table of an OIP response's output tensors (a 2-D tensor becomes one column per position)."""
    columns: dict[str, Any] = {}
    for tensor in doc["outputs"]:
        name, shape, data = str(tensor["name"]), list(tensor["shape"]), list(tensor["data"])
        if len(shape) == 2:
            rows, width = shape
            for j in range(width):
                columns[f"{name}_{j}"] = data[j::width][:rows]
        else:
            columns[name] = data
    return pa.table(columns)
