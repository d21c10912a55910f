"""Walk-forward training of H/D/A models: candidates, time-ordered calibration, references and selection.

Football data drift by season, so every split here is by whole seasons in time order: a fold trains on the
seasons before the one it validates on, a model's probabilities are calibrated on a season later than the
data its parameters were fitted on, and candidates are chosen on walk-forward folds inside the training
window only (the most recent window stays untouched for the promotion gate).

Input frames are rows of the dbt mart ``fct_match_features`` (season, result, form and rating feature columns,
market_prob_*); features are named by the caller.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits
from xgboost import XGBClassifier

from time2bet.football import season_start_year
from time2bet.ml.metrics import METRICS, OUTCOME_NAMES, encode_outcomes, evaluate, log_loss
from time2bet.serving_contract import DEFAULT_FAMILY, check_family, model_input

SEED = 20_240_701
CANDIDATES = ("logreg", "xgboost")
# The Dixon-Coles goals model's 1X2 (time2bet.ml.goals), recalibrated by a multinomial logistic regression on
# its log-probabilities: a candidate where the frame carries the goals model's walk-forward outputs.
GOALS_CANDIDATE = "goals"
GOALS_1X2 = ("goals_p_home", "goals_p_draw", "goals_p_away")
BASELINE_MODEL = "logreg"  # the promotion gate's bar (baseline_log_loss) and its fallback when it wins
# The simplest model: the logistic-regression candidate on the Elo difference alone (the other inputs are read and
# dropped, so it serves through the same signature as every candidate). The promotion gate's floor and last
# fallback (elo_only_log_loss); never a walk-forward candidate.
ELO_ONLY_MODEL = "elo_only"
LOGREG_PARAMS = {"C": 0.1, "max_iter": 2000}
# Shallow, slow, subsampled trees: match outcomes are mostly noise, so a small model that stops early on a
# later season generalises better than a deep one. n_jobs=1 keeps the trees bit-for-bit reproducible.
XGB_PARAMS = {
    "n_estimators": 600, "learning_rate": 0.03, "max_depth": 3, "min_child_weight": 10, "subsample": 0.8,
    "colsample_bytree": 0.8, "reg_lambda": 5.0, "early_stopping_rounds": 50,
}
XGB_FIXED = {
    "objective": "multi:softprob", "eval_metric": "mlogloss", "tree_method": "hist", "n_jobs": 1,
    "random_state": SEED,
}
MARKET_PROB_COLUMNS = ("market_prob_home", "market_prob_draw", "market_prob_away")
ELO_REFERENCE = "elo_diff"
# Without ratings the reference falls back to the exponentially weighted goal-difference form of both teams.
FORM_PROXY = "form_goal_diff_ewm"
_FORM_PROXY_INPUTS = (
    "home_goals_for_ewm", "home_goals_against_ewm", "away_goals_for_ewm", "away_goals_against_ewm",
)


# --- seasons and splits ---------------------------------------------------------------------------------

def season_order(seasons: Iterable[str]) -> list[str]:
    """Distinct season labels ('2019-20') in chronological order."""
    return sorted(set(seasons), key=season_start_year)


def held_out_split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(training window, the latest season, its label): the latest season is the promotion gate's evaluation
    window; training never sees it."""
    latest = season_order(frame["season"].unique())[-1]
    return frame[frame["season"] != latest], frame[frame["season"] == latest], latest


@dataclass(frozen=True)
class Fold:
    index: int
    train_seasons: tuple[str, ...]
    valid_season: str


def walk_forward_splits(seasons: Iterable[str], n_folds: int, *, min_train_seasons: int = 1) -> list[Fold]:
    """The last ``n_folds`` seasons each validate a model trained on all seasons before them."""
    ordered = season_order(seasons)
    if n_folds < 1:
        raise ValueError("n_folds must be at least 1")
    if len(ordered) < n_folds + min_train_seasons:
        raise ValueError(
            f"{n_folds} walk-forward folds with at least {min_train_seasons} training season(s) need "
            f"{n_folds + min_train_seasons} seasons; got {len(ordered)}: {ordered}"
        )
    first = len(ordered) - n_folds
    return [Fold(i, tuple(ordered[: first + i]), ordered[first + i]) for i in range(n_folds)]


# --- models ---------------------------------------------------------------------------------------------

def _labels(frame: pd.DataFrame) -> np.ndarray:
    y = encode_outcomes(frame["result"])
    if len(np.unique(y)) != 3:
        raise ValueError("a training slice must contain home wins, draws and away wins")
    return y


def single_threaded_blas():
    """Fits run with one BLAS/OpenMP thread. The models are small (lbfgs on ~100 columns), so threads buy
    little, and on a busy 2-core machine OpenBLAS threads oversubscribe the cores: measured 10x slower
    (4-fold CV 249 s against 23 s). One thread also keeps floating-point reductions in a fixed order."""
    return threadpool_limits(limits=1)


def hyperparameters_of(model_name: str, hyperparameters: Mapping | None = None) -> dict[str, object]:
    """The candidate's hyper-parameters: the code's (LOGREG_PARAMS, XGB_PARAMS) updated by ``hyperparameters``, the
    configuration's per candidate (conf/model: ``{"xgboost": {"learning_rate": 0.05}, ...}``)."""
    defaults = {"logreg": LOGREG_PARAMS, "xgboost": XGB_PARAMS}.get(model_name, {})
    return {**defaults, **dict((hyperparameters or {}).get(model_name) or {})}


def _base_model(model_name: str, features: Sequence[str] = (), hyperparameters: Mapping | None = None):
    if model_name == "logreg":
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
            LogisticRegression(**hyperparameters_of("logreg", hyperparameters)),
        )
    if model_name == ELO_ONLY_MODEL:
        if ELO_REFERENCE not in features:
            raise ValueError(f"the {ELO_ONLY_MODEL} model needs {ELO_REFERENCE} among the features")
        # by position, not name: the service's fast path passes arrays in the signature's order
        only_elo = ColumnTransformer([(ELO_REFERENCE, "passthrough", [list(features).index(ELO_REFERENCE)])])
        return make_pipeline(only_elo, *(step for _, step in _base_model(BASELINE_MODEL).steps))
    if model_name == "xgboost":
        return XGBClassifier(**XGB_FIXED, **hyperparameters_of("xgboost", hyperparameters))
    if model_name == GOALS_CANDIDATE:
        return make_pipeline(
            ColumnTransformer([(GOALS_CANDIDATE, "passthrough", list(GOALS_1X2))]),
            SimpleImputer(strategy="median", keep_empty_features=True), FunctionTransformer(np.log),
            LogisticRegression(max_iter=1000),
        )
    raise ValueError(f"unknown model {model_name!r}; candidates are {CANDIDATES}")


def fit_model(train: pd.DataFrame, features: Sequence[str], model_name: str,
              hyperparameters: Mapping | None = None) -> CalibratedClassifierCV:
    """Fit a candidate on all training seasons but the last, then temperature-scale it on the last one.

    Temperature scaling (one parameter: softmax(logits / T)) is multi-class by construction, keeps the
    ranking of outcomes, and needs little data, unlike one-vs-rest sigmoid/isotonic maps, which distort the
    joint H/D/A distribution and overfit a single season. XGBoost also early-stops on that last season (the
    only later slice there is); two scalar choices on one season cost little optimism, and the walk-forward
    folds, which never see their validation season, measure whatever is left.
    """
    seasons = season_order(train["season"])
    if len(seasons) < 2:
        raise ValueError("a calibrated model needs two training seasons: fit on earlier ones, calibrate on the last")
    fit_part = train[train["season"] != seasons[-1]]
    cal_part = train[train["season"] == seasons[-1]]
    x_cal, y_cal = model_input(cal_part, features), _labels(cal_part)
    base = _base_model(model_name, features, hyperparameters)
    with single_threaded_blas():
        if model_name == "xgboost":
            base.fit(model_input(fit_part, features), _labels(fit_part), eval_set=[(x_cal, y_cal)], verbose=False)
        else:
            base.fit(model_input(fit_part, features), _labels(fit_part))
        return CalibratedClassifierCV(FrozenEstimator(base), method="temperature").fit(x_cal, y_cal)


def base_estimator(model: CalibratedClassifierCV):
    """The fitted candidate inside the calibration wrapper (for importances and parameters)."""
    return model.calibrated_classifiers_[0].estimator.estimator


def temperature(model: CalibratedClassifierCV) -> float:
    """The fitted temperature T (> 1 softens over-confident probabilities, < 1 sharpens them)."""
    return float(1.0 / model.calibrated_classifiers_[0].calibrators[0].beta_)


def feature_importance(model: CalibratedClassifierCV, features: Sequence[str]) -> pd.Series:
    """XGBoost: total gain per feature (0 if never split on). Logistic regression: mean |coefficient| over
    the three classes, on standardised inputs, so features are comparable."""
    base = base_estimator(model)
    if isinstance(base, XGBClassifier):
        gain = base.get_booster().get_score(importance_type="total_gain")
        values, label = [gain.get(f, 0.0) for f in features], "total_gain"
    else:
        values, label = np.abs(base[-1].coef_).mean(axis=0), "mean_abs_coef"
        if isinstance(base[0], ColumnTransformer) and base[0].transformers_[0][0] == GOALS_CANDIDATE:
            # the goals candidate reads its own columns only
            return pd.Series(values, index=list(GOALS_1X2), name=label, dtype="float64").sort_values(ascending=False)
        if isinstance(base[0], ColumnTransformer):  # the Elo-only model: the columns it dropped weigh nothing
            kept = np.zeros(len(features))
            kept[base[0].transformers_[0][2]] = values
            values = kept
    return pd.Series(values, index=list(features), name=label, dtype="float64").sort_values(ascending=False)


def model_params(model: CalibratedClassifierCV, model_name: str) -> dict[str, object]:
    """Hyper-parameters and fitted scalars worth recording with the model."""
    base = base_estimator(model)
    params: dict[str, object] = {"calibration": "temperature", "temperature": temperature(model)}
    if model_name == "xgboost":   # the hyper-parameters it was fitted with (the configuration's, say a sweep's)
        fitted = base.get_params()
        params |= {**XGB_FIXED, **{k: fitted[k] for k in XGB_PARAMS}, "best_iteration": base.best_iteration}
    else:
        fitted = base[-1].get_params()
        params |= {"imputer": "median", "scaler": "standard", **{k: fitted[k] for k in LOGREG_PARAMS}}
    if model_name == GOALS_CANDIDATE:
        params = {k: v for k, v in params.items() if k in ("calibration", "temperature")}
        params |= {"inputs": ",".join(GOALS_1X2), "transform": "log", "imputer": "median"}
    if model_name == ELO_ONLY_MODEL:
        params["only_feature"] = ELO_REFERENCE
    return params


# --- references -----------------------------------------------------------------------------------------

def reference_feature(frame: pd.DataFrame) -> str:
    """elo_diff when the ratings are joined in, else the goal-difference form proxy."""
    if ELO_REFERENCE in frame.columns and frame[ELO_REFERENCE].notna().any():
        return ELO_REFERENCE
    return FORM_PROXY


def _reference_input(frame: pd.DataFrame, feature: str) -> pd.DataFrame:
    if feature == ELO_REFERENCE:
        return frame[[ELO_REFERENCE]].astype("float64")
    hgf, hga, agf, aga = (frame[c].astype("float64") for c in _FORM_PROXY_INPUTS)
    return pd.DataFrame({FORM_PROXY: (hgf - hga) - (agf - aga)}, index=frame.index)


def fit_reference(train: pd.DataFrame, feature: str) -> Pipeline:
    """The rating-only reference: multinomial logistic regression on one strength difference."""
    with single_threaded_blas():
        return make_pipeline(SimpleImputer(strategy="median"), LogisticRegression(max_iter=1000)).fit(
            _reference_input(train, feature), _labels(train)
        )


def reference_parameters(model: Pipeline, feature: str) -> dict[str, object]:
    """A fitted :func:`fit_reference` as plain numbers, which every training run logs (``references/elo.json``), so
    live monitoring scores new matches with the very reference the run fitted: the feature, the value that stands
    in for a missing one, and per outcome class its coefficient and intercept."""
    imputer, logreg = model[0], model[-1]
    return {"feature": feature, "impute_value": float(imputer.statistics_[0]),
            "classes": [int(c) for c in logreg.classes_], "coef": [float(c) for c in logreg.coef_[:, 0]],
            "intercept": [float(b) for b in logreg.intercept_]}


def reference_probabilities(parameters: Mapping[str, object], frame: pd.DataFrame) -> np.ndarray:
    """(n, 3) H/D/A probabilities of a reference given by :func:`reference_parameters`: what the fitted pipeline's
    ``predict_proba`` returns (softmax of the multinomial logits)."""
    x = _reference_input(frame, str(parameters["feature"])).iloc[:, 0].to_numpy(dtype="float64")
    x = np.where(np.isnan(x), float(parameters["impute_value"]), x)
    logits = np.outer(x, np.asarray(parameters["coef"], dtype="float64")) + np.asarray(parameters["intercept"])
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    out = np.zeros((len(x), 3))
    out[:, np.asarray(parameters["classes"], dtype=np.int64)] = p
    return out


def market_probabilities(frame: pd.DataFrame) -> np.ndarray:
    """(n, 3) de-margined market probabilities; NaN rows where there were no odds."""
    if not set(MARKET_PROB_COLUMNS) <= set(frame.columns):
        return np.full((len(frame), 3), np.nan)
    return frame[list(MARKET_PROB_COLUMNS)].to_numpy(dtype="float64")


# --- walk-forward evaluation ----------------------------------------------------------------------------

_SOURCES = ("model", "elo", "market")


def _probability_columns(source: str) -> list[str]:
    return [f"{source}_p_{name}" for name in OUTCOME_NAMES]


def _scores(predictions: pd.DataFrame) -> dict[str, float]:
    """Model and Elo reference on all matches; market, and the model again, on the matches with odds."""
    y = predictions["y"].to_numpy()
    market = predictions[_probability_columns("market")].to_numpy()
    with_odds = ~np.isnan(market).any(axis=1)
    out: dict[str, float] = {"n": len(y), "n_with_odds": int(with_odds.sum())}
    for source in ("model", "elo"):
        out |= {f"{source}_{k}": v for k, v in evaluate(y, predictions[_probability_columns(source)]).items()}
    on_odds = {"market": market, "model_on_odds": predictions[_probability_columns("model")].to_numpy()}
    for source, p in on_odds.items():
        scores = evaluate(y[with_odds], p[with_odds]) if with_odds.any() else dict.fromkeys(METRICS, np.nan)
        out |= {f"{source}_{k}": v for k, v in scores.items()}
    out["gap_to_market_log_loss"] = out["model_on_odds_log_loss"] - out["market_log_loss"]
    return out


@dataclass(frozen=True)
class CVResult:
    """Walk-forward validation of one candidate, with the Elo and market references on the same matches."""

    model_name: str
    features: tuple[str, ...]
    reference_feature: str
    folds: pd.DataFrame  # one row per fold: seasons, sizes, and every score of model / elo / market
    predictions: pd.DataFrame  # out-of-fold: match_id, season, fold, y and the three sources' probabilities

    @property
    def summary(self) -> dict[str, float]:
        """Scores pooled over every validation match (weights seasons by their size, unlike a fold mean)."""
        return _scores(self.predictions)


def _validate_fold(frame: pd.DataFrame, features: Sequence[str], model_name: str, fold: Fold,
                   feature: str, hyperparameters: Mapping | None = None) -> tuple[dict, pd.DataFrame]:
    """One walk-forward fold: (its row of scores, its out-of-fold predictions)."""
    train = frame[frame["season"].isin(fold.train_seasons)]
    valid = frame[frame["season"] == fold.valid_season]
    model = fit_model(train, features, model_name, hyperparameters)
    pred = pd.DataFrame({
        "match_id": valid["match_id"].to_numpy(),
        "season": fold.valid_season,
        "fold": fold.index,
        "y": encode_outcomes(valid["result"]),
    })
    sources = {
        "model": model.predict_proba(model_input(valid, features)),
        "elo": fit_reference(train, feature).predict_proba(_reference_input(valid, feature)),
        "market": market_probabilities(valid),
    }
    for source, p in sources.items():
        pred[_probability_columns(source)] = p
    row = {
        "fold": fold.index, "valid_season": fold.valid_season,
        "train_seasons": f"{fold.train_seasons[0]}..{fold.train_seasons[-1]}", "n_train": len(train),
        **_scores(pred),
    }
    return row, pred


def _on_all_cores(tasks: Sequence[Callable[[], object]]) -> list:
    """Independent fits run at once, one per core, on threads: XGBoost (and BLAS) release the GIL while they
    work, and threads share the training frame instead of copying it to worker processes. BLAS is held at one
    thread for the whole batch, so a fit never changes its floating-point order (and so its bits) because
    another one finished. Measured on the full dev mirror (2 cores): the candidate_model step (both
    candidates' CV, the final fit, MLflow logging) took 216 s with the folds one after the other, 175 s here,
    with the same scores."""
    workers = min(len(tasks), len(os.sched_getaffinity(0)))
    if workers <= 1:
        return [task() for task in tasks]
    with single_threaded_blas(), ThreadPoolExecutor(workers, thread_name_prefix="time2bet-fit") as pool:
        return list(pool.map(lambda task: task(), tasks))


def cross_validate_all(frame: pd.DataFrame, features: Sequence[str], model_names: Sequence[str],
                       n_folds: int = 3, hyperparameters: Mapping | None = None) -> dict[str, CVResult]:
    """Walk-forward folds over the frame's seasons for every candidate (all folds of all candidates run on the
    cores at once); the references are refitted on each fold's training data."""
    feature = reference_feature(frame)
    folds = walk_forward_splits(frame["season"], n_folds, min_train_seasons=2)
    jobs = [(name, fold) for name in model_names for fold in folds]
    done = _on_all_cores([functools.partial(_validate_fold, frame, features, name, fold, feature, hyperparameters)
                          for name, fold in jobs])
    results = {}
    for name in model_names:
        mine = [result for (job_name, _), result in zip(jobs, done, strict=True) if job_name == name]
        results[name] = CVResult(name, tuple(features), feature, pd.DataFrame([row for row, _ in mine]),
                                 pd.concat([pred for _, pred in mine], ignore_index=True))
    return results


def cross_validate(frame: pd.DataFrame, features: Sequence[str], model_name: str, n_folds: int = 3) -> CVResult:
    """Walk-forward validation of one candidate (see :func:`cross_validate_all`)."""
    return cross_validate_all(frame, features, [model_name], n_folds)[model_name]


@dataclass(frozen=True)
class TrainingResult:
    """The chosen candidate refitted on the whole training window, and the evidence it was chosen on."""

    model_name: str
    model: CalibratedClassifierCV  # predict_proba(model_input(frame, features)) -> (n, 3), H/D/A
    features: tuple[str, ...]
    cv: CVResult  # walk-forward validation of the chosen candidate
    candidate_log_loss: dict[str, float]  # pooled walk-forward log-loss of every candidate tried
    train_seasons: tuple[str, ...]
    n_train: int
    family: str = DEFAULT_FAMILY  # which model family's features it may read (FAMILIES)


def train_candidate(
    frame: pd.DataFrame,
    features: Sequence[str],
    model_name: str | None = None,
    *,
    n_folds: int = 3,
    candidates: Sequence[str] = CANDIDATES,
    family: str = DEFAULT_FAMILY,
    hyperparameters: Mapping | None = None,
) -> TrainingResult:
    """Validate each candidate (or only ``model_name``) walk-forward on ``frame``, the training window, pick
    the lowest pooled log-loss (ties go to the earlier candidate, the simpler one), and refit it on the
    whole window. Nothing outside ``frame`` is looked at, so a later window stays fair for the gate."""
    check_family(family)
    names = tuple(candidates) if model_name is None else (model_name,)
    cvs = cross_validate_all(frame, features, names, n_folds, hyperparameters)
    scores = {name: cv.summary["model_log_loss"] for name, cv in cvs.items()}
    chosen = min(names, key=scores.__getitem__)
    return TrainingResult(
        model_name=chosen,
        model=fit_model(frame, features, chosen, hyperparameters),
        features=tuple(features),
        cv=cvs[chosen],
        candidate_log_loss=scores,
        train_seasons=tuple(season_order(frame["season"])),
        n_train=len(frame),
        family=family,
    )


def baseline_log_loss(train: pd.DataFrame, evaluation: pd.DataFrame, features: Sequence[str],
                      model_name: str = BASELINE_MODEL, hyperparameters: Mapping | None = None) -> float:
    """Log-loss on ``evaluation`` of the logistic-regression candidate (or ``model_name``) fitted on ``train``
    exactly as a challenger would be (the same configured ``hyperparameters`` as its fallback's training, so the
    fallback ties its own bar): the bar every challenger must clear in the promotion gate."""
    model = fit_model(train, features, model_name, hyperparameters)
    return log_loss(encode_outcomes(evaluation["result"]), model.predict_proba(model_input(evaluation, features)))


def elo_only_log_loss(train: pd.DataFrame, evaluation: pd.DataFrame, features: Sequence[str]) -> float | None:
    """Log-loss on ``evaluation`` of the Elo-only model (ELO_ONLY_MODEL) fitted on ``train`` as a challenger
    would be: the promotion gate's floor, so no champion is worse than the simplest model. None when the
    features carry no Elo difference (ratings not joined in), where there is no such model."""
    if ELO_REFERENCE not in features or reference_feature(train) != ELO_REFERENCE:
        return None
    return baseline_log_loss(train, evaluation, features, ELO_ONLY_MODEL)
