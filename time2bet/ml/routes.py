"""Several models: a model of one division beside the pooled one, and the evidence a route ships on.

A per-division model is trained, logged, registered and gated exactly as the pooled one (walk-forward candidates
inside the training window, the latest season held out for the promotion gate, the baseline and Elo-only
fallbacks), only on that division's rows and under its own registered model name, so it has its own challenger,
champion, gate tags and audit trail. Which division it answers is configuration (TIME2BET_ROUTES); a route
ships only where :func:`compare_routes` shows it beating the pooled model on that division's rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from time2bet.football import season_start_year
from time2bet.ml.metrics import log_loss
from time2bet.ml.training import (
    BASELINE_MODEL,
    ELO_ONLY_MODEL,
    baseline_log_loss,
    cross_validate_all,
    elo_only_log_loss,
    held_out_split,
    season_order,
    train_candidate,
)
from time2bet.serving_contract import MODEL_FEATURES, MODEL_NAME


def route_model_name(division: str, pooled: str = MODEL_NAME) -> str:
    """The registered model of a division's route by convention: ``match_outcome_e0``."""
    return f"{pooled}_{division.lower()}"


@dataclass(frozen=True)
class DivisionTraining:
    division: str
    registered_name: str
    version: str | None
    promoted: bool
    described: str        # the gate's verdict, as the registry records it


def train_division_model(frame: pd.DataFrame, division: str, registered_name: str, *, tracking_uri: str,
                         data_version: str, experiment: str | None = None, artifact_location: str | None = None,
                         n_folds: int = 3, hyperparameters: Mapping | None = None,
                         gate_policy: Mapping | None = None) -> DivisionTraining:
    """Train ``division``'s model on its rows of ``frame`` (fct_match_features rows), log it, register it as
    ``registered_name``'s challenger and gate it against that name's champion (with the baseline and Elo-only
    fallbacks of the pooled model's gate)."""
    from time2bet.ml.promotion_gate import gate_with_baseline_fallback
    from time2bet.ml.tracking import log_training_run

    rows = frame[frame["division"] == division]
    if rows.empty:
        raise ValueError(f"no rows of division {division}")
    train, evaluation, held_out = held_out_split(rows)
    folds = min(n_folds, train["season"].nunique() - 2)
    if folds < 1:
        raise ValueError(f"division {division}: walk-forward validation needs at least 4 seasons; "
                         f"it has {rows['season'].nunique()}")
    features = list(MODEL_FEATURES)
    policy = dict(gate_policy or {})

    def trained(model_name: str | None = None):
        result = train_candidate(train, features, model_name, n_folds=folds, hyperparameters=hyperparameters)
        return result, log_training_run(result, train, tracking_uri=tracking_uri, data_version=data_version,
                                        experiment=experiment or registered_name, artifact_location=artifact_location,
                                        tags={"held_out_season": held_out, "division": division})

    candidate, logged = trained()
    outcome = gate_with_baseline_fallback(
        registered_name, logged, candidate.model_name, evaluation, features,
        baseline_logloss=baseline_log_loss(train, evaluation, features, hyperparameters=hyperparameters),
        train_baseline=lambda: trained(BASELINE_MODEL)[1],
        elo_only_logloss=elo_only_log_loss(train, evaluation, features),
        train_elo_only=lambda: trained(ELO_ONLY_MODEL)[1],
        tags={"data_version": data_version, "division": division},
        tolerance=float(policy.get("tolerance", 0.002)), max_ece=float(policy.get("max_ece", 0.05)),
        tracking_uri=tracking_uri, training_reason=f"per-division model of {division}")
    return DivisionTraining(division, registered_name, outcome.version, outcome.decision.promoted,
                            outcome.describe())


def compare_routes(frame: pd.DataFrame, divisions: Sequence[str] | None = None, *, model_name: str = "logreg",
                   n_folds: int = 3, hyperparameters: Mapping | None = None, min_gain: float = 0.0) -> pd.DataFrame:
    """Per division, walk-forward inside the training window (the latest season held out, as for training): the
    per-division model against the pooled model on that division's rows, same folds (seasons) and matches. A
    route ships where the division's model has the lower pooled log-loss by more than ``min_gain``."""
    train, _, _ = held_out_split(frame)
    folds = min(n_folds, train["season"].nunique() - 2)
    features = list(MODEL_FEATURES)
    pooled_until: dict[str, pd.DataFrame] = {}

    def pooled_predictions(last_season: str) -> pd.DataFrame:
        """The pooled model's walk-forward predictions with the window cut after ``last_season``: a division whose
        data stops earlier (the mirror has several that stop in 2013-14) is validated on its own last seasons,
        each by a pooled model trained on every division's seasons before it."""
        if last_season not in pooled_until:
            window = train[train["season"].map(season_start_year) <= season_start_year(last_season)]
            predictions = cross_validate_all(window, features, [model_name], folds, hyperparameters)[model_name]
            pooled_until[last_season] = predictions.predictions.merge(window[["match_id", "division"]], on="match_id")
        return pooled_until[last_season]

    rows = []
    for division in divisions or sorted(train["division"].unique()):
        own_rows = train[train["division"] == division]
        if own_rows["season"].nunique() < folds + 2:
            continue
        pooled = pooled_predictions(season_order(own_rows["season"])[-1])
        own = cross_validate_all(own_rows, features, [model_name], folds, hyperparameters)[model_name].predictions
        theirs = pooled[(pooled["division"] == division) & pooled["match_id"].isin(own["match_id"])]
        own = own[own["match_id"].isin(theirs["match_id"])].set_index("match_id").loc[theirs["match_id"]]
        cols = ["model_p_home", "model_p_draw", "model_p_away"]
        y = theirs["y"].to_numpy()
        division_ll, pooled_ll = log_loss(y, own[cols].to_numpy()), log_loss(y, theirs[cols].to_numpy())
        rows.append({"division": division, "n": len(y), "seasons": ",".join(season_order(theirs["season"])),
                     "division_log_loss": division_ll, "pooled_log_loss": pooled_ll,
                     "gain": pooled_ll - division_ll, "ships": bool(pooled_ll - division_ll > min_gain)})
    return pd.DataFrame(rows)
