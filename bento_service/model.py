"""The registered models a worker serves: ``champion`` (and ``challenger`` for A/B) from the MLflow registry.

A :class:`ModelWatcher` reads the aliases, loads a version when an alias moves and publishes the result as one
immutable :class:`ModelSet` (a single attribute assignment), so a request that took the set keeps its models
for its whole life while the next request sees the new ones. A failed load keeps the model already served."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from time2bet.serving_contract import (
    CHALLENGER,
    CHAMPION,
    DEFAULT_FAMILY,
    FAMILIES,
    FAMILY_TAG,
    MODEL_FEATURES,
    MODEL_NAME,
    VARIANTS,
    model_input,
)

logger = logging.getLogger("time2bet.serving")


@dataclass
class ServedModel:
    name: str
    alias: str
    version: str
    run_id: str | None
    data_version: str
    metrics: dict[str, float]
    input_features: list[str]
    loaded_at: dt.datetime
    pyfunc: object
    family: str = DEFAULT_FAMILY   # the version's FAMILY_TAG: which inputs it may read (every answer names it)
    _fast: Callable[[np.ndarray], np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)
    # whether the model reads exactly MODEL_FEATURES (Snapshot.feature_matrix's rows, the independent family), or
    # needs rows of its own inputs (Snapshot.model_matrix: a market-aware model); decided once, not per call
    reads_model_features: bool = field(default=True, init=False, repr=False, compare=False)

    def __post_init__(self):
        self._fast = _raw_predict_fn(self.pyfunc)
        self.reads_model_features = tuple(self.input_features) == MODEL_FEATURES

    @classmethod
    def load(cls, tracking_uri: str, name: str = MODEL_NAME, alias: str = CHAMPION,
             version: str | None = None) -> ServedModel:
        """The version ``alias`` points to now, or ``version`` (served under ``alias``) when given."""
        import mlflow

        from time2bet.mlflow_store import registry_client

        client = registry_client(tracking_uri)
        mv = client.get_model_version_by_alias(name, alias) if version is None else \
            client.get_model_version(name, str(version))
        family = mv.tags.get(FAMILY_TAG) or DEFAULT_FAMILY   # versions registered before families: independent
        if family not in FAMILIES:
            raise ValueError(f"{name} v{mv.version} is tagged {FAMILY_TAG}={family!r}; families are {FAMILIES}")
        # the version itself (not the alias) so a promotion during the load cannot mix two versions
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}/{mv.version}")
        metrics: dict[str, float] = {}
        if mv.run_id:
            try:
                metrics = {k: float(v) for k, v in client.get_run(mv.run_id).data.metrics.items()}
            except Exception:  # noqa: BLE001 - a deleted run leaves the model servable
                metrics = {}
        return cls(
            name=name, alias=alias, version=str(mv.version), run_id=mv.run_id,
            data_version=mv.tags.get("data_version", ""), metrics=metrics,
            input_features=list(pyfunc.metadata.get_input_schema().input_names()),
            loaded_at=dt.datetime.now(dt.UTC), pyfunc=pyfunc, family=family,
        )

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """(n, 3) H/D/A probabilities for feature rows (extra columns are ignored)."""
        if len(features) == 0:
            return np.empty((0, 3))
        probs = pd.DataFrame(self.pyfunc.predict(model_input(features, self.input_features))).to_numpy(dtype=float)
        if probs.shape != (len(features), 3):
            raise RuntimeError(f"model returned shape {probs.shape}, expected ({len(features)}, 3)")
        return probs

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """(n, 3) H/D/A probabilities for float64 rows of the model's own inputs, ``input_features`` in order
        (``Snapshot.feature_matrix`` when they are MODEL_FEATURES, else ``Snapshot.model_matrix``): the same
        numbers as :meth:`predict` on the same rows, without a DataFrame and MLflow's schema enforcement (a
        no-op here: the columns are the signature's, in its order, all float64)."""
        if len(x) == 0:
            return np.empty((0, 3))
        if x.shape[1] != len(self.input_features):
            raise ValueError(f"{self.name} v{self.version} reads {len(self.input_features)} columns, got rows of "
                             f"{x.shape[1]}: build them with Snapshot.model_matrix(fixtures, input_features)")
        if self._fast is None:
            return self.predict(pd.DataFrame(x, columns=self.input_features))
        probs = np.asarray(self._fast(x), dtype=float)
        if probs.shape != (len(x), 3):
            raise RuntimeError(f"model returned shape {probs.shape}, expected ({len(x)}, 3)")
        return probs


def _raw_predict_fn(pyfunc) -> Callable[[np.ndarray], np.ndarray] | None:
    """The function ``pyfunc.predict`` ends in, when MLflow says which (an sklearn flavor logged with
    ``pyfunc_predict_fn``, as time2bet.ml.tracking does): ``model.predict_proba`` of the raw model, or the same
    numbers through :func:`_temperature_scaled`; else None."""
    try:
        flavor = pyfunc.metadata.flavors["python_function"]
        if flavor.get("loader_module") != "mlflow.sklearn":
            return None
        raw = pyfunc.get_raw_model()
        predict = getattr(raw, flavor.get("predict_fn") or "predict")
    except Exception:  # noqa: BLE001 - anything unexpected (a test double, another flavor): the pyfunc path
        return None
    return (_temperature_scaled(raw) or predict) if flavor.get("predict_fn") == "predict_proba" else predict


PARALLEL_ROWS = 2048   # calls with at least this many rows are split across the cores (see _Chunked)
DISTINCT_ROWS = 1024   # calls with at least this many rows score each distinct row once (see _distinct_rows)


def _temperature_scaled(model) -> Callable[[np.ndarray], np.ndarray] | None:
    """``predict_proba`` of a temperature-scaled ``CalibratedClassifierCV(FrozenEstimator(est))`` (what
    time2bet.ml.training fits) as ``est``'s own response followed by sklearn's temperature map, skipping the
    per-call input validation, tag lookups (deep copies) and target-type checks of the wrapper: ~1.1 ms of a
    ~1.3 ms one-row call, and so most of the cost of a lone /predict. The same steps with the same numpy
    operations in the same order as sklearn 1.9's ``_CalibratedClassifier.predict_proba`` (``decision_function``
    when the estimator has one, else ``predict_proba``; log-probabilities only for probability-like rows);
    whether the result equals the model's own ``predict_proba`` bit for bit is checked on probe rows here, and
    any other model (or any difference) keeps the library's path."""
    try:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.externals import array_api_extra as xpx
        from sklearn.frozen import FrozenEstimator
        from sklearn.utils.extmath import softmax

        if not (isinstance(model, CalibratedClassifierCV) and model.method == "temperature"
                and len(model.calibrated_classifiers_) == 1):
            return None
        calibrated = model.calibrated_classifiers_[0]
        estimator = calibrated.estimator
        estimator = estimator.estimator if isinstance(estimator, FrozenEstimator) else estimator
        beta, n_classes = calibrated.calibrators[0].beta_, len(model.classes_)
        n_features = int(model.n_features_in_)
    except Exception:  # noqa: BLE001 - another sklearn layout: the library's path
        return None
    if hasattr(estimator, "decision_function"):
        respond = _linear_scores(estimator) or estimator.decision_function
    else:
        respond = _split_across_cores(estimator).predict_proba

    def predict_proba(x: np.ndarray) -> np.ndarray:
        values = respond(x)
        if values.dtype not in (np.float32, np.float64):
            values = values.astype(np.float64)
        if values.ndim != 2 or values.shape[1] != n_classes:
            return model.predict_proba(x)
        if np.all((values >= 0) & (values <= 1)) and np.all(
                xpx.isclose(np.sum(values, axis=1), np.asarray(1.0, dtype=values.dtype))):
            values = np.log(values + 1e-12)   # probabilities: to log-probabilities, as sklearn does
        proba = softmax(beta * values)
        proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
        mean = np.zeros((len(x), n_classes))   # the mean over the one calibrated classifier, as sklearn takes it
        mean += proba
        mean /= 1
        return mean

    rng = np.random.default_rng(0)
    probe = rng.normal(size=(PARALLEL_ROWS + DISTINCT_ROWS, n_features))
    probe[rng.random(probe.shape) < 0.1] = np.nan
    probe[PARALLEL_ROWS:] = probe[rng.integers(PARALLEL_ROWS, size=DISTINCT_ROWS)]   # repeated rows (_Chunked)
    try:
        same = all(np.array_equal(predict_proba(rows), model.predict_proba(rows)) for rows in (probe, probe[:1]))
    except Exception:  # noqa: BLE001 - the shortcut cannot run this model
        same = False
    if not same:
        logger.warning("serving through CalibratedClassifierCV.predict_proba: the temperature shortcut differs")
        return None
    return predict_proba


def _linear_scores(pipeline) -> Callable[[np.ndarray], np.ndarray] | None:
    """``decision_function`` of the logistic-regression candidate, ``Pipeline(SimpleImputer, StandardScaler,
    LogisticRegression)``, as the three steps' own arithmetic on one copy of the rows: fill the missing values
    with the imputer's statistics, ``-= mean_``, ``/= scale_``, ``@ coef_.T + intercept_``. sklearn validates
    and copies the rows at every step: 19 ms of a 10,000-row call against ~4 ms here. The same operations on the
    same memory layout give the same bits; :func:`_temperature_scaled` checks the whole model on probe rows."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [step for _, step in pipeline.steps] if isinstance(pipeline, Pipeline) else []
    if [type(step) for step in steps] != [SimpleImputer, StandardScaler, LogisticRegression]:
        return None
    imputer, scaler, linear = steps
    if not (imputer.keep_empty_features and not imputer.add_indicator and np.isnan(imputer.missing_values)
            and scaler.with_mean and scaler.with_std and linear.coef_.ndim == 2 and linear.coef_.shape[0] > 1):
        return None
    fill, mean, scale = imputer.statistics_.astype(np.float64), scaler.mean_, scaler.scale_
    coef_t, intercept = linear.coef_.T, linear.intercept_

    def scores(x: np.ndarray) -> np.ndarray:
        x = np.array(x, dtype=np.float64, order="C")   # a copy: the steps below work in place
        missing = np.isnan(x)
        if missing.any():
            x[missing] = fill[np.nonzero(missing)[1]]
        x -= mean
        x /= scale
        return x @ coef_t + intercept

    return scores


def single_threaded_blas() -> None:
    """One BLAS thread in this serving process (every BLAS library loaded, and any loaded later).

    The models' BLAS calls are small (a 10,000 x 84 matrix by a few columns), and OpenBLAS's own worker threads
    spin for a while after each call: measured in-process, a worker burned a whole core while the request thread
    parsed the next body, for no gain in the call itself. On a 2-core machine that core is the one the other
    requests, the ledger's flush thread and the chunked XGBoost call (:class:`_Chunked`) need."""
    from threadpoolctl import threadpool_limits

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # libraries loaded later read it as they load
    threadpool_limits(limits=1, user_api="blas")


class _Chunked:
    """``predict_proba`` of an XGBoost model for a large call: each distinct row scored once (:func:`_distinct_rows`),
    and the rows split into one chunk per core, the chunks scored at once on threads (XGBoost releases the GIL while
    it predicts). Each row is scored on its own, so the numbers do not depend on which rows are scored together,
    nor on the split (checked on the probe rows at load, duplicates included). Why not XGBoost's own threads
    (``n_jobs``): the models are fitted with one (reproducible training), and on this shared 2-core machine OpenMP's
    threads doubled the time of a 10,000-row call whenever the other core was busy (they spin-wait for each
    other), where plain threads merely share the core; on a free core both halve it."""

    _pool = None   # one pool for every model served (the threads of a replaced model are not left behind)

    def __init__(self, estimator, cores: int):
        self.estimator, self.cores = estimator, cores

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        distinct = _distinct_rows(x) if len(x) >= DISTINCT_ROWS else None
        if distinct is None:
            return self._split(x)
        rows, position = distinct
        return self._split(x[rows])[position]

    def _split(self, x: np.ndarray) -> np.ndarray:
        if len(x) < PARALLEL_ROWS or self.cores < 2:
            return self.estimator.predict_proba(x)
        if _Chunked._pool is None:
            _Chunked._pool = ThreadPoolExecutor(max_workers=self.cores - 1, thread_name_prefix="time2bet-chunk")
        first, *rest = np.array_split(x, self.cores)
        futures = [_Chunked._pool.submit(self.estimator.predict_proba, chunk) for chunk in rest]
        return np.concatenate([self.estimator.predict_proba(first), *(f.result() for f in futures)])


def _distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(the rows to score, where each row's probabilities are among theirs) when some rows of ``x`` are the same
    bits as another row, else None (all distinct).

    A batch repeats model inputs: a pair asked at several dates past the rest-day cap (REST_DAYS_CAP) is the same
    row each time; bench/serve.py's real workload repeats ~24% of the rows of a 10,000-match batch, and the model
    is ~85% of the batch's time. Each row is scored on its own by a deterministic model, so a row's probabilities
    do not depend on the rows scored with it (as _Chunked relies on): the same row gets the same bits whether it is
    scored once or twice. Rows are grouped by a hash (a dot product with fixed weights, NaN as a sentinel), then
    every row grouped with another is compared bit for bit with it; one that differs (a hash collision) is scored
    on its own. ~2 ms for 10,000 rows (einsum, not a matrix product: OpenBLAS would start threads that then
    spin on the cores the model's chunks need)."""
    n = len(x)
    bits = np.ascontiguousarray(x, dtype=np.float64)
    weights = _hash_weights(bits.shape[1])
    keys = np.einsum("ij,j->i", np.where(np.isnan(bits), _NAN_KEY, bits), weights)   # no BLAS threads
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if len(first) == n:
        return None
    inverse = inverse.reshape(-1)
    representative = first[inverse]
    grouped = np.flatnonzero(representative != np.arange(n))   # rows that another row stands for
    raw = bits.view(np.uint64)
    differs = grouped[(raw[grouped] != raw[representative[grouped]]).any(axis=1)]
    position = inverse.copy()
    position[differs] = len(first) + np.arange(len(differs))   # a collision: the row is scored itself
    return np.concatenate([first, differs]), position


_NAN_KEY = -12_345.678   # what a missing value counts as in _distinct_rows' hash (small: it must not swamp the others)


@functools.lru_cache(maxsize=8)
def _hash_weights(n_features: int) -> np.ndarray:
    return np.random.default_rng(20_240_701).uniform(0.5, 1.5, size=n_features)


def _split_across_cores(estimator):
    """An XGBoost ``estimator`` wrapped in :class:`_Chunked` (split across the cores this process may use), else
    itself (a logistic-regression pipeline is cheap, mostly holds the GIL, and its matrix product may round a row
    differently with other rows: it keeps every row)."""
    from xgboost import XGBModel

    return _Chunked(estimator, len(os.sched_getaffinity(0))) if isinstance(estimator, XGBModel) else estimator


def assign_variant(key: str, share: float) -> str:
    """``challenger`` for a stable ``share`` of keys (a match id), ``champion`` for the rest: the same key always
    gets the same variant (sha256, not Python's salted ``hash``), whatever the process."""
    if share <= 0:
        return CHAMPION
    if share >= 1:
        return CHALLENGER
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2.0**64
    return CHALLENGER if bucket < share else CHAMPION


ROUTE_SEP = "@"   # a routed model's variant key: "<registered model>@<alias>" (models:/name@alias)


def variant_label(key: str) -> str:
    """The A/B variant a key stands for in responses and the ledger: ``champion`` or ``challenger``."""
    return key.rpartition(ROUTE_SEP)[2]


@dataclass(frozen=True)
class ModelSet:
    """The models served at one moment; replaced as a whole, never changed in place. With routes
    (TIME2BET_ROUTES), ``routes`` holds the champion/challenger set of every routed model that has a champion
    and ``route_of`` the divisions they answer; their variant keys are ``name@alias``."""

    champion: ServedModel | None = None
    challenger: ServedModel | None = None
    routes: Mapping[str, ModelSet] = field(default_factory=dict)     # registered model name -> its set
    route_of: Mapping[str, str] = field(default_factory=dict)        # division -> registered model name

    def get(self, variant: str) -> ServedModel | None:
        if variant == CHAMPION:
            return self.champion
        if variant == CHALLENGER:
            return self.challenger
        name, _, alias = variant.rpartition(ROUTE_SEP)
        routed = self.routes.get(name)
        return None if routed is None else routed.get(alias)

    def pick(self, key: str, share: float) -> tuple[str, ServedModel]:
        """(variant, model) for a match id; champion whenever there is no challenger."""
        variant = assign_variant(key, share) if self.challenger is not None else CHAMPION
        model = self.get(variant)
        assert model is not None, "pick() needs a champion"
        return variant, model

    def every_model(self) -> list[ServedModel]:
        """The pooled champion and challenger, then each routed model's, by name."""
        sets = [self, *(self.routes[name] for name in sorted(self.routes))]
        return [m for s in sets for m in (s.champion, s.challenger) if m is not None]


SwapHook = Callable[[str, str, "ServedModel | None", "ServedModel | None"], None]


class ModelWatcher:
    """Keeps :attr:`models` in step with the registry's ``champion`` / ``challenger`` aliases.

    :meth:`refresh` is called from one thread only (the service's watcher thread); readers just read
    :attr:`models`. ``on_change(variant, outcome, old, new)`` is told of every load outcome ("success" /
    "failure") and of a challenger that went away ("removed")."""

    def __init__(self, tracking_uri: str, name: str = MODEL_NAME, *,
                 loader: Callable[..., ServedModel] | None = None,
                 aliases: Callable[[], Mapping[str, object]] | None = None,
                 on_change: SwapHook | None = None, routes: Mapping[str, str] | None = None,
                 variants: tuple[str, ...] = VARIANTS) -> None:
        self.tracking_uri, self.name = tracking_uri, name
        self.variants = variants   # the aliases followed: (CHAMPION,) for a model never A/B-tested (the goals model)
        # routes (division -> registered model): a watcher of each routed model's aliases, its variants reported
        # to on_change as "name@alias"; none configured: nothing more is read or published
        self.route_of = dict(routes or {})
        self._routed = {routed: ModelWatcher(tracking_uri, routed, on_change=prefixed(on_change, routed))
                        for routed in sorted(set(self.route_of.values()))}
        self._loader = loader or (lambda version, alias: ServedModel.load(tracking_uri, name, alias, version))
        self._aliases = aliases or self._registry_aliases
        self._on_change = on_change or (lambda *_: None)
        self._client = None
        self.models = ModelSet()
        self.last_error: str | None = None

    def _registry_aliases(self) -> Mapping[str, object]:
        if self._client is None:
            from time2bet.mlflow_store import registry_client

            self._client = registry_client(self.tracking_uri)
        return self._client.get_registered_model(self.name).aliases

    def refresh(self) -> ModelSet:
        """Load what the aliases point to now (if it changed) and publish it; returns the published set."""
        aliases = self._aliases()
        current = self.models
        chosen: dict[str, ServedModel | None] = dict.fromkeys(VARIANTS)
        for variant in self.variants:
            want = aliases.get(variant)
            want = None if want is None else str(want)
            have = current.get(variant)
            if want is None:
                # the champion is never dropped (an alias deleted by mistake must not take the service down)
                chosen[variant] = have if variant == CHAMPION else None
                if have is not None and variant == CHALLENGER:
                    self._on_change(variant, "removed", have, None)
                continue
            if have is not None and have.version == want:
                chosen[variant] = have
                continue
            other = current.get(CHALLENGER if variant == CHAMPION else CHAMPION)
            try:
                if other is not None and other.version == want:   # e.g. the challenger promoted: no reload
                    new = dataclasses.replace(other, alias=variant)
                else:
                    new = self._loader(want, variant)
            except Exception as exc:  # deliberately broad: keep serving what we have
                logger.exception("loading %s v%s as %s failed; keeping %s", self.name, want, variant,
                                 f"v{have.version}" if have else "nothing")
                self.last_error = f"{variant} v{want}: {type(exc).__name__}: {exc}"
                chosen[variant] = have
                self._on_change(variant, "failure", have, None)
                continue
            chosen[variant] = new
            self.last_error = None
            logger.info("%s: %s v%s -> v%s", variant, self.name, have.version if have else "-", new.version)
            self._on_change(variant, "success", have, new)
        routes = self._refresh_routes()
        if any(chosen[v] is not current.get(v) for v in VARIANTS) or any(
                routes.get(n) is not current.routes.get(n) for n in {*routes, *current.routes}):
            route_of = {division: name for division, name in self.route_of.items() if name in routes}
            # one assignment: requests in flight keep the set they took
            self.models = ModelSet(**chosen, routes=routes, route_of=route_of)
        return self.models

    def _refresh_routes(self) -> dict[str, ModelSet]:
        """Each routed model's set, if it has a champion (a route without one: its divisions get the pooled model)."""
        routes = {}
        for name, watcher in self._routed.items():
            try:
                models = watcher.refresh()
            except Exception:  # deliberately broad: a routed model missing or unreadable must not stop the others
                logger.exception("reading the aliases of routed model %s failed", name)
                models = watcher.models
            if models.champion is not None:
                routes[name] = models
        return routes


def prefixed(on_change: SwapHook | None, name: str) -> SwapHook | None:
    """A routed (or the goals) model's swaps told as variant ``name@alias``."""
    if on_change is None:
        return None
    return lambda variant, outcome, old, new: on_change(f"{name}{ROUTE_SEP}{variant}", outcome, old, new)
