"""The ML plugin's nodes: datasets, split, train, evaluate, predict, register and select_best on Arrow tables.

Tables travel as `pyarrow.Table`; models as references to models logged in MLflow (`rayweave_ml.models`),
never as pickled estimators. Training, evaluation and registration track to the MLflow of the run's settings
(`rayweave_ml.tracking`): each training is an MLflow run nested under one parent per rayweave run.

A hyperparameter grid is a workflow: `builtin/map@1` over a list of param dicts runs `train` (and `evaluate`)
once per dict, in parallel; `select_best` picks the best model by a metric; `register` registers it.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Annotated, Any, TypedDict

import pyarrow as pa

from nodes import context, node
from rayweave_ml.errors import ColumnError, EstimatorError, ParamError, TrackingError
from rayweave_ml.estimators import (
    ALLOWED_PREFIXES,
    make_estimator,
    metrics_for,
    resolve_estimator,
    task_of,
)
from rayweave_ml.models import ANY_MODEL, MODEL, check_ref, load_model, predictions
from rayweave_ml.tracking import TAG_NODE_ID, TAG_RUN_ID, TAG_WORKFLOW, TAG_WORKFLOW_VERSION, Tracking

ModelRef = Annotated[dict[str, Any], MODEL]
#: A model of either trainer (`Model[sklearn] | Model[pytorch]`): what predict, evaluate and register take.
AnyModelRef = Annotated[dict[str, Any], ANY_MODEL]
#: The datasets bundled with scikit-learn that `load_dataset` offers (nothing is downloaded).
DATASETS = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
    "digits": "load_digits",
}
#: The config key adding estimator module prefixes (comma-separated) to `sklearn.`.
ESTIMATOR_PREFIXES_KEY = "ml.estimator_prefixes"


class TableOut(TypedDict):
    """A single output port `table`."""

    table: pa.Table


class SplitOut(TypedDict):
    """The two parts of a split."""

    train: pa.Table
    test: pa.Table


class TrainOut(TypedDict):
    """A trained model's reference and its MLflow run."""

    model: ModelRef
    mlflow_run_id: str


class EvalOut(TypedDict):
    """Metrics on a table, and the model's reference with them added."""

    metrics: dict[str, float]
    model: AnyModelRef


class BestOut(TypedDict):
    """The best model of a list, its metric value and its position in the list."""

    model: AnyModelRef
    value: float
    index: int


class RegisteredOut(TypedDict):
    """A registered model version."""

    name: str
    version: int
    uri: str


def _where(type_id: str) -> str:
    ctx = context.current()
    return f"{type_id} (node {ctx.node_id!r})" if ctx.node_id else type_id


def _frame(table: pa.Table) -> Any:
    return table.to_pandas()


def _features(table: pa.Table, label: str, where: str) -> tuple[Any, Any]:
    if label not in table.column_names:
        raise ColumnError(
            f"{where}: param 'label' names column {label!r}, which input port 'table' does not have "
            f"(columns: {table.column_names}); set label to the column holding the target"
        )
    frame = _frame(table)
    return frame.drop(columns=[label]), frame[label]


def _require_features(ref: Any, table: pa.Table, where: str) -> list[str]:
    features = list(ref["features"])
    missing = [c for c in features if c not in table.column_names]
    if missing:
        raise ColumnError(
            f"{where}: input port 'table' lacks the model's feature column(s) {missing} (columns: "
            f"{table.column_names}); give a table with the columns the model was trained on: {features}"
        )
    return features


# Cheap (like split): the engine may fuse the two into one task, e.g. per element of a grid's map.
@node(plugin="ml", version="1.0.0", category="ml", tags=("table", "dataset"), cheap=True)
def load_dataset(*, name: str = "iris") -> TableOut:
    """A dataset bundled with scikit-learn, as a table: the feature columns and the label column `target`.

    Args:
        name: one of iris, wine, breast_cancer (classification), diabetes (regression), digits
            (classification, 8x8 images as 64 columns). Nothing is downloaded.

    Returns:
        table: one row per sample; the features as float columns, `target` last.
    """
    if name not in DATASETS:
        raise ParamError(
            f"{_where('ml/load_dataset@1')}: param 'name': unknown dataset {name!r}; use one of {sorted(DATASETS)}"
        )
    return {"table": _bundled_dataset(name)}


@functools.cache
def _bundled_dataset(name: str) -> pa.Table:
    """A bundled dataset as a table, read once per process: the files never change and an Arrow table is
    immutable, so every call may share it. A grid's map loads the dataset once per element (a sub-workflow
    sees only its element): on digits that was 16 reads of 50-100 ms where one process reads it once."""
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, DATASETS[name])(as_frame=True)
    return pa.Table.from_pandas(bunch.frame, preserve_index=False)


@node(plugin="ml", version="1.0.0", category="ml", tags=("table",), cheap=True)
def split(
    table: pa.Table, *, test_size: float = 0.25, seed: int = 0, stratify: str | None = None
) -> SplitOut:
    """Split the rows into a train and a test table, at random (seeded), optionally stratified by a column.

    Args:
        table: the rows to split.
        test_size: the share of rows in `test`, between 0 and 1 (exclusive).
        seed: the seed of the shuffle: the same seed gives the same split.
        stratify: a column whose class proportions both parts keep (e.g. the label); null: none.

    Returns:
        train: the training rows.
        test: the test rows.
    """
    where = _where("ml/split@1")
    if not 0.0 < test_size < 1.0:
        raise ParamError(f"{where}: param 'test_size' must lie between 0 and 1 (exclusive), got {test_size}")
    if stratify is not None and stratify not in table.column_names:
        raise ColumnError(
            f"{where}: param 'stratify' names column {stratify!r}, which input port 'table' does not have "
            f"(columns: {table.column_names})"
        )
    from sklearn.model_selection import train_test_split

    rows = list(range(table.num_rows))
    labels = table.column(stratify).to_pylist() if stratify is not None else None
    try:
        train_rows, test_rows = train_test_split(
            rows, test_size=test_size, random_state=seed, stratify=labels
        )
    except ValueError as exc:
        raise ParamError(f"{where}: the table cannot be split so: {exc}") from exc
    return {"train": table.take(sorted(train_rows)), "test": table.take(sorted(test_rows))}


def fit_estimator(
    table: pa.Table, estimator: str, params: dict[str, Any], label: str, task: str, where: str
) -> tuple[Any, Any, str, dict[str, float]]:
    """Fit `estimator` with `params` on `table`: (fitted estimator, feature frame, task type, train metrics).

    No tracking; `train` logs what this returns. Raises `EstimatorError` / `ColumnError` naming `where`.
    """
    prefixes = [*ALLOWED_PREFIXES]
    extra = context.current().config.get(ESTIMATOR_PREFIXES_KEY, "")
    prefixes += [p.strip() for p in extra.split(",") if p.strip()]
    cls = resolve_estimator(estimator, f"{where}: param 'estimator'", prefixes)
    model = make_estimator(cls, params, f"{where}: input 'params'")
    features, target = _features(table, label, where)
    kind = task_of(model, task, where)
    try:
        model.fit(features, target)
    except (TypeError, ValueError) as exc:
        raise EstimatorError(
            f"{where}: {cls.__name__} could not be fitted with params {params} on input 'table' (label "
            f"{label!r}): {exc}; fix the params or the table"
        ) from exc
    metrics = {f"train_{k}": v for k, v in metrics_for(kind, target, model.predict(features)).items()}
    return model, features, kind, metrics


#: The start of the warning MLflow logs on every model saved with cloudpickle (see `train`).
_PICKLE_WARNING = "Saving scikit-learn models in the pickle or cloudpickle format"


class _DropPickleWarning(logging.Filter):
    """Drops MLflow's per-model cloudpickle warning: the choice is made once, here, and documented."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_PICKLE_WARNING)


@functools.cache
def _quiet_pickle_warning() -> None:
    logging.getLogger("mlflow.sklearn").addFilter(_DropPickleWarning())


def _signature_summary(signature: Any) -> dict[str, Any]:
    if signature is None:
        return {}
    data = signature.to_dict()
    return {part: json.loads(data[part]) if data.get(part) else [] for part in ("inputs", "outputs")}


@node(plugin="ml", version="1.0.0", category="ml", tags=("table", "mlflow"), cache=False, deterministic=False)
def train(
    table: pa.Table,
    params: dict[str, Any] | None = None,
    *,
    estimator: str = "sklearn.linear_model.LogisticRegression",
    label: str = "target",
    task: str = "auto",
) -> TrainOut:
    """Train a scikit-learn estimator on a table and log it to MLflow, in a run nested under the workflow run's.

    The MLflow run gets the params, the training metrics (`train_<metric>`), the model with its signature and
    an input example, and the lineage tags `rayweave.run_id`, `rayweave.node_id`, `rayweave.workflow`,
    `rayweave.workflow_version`. Its id is logged as a `node.log` event and returned.

    Args:
        table: the training rows: the label column and the feature columns (every other column).
        params: the estimator's params (e.g. `{"C": 0.5}`); an input, so that a map can feed a grid.
        estimator: the dotted name of a scikit-learn estimator class, e.g.
            `sklearn.ensemble.RandomForestClassifier`.
        label: the column to predict.
        task: `classification`, `regression`, or `auto` (from the estimator).

    Returns:
        model: the reference of the logged model (`Model[sklearn]`).
        mlflow_run_id: the MLflow run of this training.
    """
    import cloudpickle
    import mlflow
    import mlflow.sklearn
    import sklearn
    from mlflow.models import infer_signature

    where = _where("ml/train@1")
    ctx = context.current()
    hyper = dict(params or {})
    model, features, kind, metrics = fit_estimator(table, estimator, hyper, label, task, where)
    example = features.head(5)
    signature = infer_signature(example, model.predict(example))
    from rayweave_ml.tracking import node_run

    _quiet_pickle_warning()
    with node_run(ctx, "ml/train@1", params={"estimator": estimator, "label": label, **hyper}) as run:
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=features.head(3),
            pip_requirements=[
                f"scikit-learn=={sklearn.__version__}",
                f"mlflow=={mlflow.__version__}",
                f"cloudpickle=={cloudpickle.__version__}",
            ],
            # cloudpickle, not skops: skops took 1.7 s to list a forest's untrusted types and 1.9 s to
            # save it, and MLflow loads it back (0.8 s) to check the input example; cloudpickle does all
            # three in 0.3 s. skops bought no safety here: MLflow reads the trusted types from the model's
            # own MLmodel file and gates both formats behind MLFLOW_ALLOW_PICKLE_DESERIALIZATION.
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
        )
    ref = {
        "uri": info.model_uri,
        "model_id": getattr(info, "model_id", None) or "",
        "run_id": run.run_id,
        "parent_run_id": run.parent_run_id,
        "experiment_id": run.experiment_id,
        "flavor": "sklearn",
        "estimator": estimator,
        "params": hyper,
        "task": kind,
        "label": label,
        "features": list(features.columns),
        "metrics": metrics,
        "signature": _signature_summary(signature),
    }
    return {"model": ref, "mlflow_run_id": run.run_id}


@node(plugin="ml", version="1.0.0", category="ml", tags=("table", "mlflow"), cache=False, deterministic=False)
def evaluate(model: AnyModelRef, table: pa.Table, *, prefix: str = "test_") -> EvalOut:
    """Score a model on a labelled table; the metrics go to the model's MLflow run and into its reference.

    Classification: accuracy, f1_macro, precision_macro, recall_macro; regression: rmse, mae, r2.

    Args:
        model: a model reference (from train).
        table: rows with the model's feature columns and its label column.
        prefix: put before each metric's name (`test_accuracy`).

    Returns:
        metrics: metric name -> value.
        model: the reference with these metrics added to its `metrics`.
    """
    from mlflow.entities import Metric

    where = _where("ml/evaluate@1")
    ref = check_ref(model, f"{where}: input 'model'")
    features = _require_features(ref, table, where)
    label = str(ref.get("label", "target"))
    if label not in table.column_names:
        raise ColumnError(
            f"{where}: input port 'table' lacks the label column {label!r} the model was trained to predict "
            f"(columns: {table.column_names}); evaluate on labelled rows"
        )
    tracking = Tracking.from_context(context.current(), "ml/evaluate@1")
    estimator = load_model(tracking.tracking_uri, str(ref["uri"]), str(ref["flavor"]))
    frame = _frame(table)
    scores = metrics_for(str(ref["task"]), frame[label], predictions(ref, estimator, frame[features]))
    named = {f"{prefix}{k}": v for k, v in scores.items()}
    import time

    from rayweave_ml.tracking import client_for

    now = int(time.time() * 1000)
    client_for(tracking.tracking_uri).log_batch(
        str(ref["run_id"]), metrics=[Metric(k, v, now, 0) for k, v in named.items()]
    )
    return {"metrics": named, "model": {**ref, "metrics": {**dict(ref.get("metrics") or {}), **named}}}


@node(plugin="ml", version="1.0.0", category="ml", tags=("table",))
def predict(model: AnyModelRef, table: pa.Table, *, column: str = "prediction") -> TableOut:
    """Predict a batch: the input table with a prediction column appended.

    Args:
        model: a model reference (from train, evaluate or select_best).
        table: rows with the model's feature columns (others are kept and ignored).
        column: the name of the new column.

    Returns:
        table: the input rows with `column` appended.
    """
    where = _where("ml/predict@1")
    ref = check_ref(model, f"{where}: input 'model'")
    features = _require_features(ref, table, where)
    if column in table.column_names:
        raise ParamError(
            f"{where}: param 'column': the table already has a column {column!r}; choose another name"
        )
    tracking = Tracking.from_context(context.current(), "ml/predict@1")
    estimator = load_model(tracking.tracking_uri, str(ref["uri"]), str(ref["flavor"]))
    predicted = predictions(ref, estimator, table.select(features).to_pandas())
    return {"table": table.append_column(column, pa.array(predicted))}


@node(plugin="ml", version="1.0.0", category="ml")
def select_best(models: list[AnyModelRef], *, metric: str, mode: str = "max") -> BestOut:
    """The best of a list of models by one of their metrics (the reducer of a hyperparameter grid).

    Args:
        models: model references carrying `metric` in their `metrics` (e.g. a map of train + evaluate).
        metric: the metric to compare, e.g. `test_f1_macro` or `test_rmse`.
        mode: `max` (higher is better) or `min`. Ties go to the first in the list.

    Returns:
        model: the best model's reference.
        value: its metric value.
        index: its position in `models`.
    """
    where = _where("ml/select_best@1")
    if mode not in ("max", "min"):
        raise ParamError(f"{where}: param 'mode' must be 'max' or 'min', got {mode!r}")
    if not models:
        raise ParamError(f"{where}: input 'models' is empty; give at least one model")
    values: list[float] = []
    for index, ref in enumerate(models):
        found = dict(check_ref(ref, f"{where}: input 'models'[{index}]").get("metrics") or {})
        if metric not in found:
            raise ParamError(
                f"{where}: param 'metric': model {index} of input 'models' has no metric {metric!r} (it has "
                f"{sorted(found)}); evaluate the models first or name one of those"
            )
        values.append(float(found[metric]))
    best = (max if mode == "max" else min)(range(len(values)), key=lambda i: values[i])
    return {"model": dict(models[best]), "value": values[best], "index": best}


@node(plugin="ml", version="1.0.0", category="ml", tags=("mlflow",), cache=False, deterministic=False)
def register(model: AnyModelRef, *, name: str) -> RegisteredOut:
    """Register a model in the MLflow model registry under `name` (a new version each time).

    The version gets the lineage tags of the MLflow run that trained the model (`rayweave.run_id`,
    `rayweave.node_id`, `rayweave.workflow`, `rayweave.workflow_version`) and `mlflow_run_id`.

    Args:
        model: the model reference to register.
        name: the registered model's name, e.g. `iris-classifier`.

    Returns:
        name: the registered name.
        version: the new version's number.
        uri: `models:/<name>/<version>`.
    """
    import mlflow

    from rayweave_ml.tracking import client_for

    where = _where("ml/register@1")
    ref = check_ref(model, f"{where}: input 'model'")
    if not name.strip():
        raise ParamError(f"{where}: param 'name' is empty; give the registered model's name")
    tracking = Tracking.from_context(context.current(), "ml/register@1")
    client = client_for(tracking.tracking_uri)
    mlflow.set_tracking_uri(tracking.tracking_uri)
    mlflow.set_registry_uri(tracking.tracking_uri)  # process-wide: never another installation's
    try:
        trained = client.get_run(str(ref["run_id"])).data.tags
    except Exception as exc:
        raise TrackingError(
            f"{where}: input 'model': its MLflow run {ref['run_id']!r} is not in the tracking store at "
            f"{tracking.tracking_uri!r}; register models of this installation's runs"
        ) from exc
    lineage = (TAG_RUN_ID, TAG_NODE_ID, TAG_WORKFLOW, TAG_WORKFLOW_VERSION)
    tags = {key: trained[key] for key in lineage if key in trained}
    tags["mlflow_run_id"] = str(ref["run_id"])
    version = mlflow.register_model(str(ref["uri"]), name, tags=tags)
    context.current().logger.info(
        "registered %s version %s (MLflow run %s)", name, version.version, ref["run_id"]
    )
    return {"name": name, "version": int(version.version), "uri": f"models:/{name}/{version.version}"}
