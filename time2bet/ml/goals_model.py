"""The goals model as a registered MLflow model (``match_goals``), beside the 1X2 model ``match_outcome``.

What is registered: the latest Dixon-Coles fit (:mod:`time2bet.ml.goals`, time-decay weights, ridge) of every
division of the training window, as of the day after the window's last match, on that division's matches of the
previous ``WINDOW_DAYS``; a division with fewer than ``MIN_MATCHES`` there gets no fit. The parameters are a JSON
artifact (readable in the MLflow UI), and the pyfunc (:class:`GoalsPyfunc`) is logged as code
(:mod:`time2bet.ml.goals_pyfunc`), so loading it unpickles nothing. It reads
``division, home_team_id, away_team_id`` rows and returns each match's expected goals and the division's rho,
from which :func:`markets_of` derives every market of one score matrix. The service serves the markets from
``match_goals@champion``, the 1X2 from ``match_outcome@champion``.

Evaluation: the fits of the training window, unchanged, predict the held-out split
(:func:`time2bet.ml.training.held_out_split`: the latest season, which training never sees); the run logs their
1X2 log-loss and over/under 2.5 log-loss there.

Gate (:func:`gate_goals`), deliberately small: the first version becomes champion; a later one becomes champion when
its held-out over/under 2.5 log-loss is not worse than the champion's on the same matches (the champion re-scored
on this run's held-out split, so both are judged on one window). Over/under is what only this model serves (its 1X2
is not served); no bootstrap interval, unlike the 1X2 gate (:mod:`time2bet.ml.promotion_gate`): a goals model
that is noise-level worse costs the markets little, and one run per training keeps the cost near zero.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from time2bet.ml import goals
from time2bet.ml.markets import (
    asian_handicap,
    binary_log_losses,
    both_teams_to_score,
    most_likely_scores,
    one_x_two,
    over_under,
)
from time2bet.ml.metrics import encode_outcomes, log_losses
from time2bet.serving_contract import CHAMPION

GOALS_MODEL_NAME = "match_goals"   # the registered model (and MLflow experiment) of the goals model

GOALS_INPUT = ("division", "home_team_id", "away_team_id")
GOALS_OUTPUT = ("exp_home_goals", "exp_away_goals", "rho")   # NaN where the division has no fit
PARAMS_ARTIFACT = "params"   # the pyfunc's artifact key (a JSON file of every division's parameters)
# Asian-handicap lines the service quotes (the home side's handicap): the half and whole lines around the usual
# prices; markets.asian_handicap takes quarter lines too.
AH_LINES = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
TOP_SCORES = 5


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


def parameters(fits: Mapping[str, goals.DixonColes]) -> dict[str, dict]:
    """Fits as plain JSON numbers, by division."""
    return {division: {"teams": list(m.teams), "attack": [float(a) for a in m.attack],
                       "defence": [float(d) for d in m.defence], "home_advantage": m.home_advantage, "rho": m.rho}
            for division, m in fits.items()}


def from_parameters(params: Mapping[str, Mapping]) -> dict[str, goals.DixonColes]:
    return {division: goals.DixonColes(tuple(p["teams"]), np.asarray(p["attack"], float),
                                       np.asarray(p["defence"], float), float(p["home_advantage"]), float(p["rho"]))
            for division, p in params.items()}


# --- the pyfunc -----------------------------------------------------------------------------------------

class GoalsPyfunc(mlflow.pyfunc.PythonModel):
    """Expected goals per match from the fitted divisions (loaded from the JSON artifact, not pickled).

    A team its division's fit never saw (promoted since) gets the weakest fifth's strengths, as in the walk-forward
    evaluation (:meth:`time2bet.ml.goals.DixonColes._strength`); a division without a fit gets NaN."""

    fits: dict[str, goals.DixonColes] | None = None

    def load_context(self, context) -> None:
        self.fits = from_parameters(json.loads(Path(context.artifacts[PARAMS_ARTIFACT]).read_text()))

    @property
    def divisions(self) -> frozenset[str]:
        return frozenset(self.fits or ())

    def expected_goals(self, divisions: Sequence[str], home_ids: Sequence[str], away_ids: Sequence[str]
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(expected home goals, expected away goals, rho) per match; NaN for a division without a fit."""
        divisions = np.asarray(divisions, dtype=object)
        home_ids, away_ids = np.asarray(home_ids, dtype=object), np.asarray(away_ids, dtype=object)
        lam, mu, rho = (np.full(len(divisions), np.nan) for _ in range(3))
        for division in dict.fromkeys(divisions.tolist()):
            fit = (self.fits or {}).get(division)
            if fit is None:
                continue
            rows = divisions == division
            lam[rows], mu[rows] = fit.expected_goals(home_ids[rows], away_ids[rows])
            rho[rows] = fit.rho
        return lam, mu, rho

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        lam, mu, rho = self.expected_goals(*(model_input[c].astype(str).to_numpy() for c in GOALS_INPUT))
        return pd.DataFrame(dict(zip(GOALS_OUTPUT, (lam, mu, rho), strict=True)))


def markets_of(lam: np.ndarray, mu: np.ndarray, rho: np.ndarray) -> dict[str, object]:
    """Every served market of each match from its score matrix (all sums over one matrix, so they agree):
    ``one_x_two`` (n, 3), ``over_2_5`` (n,), ``btts`` (n,), ``asian_handicap`` (n, len(AH_LINES), 3: home bet
    wins / push / loses), ``most_likely_scores`` (per match, TOP_SCORES (home, away, p)), and lam/mu back as
    ``expected_goals`` (n, 2)."""
    # rho per match (it is a division's): score_matrix's corrections are element-wise, so an (n,) rho works
    m = goals.score_matrix(lam, mu, np.asarray(rho, float))
    return {
        "expected_goals": np.column_stack([lam, mu]),
        "one_x_two": one_x_two(m),
        "over_2_5": over_under(m, 2.5),
        "btts": both_teams_to_score(m),
        "asian_handicap": np.stack([asian_handicap(m, line) for line in AH_LINES], axis=1) if len(m)
        else np.empty((0, len(AH_LINES), 3)),
        "most_likely_scores": most_likely_scores(m, TOP_SCORES),
    }


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


def load_goals(model_uri: str) -> GoalsPyfunc:
    """The python model behind a logged or registered goals model (``models:/match_goals@champion``)."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()


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
