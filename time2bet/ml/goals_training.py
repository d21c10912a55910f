"""Training side of the goals model (:mod:`time2bet.ml.goals_model`): fit every division of the training window,
score the held-out season, log the run, register the version and gate it (see that module's docstring).

Apart from the serving side on purpose: the service loads ``match_goals`` and computes markets with
:mod:`time2bet.ml.goals_model` alone, so the bento ships neither this module nor the registry and training code
it imports."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from time2bet.ml import goals
from time2bet.ml.goals_model import (
    GOALS_INPUT,
    GOALS_MODEL_NAME,
    PARAMS_ARTIFACT,
    GoalsPyfunc,
    load_goals,
    markets_of,
    parameters,
)
from time2bet.ml.markets import binary_log_losses
from time2bet.ml.metrics import encode_outcomes, log_losses
from time2bet.serving_contract import CHAMPION

# --- fitting --------------------------------------------------------------------------------------------

def fit_divisions(played: pd.DataFrame, as_of: pd.Timestamp | None = None, *, xi: float = goals.XI,
                  ridge: float = goals.RIDGE, window_days: int = goals.WINDOW_DAYS,
                  min_matches: int = goals.MIN_MATCHES) -> dict[str, goals.DixonColes]:
    """The latest fit of every division with at least ``min_matches`` played matches in the ``window_days`` before
    ``as_of`` (default: the day after the last match), weighted by age at ``as_of``."""
    played = played.dropna(subset=["home_goals", "away_goals"])
    dates = pd.to_datetime(played["match_date"])
    as_of = dates.max().normalize() + pd.Timedelta(days=1) if as_of is None else pd.Timestamp(as_of)
    window = played[(dates < as_of) & (dates >= as_of - pd.Timedelta(days=window_days))]
    fits = {}
    for division, rows in window.groupby("division", sort=True):
        if len(rows) >= min_matches:
            fits[str(division)] = goals.fit(rows, as_of, xi=xi, ridge=ridge)
    return fits



# --- evaluation, logging, registry ----------------------------------------------------------------------

def held_out_scores(model: GoalsPyfunc, evaluation: pd.DataFrame) -> dict[str, float]:
    """1X2 and over/under 2.5 log-loss on the played matches of ``evaluation`` in divisions the model fits."""
    played = evaluation.dropna(subset=["home_goals", "away_goals"])
    lam, mu, rho = model.expected_goals(*(played[c].astype(str).to_numpy() for c in GOALS_INPUT))
    ok = np.isfinite(lam)
    if not ok.any():
        return {"n": 0}
    played = played[ok]
    market = markets_of(lam[ok], mu[ok], rho[ok])
    over = ((played["home_goals"] + played["away_goals"]).to_numpy(float) > 2.5).astype(int)
    return {"n": int(ok.sum()),
            "log_loss_1x2": float(log_losses(encode_outcomes(played["result"]), market["one_x_two"]).mean()),
            "ou_2_5_log_loss": float(binary_log_losses(over, market["over_2_5"]).mean())}


@dataclass(frozen=True)
class LoggedGoals:
    run_id: str
    model_uri: str   # models:/m-<id>, what gate_goals registers


@dataclass(frozen=True)
class GoalsOutcome:
    run_id: str
    version: str
    promoted: bool
    scores: dict[str, float]             # the new version's held-out scores
    champion_ou_2_5_log_loss: float | None   # the champion's on the same matches (None: there was none)
    champion_version: str | None

    def describe(self) -> str:
        verdict = "champion" if self.promoted else f"challenger (champion stays v{self.champion_version})"
        versus = (f" vs champion v{self.champion_version}'s {self.champion_ou_2_5_log_loss:.5f}"
                  if self.champion_ou_2_5_log_loss is not None else " (no champion before)")
        return (f"{GOALS_MODEL_NAME} v{self.version} -> {verdict}: held-out over/under 2.5 log-loss "
                f"{self.scores.get('ou_2_5_log_loss', float('nan')):.5f}{versus}, 1X2 log-loss "
                f"{self.scores.get('log_loss_1x2', float('nan')):.5f}, n={self.scores.get('n', 0)}")


def log_goals_model(fits: Mapping[str, goals.DixonColes], scores: Mapping[str, float], example: pd.DataFrame, *,
                    tracking_uri: str, data_version: str, artifact_location: str | None = None,
                    tags: Mapping[str, str] | None = None, params: Mapping[str, object] | None = None
                    ) -> LoggedGoals:
    """One MLflow run in experiment ``match_goals`` (nested under an active run, say the Dagster run's): the
    parameters, held-out scores and the pyfunc."""
    from time2bet.mlflow_store import experiment_id, use_tracking

    use_tracking(tracking_uri)
    experiment = experiment_id(GOALS_MODEL_NAME, artifact_location)
    run_tags = {"data_version": data_version, "family": "independent", **(tags or {})}
    with mlflow.start_run(experiment_id=experiment, tags=run_tags, nested=mlflow.active_run() is not None) as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({"data_version": data_version, "model": "dixon_coles", "xi": goals.XI,
                           "ridge": goals.RIDGE, "window_days": goals.WINDOW_DAYS, "min_matches": goals.MIN_MATCHES,
                           "divisions": ",".join(sorted(fits)), **(params or {})})
        mlflow.log_metrics({f"heldout.{k}": float(v) for k, v in scores.items()})
        path = Path(tmp) / "goals_params.json"
        path.write_text(json.dumps(parameters(fits), indent=1))
        model = GoalsPyfunc()
        model.fits = dict(fits)
        example = example[list(GOALS_INPUT)].astype(str).head(5).reset_index(drop=True)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(Path(__file__).with_name("goals_pyfunc.py")),
            artifacts={PARAMS_ARTIFACT: str(path)},
            signature=mlflow.models.infer_signature(example, model.predict(None, example)),
            input_example=example,
            pip_requirements=[f"{pkg}=={package_version(pkg)}" for pkg in ("numpy", "pandas", "scipy")])
    return LoggedGoals(run_id=run.info.run_id, model_uri=info.model_uri)


def gate_goals(logged: LoggedGoals, scores: Mapping[str, float], evaluation: pd.DataFrame, held_out: str, *, tracking_uri: str,
               tags: Mapping[str, str] | None = None) -> GoalsOutcome:
    """Register the run's model as a new ``match_goals`` version (alias ``challenger``) and make it champion when
    there is none, or when its held-out over/under 2.5 log-loss is not worse than the champion's on the same
    matches (see the module docstring). The numbers go on the version's tags (``goals_gate.*``)."""
    from time2bet.ml.registry import alias_version, append_audit, promote, register_challenger
    from time2bet.mlflow_store import registry_client

    client = registry_client(tracking_uri)
    try:
        champion = alias_version(client, GOALS_MODEL_NAME, CHAMPION)
    except mlflow.exceptions.MlflowException:   # not registered yet
        champion = None
    champion_ou = None
    if champion is not None:
        champion_ou = held_out_scores(load_goals(f"models:/{GOALS_MODEL_NAME}/{champion}"), evaluation) \
            .get("ou_2_5_log_loss")
    version = register_challenger(logged.model_uri, GOALS_MODEL_NAME,
                                  {**(tags or {}), "mlflow_run_id": logged.run_id}, tracking_uri=tracking_uri)
    ours = scores.get("ou_2_5_log_loss")
    promoted = champion is None or (ours is not None and (champion_ou is None or ours <= champion_ou))
    gate_tags = {"goals_gate.window": held_out, "goals_gate.n": str(scores.get("n", 0)),
                 "goals_gate.ou_2_5_log_loss": "" if ours is None else f"{ours:.6f}",
                 "goals_gate.champion_version": champion or "",
                 "goals_gate.champion_ou_2_5_log_loss": "" if champion_ou is None else f"{champion_ou:.6f}",
                 "goals_gate.decision": "promoted" if promoted else "rejected"}
    for key, value in gate_tags.items():
        client.set_model_version_tag(GOALS_MODEL_NAME, version, key, value)
    if promoted:
        reason = ("first goals model" if champion is None else
                  f"held-out over/under 2.5 log-loss {ours:.5f} not worse than v{champion}'s "
                  f"{champion_ou if champion_ou is not None else float('nan'):.5f} on {held_out}")
        promote(GOALS_MODEL_NAME, version, reason, tracking_uri=tracking_uri)
    else:
        append_audit(client, GOALS_MODEL_NAME, f"gate: v{version} stays challenger: over/under 2.5 log-loss "
                     f"{gate_tags['goals_gate.ou_2_5_log_loss'] or 'none (no held-out match it predicts)'} worse "
                     f"than champion v{champion}'s {gate_tags['goals_gate.champion_ou_2_5_log_loss']} on {held_out}")
    return GoalsOutcome(logged.run_id, version, promoted, dict(scores), champion_ou, champion)


def train_register_and_gate(frame: pd.DataFrame, *, tracking_uri: str, data_version: str,
                            artifact_location: str | None = None, tags: Mapping[str, str] | None = None
                            ) -> GoalsOutcome:
    """The whole step on a training dataset (rows of fct_match_features): split off the held-out season, fit the
    divisions on the rest, score the held-out season, log, register and gate. Raises ValueError when no division
    has enough matches for a fit."""
    from time2bet.ml.training import held_out_split

    train, evaluation, held_out = held_out_split(frame)
    fits = fit_divisions(train)
    if not fits:
        raise ValueError(f"no division has {goals.MIN_MATCHES} played matches in the last {goals.WINDOW_DAYS} days "
                         "of the training window: no goals model to fit")
    model = GoalsPyfunc()
    model.fits = fits
    scores = held_out_scores(model, evaluation)
    as_of = pd.to_datetime(train["match_date"]).max().normalize() + pd.Timedelta(days=1)
    logged = log_goals_model(fits, scores, train[train["division"].isin(fits)], tracking_uri=tracking_uri,
                             data_version=data_version, artifact_location=artifact_location,
                             tags={"held_out_season": held_out, **(tags or {})},
                             params={"as_of": as_of.date().isoformat(), "n_train": len(train)})
    return gate_goals(logged, scores, evaluation, held_out, tracking_uri=tracking_uri,
                      tags={"data_version": data_version, **(tags or {})})
