"""MLflow record of a training run: parameters, walk-forward metrics, plots, and a model whose pyfunc
``predict`` returns H/D/A probabilities.

The tracking URI is always passed in (MLflow 3.17 silently defaults to ./mlflow.db), and the model is saved
with skops, MLflow's safe format, against an explicit allow-list of the types our models are made of.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import threading
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import PurePosixPath

import mlflow
import mlflow.data
import numpy as np
import pandas as pd
import skops.io
from matplotlib.figure import Figure  # the object API: no pyplot state, no GUI backend needed
from mlflow.models import infer_signature

from time2bet.ml.metrics import OUTCOME_NAMES, expected_calibration_error
from time2bet.ml.training import TrainingResult, feature_importance, fit_reference, model_params, reference_parameters
from time2bet.mlflow_store import experiment_id as experiment_id_for
from time2bet.mlflow_store import use_tracking
from time2bet.serving_contract import MODEL_NAME, model_input

# Every type inside a calibrated logistic-regression pipeline or XGBoost model that skops does not trust by
# default; loading fails loudly if a model ever contains anything else.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
]
_REQUIREMENTS = ("scikit-learn", "xgboost", "skops", "numpy", "pandas", "scipy")
# the Elo-only reference fitted on the run's whole training window (training.reference_parameters): live monitoring
# compares the model with it on the matches it predicted (time2bet.monitoring)
REFERENCE_ARTIFACT = "references/elo.json"


@dataclass(frozen=True)
class LoggedRun:
    run_id: str
    model_uri: str  # models:/m-<id>; pass to registry.register_challenger


@contextlib.contextmanager
def _training_run(experiment_id: str, tags: Mapping[str, str], *, in_active_run: bool,
                  parent_run_id: str | None) -> Iterator[mlflow.ActiveRun]:
    """The run a training is logged in: the caller's active run (dagster-mlflow's run of a Dagster run), left open
    for its owner to end; or a new one, nested under the active run or under ``parent_run_id`` (a Hydra sweep's)."""
    if in_active_run:
        run = mlflow.active_run()
        if run is None:
            raise RuntimeError("in_active_run: there is no active MLflow run to log the training in")
        mlflow.set_tags(tags)
        yield run
        return
    with mlflow.start_run(experiment_id=experiment_id, tags=dict(tags), nested=mlflow.active_run() is not None,
                          parent_run_id=parent_run_id) as run:
        yield run


# --- reproducible model bytes --------------------------------------------------------------------------

_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def canonical_skops(raw: bytes) -> bytes:
    """The same skops archive, with the same bytes for the same model on every run.

    skops 0.16 names array files after ``id()`` (memory addresses) and byte blobs (the XGBoost booster) after
    ``uuid4()``, records ``id()`` values as ``__id__`` in schema.json, and stamps each zip entry with the
    current time, so two saves of one model never match. Here every file is named after the SHA-256 of its
    content, ids are renumbered in order of appearance (skops only uses them to restore shared references),
    entries are sorted and carry a fixed time. ``skops.io.load`` reads back the same objects (tested)."""
    with zipfile.ZipFile(io.BytesIO(raw)) as src:
        renamed = {name: hashlib.sha256(src.read(name)).hexdigest() + PurePosixPath(name).suffix
                   for name in src.namelist() if name != "schema.json"}
        ids: dict[int, int] = {}

        def canonical(node):
            if isinstance(node, dict):
                return {key: ids.setdefault(value, len(ids)) if key == "__id__" and isinstance(value, int)
                        else renamed[value] if key == "file" and isinstance(value, str) and value in renamed
                        else canonical(value)
                        for key, value in node.items()}
            if isinstance(node, list):
                return [canonical(value) for value in node]
            return node

        schema = canonical(json.loads(src.read("schema.json")))
        entries = {new: src.read(old) for old, new in renamed.items()}
        compression = src.infolist()[0].compress_type if src.infolist() else zipfile.ZIP_STORED
    entries["schema.json"] = json.dumps(schema, indent=2).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in sorted(entries):
            dst.writestr(zipfile.ZipInfo(name, _FIXED_ZIP_TIME), entries[name], compress_type=compression)
    return out.getvalue()


_DUMP_LOCK = threading.Lock()


@contextlib.contextmanager
def reproducible_skops() -> Iterator[None]:
    """MLflow's sklearn flavour saves with ``skops.io.dump(model, path)``; for the duration, that call writes
    :func:`canonical_skops` bytes. MLflow has no hook for the format's writer, and the alternative, saving
    the model ourselves and logging a directory, would lose ``log_model``'s LoggedModel and signature
    handling. The lock keeps concurrent loggers in one process from seeing each other's swap."""
    original = skops.io.dump

    def dump(obj, file, **kwargs):
        buffer = io.BytesIO()
        original(obj, buffer, **kwargs)
        data = canonical_skops(buffer.getvalue())
        if hasattr(file, "write"):
            file.write(data)
        else:
            with open(file, "wb") as handle:
                handle.write(data)

    with _DUMP_LOCK:
        skops.io.dump = dump
        try:
            yield
        finally:
            skops.io.dump = original


# --- plots ----------------------------------------------------------------------------------------------

def reliability_figure(y: np.ndarray, p: np.ndarray, n_bins: int = 10, title: str = "") -> Figure:
    """Observed frequency against mean forecast per bin, one panel per outcome, with n per bin as bars."""
    calibration = expected_calibration_error(y, p, n_bins)
    centers = (calibration.edges[:-1] + calibration.edges[1:]) / 2
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    for k, (ax, name) in enumerate(zip(axes, OUTCOME_NAMES)):
        counts = ax.twinx()
        counts.bar(centers, calibration.counts[k], width=1 / n_bins, alpha=0.15, color="grey")
        counts.set_ylabel("matches in bin")
        ax.plot([0, 1], [0, 1], ls="--", color="black", lw=0.8)
        ax.plot(calibration.mean_predicted[k], calibration.observed[k], marker="o")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"forecast P({name})", ylabel="observed frequency",
               title=f"{name}: ECE {calibration.per_class[k]:.3f}, n={len(y)}")
        ax.set_zorder(counts.get_zorder() + 1)
        ax.patch.set_visible(False)
    fig.suptitle(title)
    return fig


def importance_figure(importance: pd.Series, top: int = 25) -> Figure:
    """The ``top`` features by importance, largest at the top."""
    shown = importance.head(top)[::-1]
    fig = Figure(figsize=(8, 0.3 * len(shown) + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(shown.index, shown.to_numpy())
    ax.set(xlabel=importance.name, title=f"feature importance ({importance.name})")
    return fig


def fold_metric_figure(folds: pd.DataFrame, metric: str = "log_loss") -> Figure:
    """A metric per validation season for the model and both references (market on matches with odds)."""
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    for source in ("model", "elo", "market"):
        label = "market (matches with odds)" if source == "market" else source
        ax.plot(folds["valid_season"], folds[f"{source}_{metric}"], marker="o", label=label)
    ax.set(xlabel="validation season", ylabel=metric, title=f"walk-forward {metric}")
    ax.legend()
    return fig


# --- the run --------------------------------------------------------------------------------------------

def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    """MLflow metrics without NaN (a fold without odds has no market scores)."""
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


def log_training_run(
    result: TrainingResult,
    frame: pd.DataFrame,
    *,
    tracking_uri: str,
    data_version: str,
    experiment: str = MODEL_NAME,
    artifact_location: str | None = None,
    tags: Mapping[str, str] | None = None,
    in_active_run: bool = False,
    parent_run_id: str | None = None,
) -> LoggedRun:
    """Log one training run: ``frame`` is the training window ``result`` was trained on (for the input
    example), ``data_version`` identifies it (param and tag). Per-fold metrics use step = fold index.
    ``in_active_run``: into the caller's active run instead of a new one (:func:`_training_run`)."""
    use_tracking(tracking_uri)
    experiment_id = experiment_id_for(experiment, artifact_location)
    cv = result.cv
    run_tags = {"data_version": data_version, "family": result.family, **(tags or {})}
    with _training_run(experiment_id, run_tags, in_active_run=in_active_run, parent_run_id=parent_run_id) as run:
        mlflow.log_params({
            "data_version": data_version,
            "family": result.family,
            "model_name": result.model_name,
            "candidates": ",".join(result.candidate_log_loss),
            "n_features": len(result.features),
            "n_folds": len(cv.folds),
            "train_seasons": f"{result.train_seasons[0]}..{result.train_seasons[-1]}",
            "n_train": result.n_train,
            "calibration_season": result.train_seasons[-1],  # also XGBoost's early-stopping slice
            "reference_feature": cv.reference_feature,
            **{f"model.{k}": v for k, v in model_params(result.model, result.model_name).items()},
        })
        for row in cv.folds.to_dict("records"):
            scores = {k: v for k, v in row.items() if k not in ("fold", "valid_season", "train_seasons")}
            mlflow.log_metrics(_finite({f"fold.{k}": v for k, v in scores.items()}), step=int(row["fold"]))
        mlflow.log_metrics(_finite({
            **{f"cv.{k}": v for k, v in cv.summary.items()},
            **{f"candidate.{name}.log_loss": v for name, v in result.candidate_log_loss.items()},
        }))
        # the Datasets column of the MLflow UI: which data version the run trained on, its schema and size
        with warnings.catch_warnings():  # the schema's hint on integer columns is about model inputs, not here
            warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer", UserWarning)
            mlflow.log_input(mlflow.data.from_pandas(frame, targets="result", name="training_window",
                                                     digest=data_version[:36]), context="training")
        mlflow.log_text(json.dumps(list(result.features), indent=1), "features.json")
        mlflow.log_text(cv.folds.to_csv(index=False), "walk_forward/folds.csv")
        reference = fit_reference(frame, cv.reference_feature)
        mlflow.log_dict(reference_parameters(reference, cv.reference_feature), REFERENCE_ARTIFACT)

        oof = cv.predictions
        y, p = oof["y"].to_numpy(), oof[[f"model_p_{n}" for n in OUTCOME_NAMES]].to_numpy()
        title = f"{result.model_name}, walk-forward out-of-fold ({', '.join(cv.folds['valid_season'])})"
        importance = feature_importance(result.model, result.features)
        figures = {
            "plots/reliability.png": reliability_figure(y, p, title=title),
            "plots/feature_importance.png": importance_figure(importance),
            "plots/log_loss_per_fold.png": fold_metric_figure(cv.folds),
        }
        for path, fig in figures.items():
            mlflow.log_figure(fig, path)
        mlflow.log_text(importance.to_csv(), "feature_importance.csv")

        example = model_input(frame, result.features).head(5)
        with reproducible_skops():
            info = mlflow.sklearn.log_model(
                result.model,
                name="model",
                signature=infer_signature(example, result.model.predict_proba(example)),
                input_example=example,
                pyfunc_predict_fn="predict_proba",
                serialization_format="skops",
                skops_trusted_types=SKOPS_TRUSTED_TYPES,
                pip_requirements=[f"{pkg}=={version(pkg)}" for pkg in _REQUIREMENTS],
            )
    return LoggedRun(run_id=run.info.run_id, model_uri=info.model_uri)
