"""Request and response bodies of model predictions: Open Inference Protocol (KServe v2) JSON, JSON records and
Arrow IPC in; OIP JSON (or Arrow IPC for an Arrow request) out.

Inputs are checked against the model's signature before the model sees them: a missing, unexpected or
mistyped column is an `InputError` naming the field and what to send instead (the HTTP layers answer it as a
422 problem). pandas, numpy and pyarrow are imported inside the functions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ARROW_STREAM = "application/vnd.apache.arrow.stream"
ARROW_FILE = "application/vnd.apache.arrow.file"
JSON = "application/json"

#: MLflow signature types -> (numpy dtype, OIP datatype).
_KINDS: dict[str, tuple[str, str]] = {
    "boolean": ("bool", "BOOL"),
    "integer": ("int32", "INT32"),
    "long": ("int64", "INT64"),
    "float": ("float32", "FP32"),
    "double": ("float64", "FP64"),
    "string": ("object", "BYTES"),
    "binary": ("object", "BYTES"),
    "datetime": ("datetime64[ns]", "BYTES"),
}

#: OIP datatypes a client may send, and the MLflow types each may fill without loss of meaning.
_OIP_TYPES = {
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
}


class InputError(ValueError):
    """A prediction request the model cannot take; `field` names the input (or body part) at fault."""

    def __init__(self, detail: str, *, field: str = "", status: int = 422) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.status = status

    def problem(self) -> dict[str, Any]:
        """The problem+json body of this error."""
        from serve.problems import problem_body

        slug = "unsupported-media-type" if self.status == 415 else "invalid-model-input"
        title = "Unsupported media type" if self.status == 415 else "Invalid model input"
        body = problem_body(self.status, self.detail, slug=slug, title=title)
        if self.field:
            body["field"] = self.field
        return body


@dataclass(frozen=True)
class Column:
    """One input column of a model's signature: its name, MLflow type and whether it must be sent."""

    name: str
    kind: str
    required: bool = True

    @property
    def oip_datatype(self) -> str:
        """The OIP datatype of this column (BYTES for strings)."""
        return _KINDS.get(self.kind, ("object", "BYTES"))[1]


def columns_of(schema: Any) -> list[Column]:
    """The columns of an MLflow input schema (`ModelSignature.inputs`); empty when the model has none or its
    inputs are tensors rather than named columns."""
    if schema is None or not getattr(schema, "has_input_names", lambda: False)():
        return []
    columns = []
    for spec in schema.inputs:
        kind = getattr(getattr(spec, "type", None), "name", None)
        if kind is None:
            return []
        columns.append(Column(spec.name, str(kind), bool(getattr(spec, "required", True))))
    return columns


def decode(body: bytes, content_type: str, columns: Sequence[Column]) -> Any:
    """The pandas DataFrame of a request body, checked against `columns` (when the model declares them)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in (ARROW_STREAM, ARROW_FILE):
        frame = _arrow_frame(body, media)
    elif media in ("", JSON) or media.endswith("+json"):
        frame = _json_frame(body, columns)
    else:
        raise InputError(
            f"content type {content_type!r} is not accepted; send {JSON} (Open Inference Protocol or a list of "
            f"records) or {ARROW_STREAM}",
            field="content-type",
            status=415,
        )
    return conform(frame, columns)


def _arrow_frame(body: bytes, media: str) -> Any:
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(body) if media == ARROW_STREAM else pa.ipc.open_file(body)
        table = reader.read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            f"the body is not an Arrow IPC {'stream' if media == ARROW_STREAM else 'file'}: {exc}",
            field="body",
        ) from None
    return table.to_pandas()


def _json_frame(body: bytes, columns: Sequence[Column]) -> Any:
    import pandas as pd

    try:
        doc = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"the body is not valid JSON: {exc}", field="body") from None
    if isinstance(doc, dict) and "inputs" in doc:
        return _oip_frame(doc["inputs"], columns)
    records = doc.get("dataframe_records") if isinstance(doc, dict) else doc
    if isinstance(records, list) and all(isinstance(r, dict) for r in records) and records:
        return pd.DataFrame.from_records(records)
    raise InputError(
        'send an Open Inference Protocol request ({"inputs": [{"name", "shape", "datatype", "data"}, ...]}), '
        'a JSON list of records ([{"column": value, ...}]) or {"dataframe_records": [...]}',
        field="body",
    )


def _oip_frame(inputs: Any, columns: Sequence[Column]) -> Any:
    import numpy as np
    import pandas as pd

    if not isinstance(inputs, list) or not inputs:
        raise InputError("`inputs` must be a non-empty list of tensors", field="inputs")
    kinds = {c.name: c for c in columns}
    data: dict[str, Any] = {}
    for i, tensor in enumerate(inputs):
        name, shape = _tensor_head(tensor, i)
        values = tensor.get("data")
        flat = values if _is_flat(values) else _flatten(values)
        if int(np.prod(shape)) != len(flat):
            raise InputError(
                f"input {name!r}: shape {shape} holds {int(np.prod(shape))} values but data has {len(flat)}",
                field=name,
            )
        if len(inputs) == 1 and len(shape) == 2 and name not in kinds and columns:
            # One 2-D tensor [rows, columns]: its columns in the signature's order.
            if shape[1] != len(columns):
                raise InputError(
                    f"input {name!r} has {shape[1]} columns; the model expects {len(columns)}: "
                    f"{[c.name for c in columns]}",
                    field=name,
                )
            matrix = np.asarray(flat, dtype=object).reshape(shape)
            return pd.DataFrame({c.name: matrix[:, j] for j, c in enumerate(columns)})
        if len(shape) != 1:
            raise InputError(
                f"input {name!r}: send one 1-D tensor per column (shape [rows]), got shape {shape}",
                field=name,
            )
        column = kinds.get(name)
        data[name] = _typed(flat, column) if column is not None else np.asarray(flat, dtype=object)
    lengths = {len(v) for v in data.values()}
    if len(lengths) > 1:
        raise InputError(f"the inputs have different lengths {sorted(lengths)}; send one value per row each")
    return pd.DataFrame(data)


def _tensor_head(tensor: Any, i: int) -> tuple[str, list[int]]:
    where = f"inputs[{i}]"
    if not isinstance(tensor, dict):
        raise InputError(f"{where} must be an object with name, shape, datatype and data", field=where)
    name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
    if not isinstance(name, str) or not name:
        raise InputError(f"{where}.name must be a non-empty string", field=f"{where}.name")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InputError(f"input {name!r}: shape must be a list of sizes, e.g. [2]", field=name)
    if datatype not in _OIP_TYPES:
        raise InputError(
            f"input {name!r}: datatype {datatype!r} is not an OIP datatype; use one of {sorted(_OIP_TYPES)}",
            field=name,
        )
    return name, shape


def _is_flat(values: Any) -> bool:
    return isinstance(values, list) and not any(isinstance(v, list) for v in values)


def _typed(values: list[Any], column: Column) -> Any:
    """`values` as the column's numpy type when they are plainly of it (numbers for a number column), else
    as objects for `conform` to check and explain."""
    import numpy as np

    dtype = _KINDS.get(column.kind, ("object", "BYTES"))[0]
    if dtype in ("float64", "float32") and all(type(v) is float or type(v) is int for v in values):
        return np.asarray(values, dtype=dtype)
    return np.asarray(values, dtype=object)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            out.extend(_flatten(item) if isinstance(item, list) else [item])
        return out
    if value is None:
        return []
    return [value]


def conform(frame: Any, columns: Sequence[Column]) -> Any:
    """`frame` with exactly the model's columns in its order, each cast to its declared type; an `InputError`
    names the first missing, unexpected or mistyped column."""
    if not columns:
        return frame
    expected = [c.name for c in columns]
    sent = [str(c) for c in frame.columns]
    missing = [c.name for c in columns if c.required and c.name not in sent]
    if missing:
        raise InputError(
            f"input {missing[0]!r} is missing; the model expects the columns {expected}", field=missing[0]
        )
    unexpected = [name for name in sent if name not in expected]
    if unexpected:
        raise InputError(
            f"input {unexpected[0]!r} is not a column of this model; it expects {expected}",
            field=unexpected[0],
        )
    if sent == expected and all(
        str(frame.dtypes.iloc[j]) == _KINDS.get(c.kind, ("object",))[0] != "object"
        for j, c in enumerate(columns)
    ):
        return frame  # already exactly the model's columns and types
    out = frame[[c.name for c in columns if c.name in sent]].copy()
    for column in columns:
        if column.name in sent:
            out[column.name] = _cast(out[column.name], column)
    return out


def _cast(series: Any, column: Column) -> Any:
    import numpy as np

    dtype = _KINDS.get(column.kind, ("object", "BYTES"))[0]
    if dtype == "object":
        bad = [v for v in series if not isinstance(v, str | bytes)]
        if bad:
            raise InputError(
                f"input {column.name!r} must hold strings ({column.kind}); got {bad[0]!r}", field=column.name
            )
        return series
    values = series.to_numpy()
    numeric = np.issubdtype(np.dtype(dtype), np.number)
    if numeric and any(isinstance(v, str | bytes | bool | np.bool_) for v in values):
        wrong = next(v for v in values if isinstance(v, str | bytes | bool | np.bool_))
        raise InputError(
            f"input {column.name!r} must hold numbers ({column.kind}); got {wrong!r}", field=column.name
        )
    try:
        cast = values.astype(dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(f"input {column.name!r} must be {column.kind}: {exc}", field=column.name) from None
    if (
        numeric
        and np.issubdtype(np.dtype(dtype), np.integer)
        and not np.array_equal(cast, values.astype(float))
    ):
        raise InputError(f"input {column.name!r} must hold whole numbers ({column.kind})", field=column.name)
    return cast


def _oip_datatype(array: Any) -> str:
    import numpy as np

    kind = np.asarray(array).dtype
    if kind == np.bool_:
        return "BOOL"
    if np.issubdtype(kind, np.integer):
        return f"{'UINT' if np.issubdtype(kind, np.unsignedinteger) else 'INT'}{kind.itemsize * 8}"
    if np.issubdtype(kind, np.floating):
        return f"FP{kind.itemsize * 8}"
    return "BYTES"


def outputs(predictions: Any) -> list[dict[str, Any]]:
    """The OIP output tensors of a model's predictions (a DataFrame gives one tensor per column)."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        named = [(str(name), predictions[name].to_numpy()) for name in predictions.columns]
    elif isinstance(predictions, pd.Series):
        named = [(str(predictions.name or "predict"), predictions.to_numpy())]
    else:
        named = [("predict", np.asarray(predictions))]
    tensors = []
    for name, array in named:
        datatype = _oip_datatype(array)
        values = array.astype(str) if datatype == "BYTES" else array
        tensors.append(
            {"name": name, "shape": list(array.shape), "datatype": datatype, "data": values.ravel().tolist()}
        )
    return tensors


def predictions_frame(predictions: Any) -> Any:
    """The predictions as a pandas DataFrame (one `predict` column for an array or series)."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        return predictions
    array = np.asarray(predictions)
    if array.ndim == 2:
        return pd.DataFrame({f"predict_{j}": array[:, j] for j in range(array.shape[1])})
    return pd.DataFrame({"predict": array.ravel()})


def arrow_body(predictions: Any) -> bytes:
    """The predictions as an Arrow IPC stream (one record batch)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(predictions_frame(predictions), preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())
