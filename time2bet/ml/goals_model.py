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

Gate (:func:`time2bet.ml.goals_training.gate_goals`, with the fitting and logging: the service imports this
module only), deliberately small: the first version becomes champion; a later one becomes champion when
its held-out over/under 2.5 log-loss is not worse than the champion's on the same matches (the champion re-scored
on this run's held-out split, so both are judged on one window). Over/under is what only this model serves (its 1X2
is not served); no bootstrap interval, unlike the 1X2 gate (:mod:`time2bet.ml.promotion_gate`): a goals model
that is noise-level worse costs the markets little, and one run per training keeps the cost near zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from time2bet.ml import goals
from time2bet.ml.markets import (
    asian_handicap,
    both_teams_to_score,
    most_likely_scores,
    one_x_two,
    over_under,
)

GOALS_MODEL_NAME = "match_goals"   # the registered model (and MLflow experiment) of the goals model

GOALS_INPUT = ("division", "home_team_id", "away_team_id")
GOALS_OUTPUT = ("exp_home_goals", "exp_away_goals", "rho")   # NaN where the division has no fit
PARAMS_ARTIFACT = "params"   # the pyfunc's artifact key (a JSON file of every division's parameters)
# Asian-handicap lines the service quotes (the home side's handicap): the half and whole lines around the usual
# prices; markets.asian_handicap takes quarter lines too.
AH_LINES = (-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5)
TOP_SCORES = 5


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


def load_goals(model_uri: str) -> GoalsPyfunc:
    """The python model behind a logged or registered goals model (``models:/match_goals@champion``)."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
