"""The serving contract: what a match-outcome model reads and answers, shared by training, batch predictions and
the service, so the three cannot drift apart.

- the feature columns, by name and order: dbt's pre-match form and head-to-head columns (they mirror
  ``dbt_project/macros/form.sql``; a test keeps the two in step) and the Python ratings' columns;
- :func:`model_input`, the one way a frame becomes a model's input (float64 columns in the logged order, rest
  days capped);
- the registered model's name, its aliases (which are also the A/B variants) and its outcome columns;
- the table batch predictions are written to and the service reads.

Floor layer: it imports nothing of the platform.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

MODEL_NAME = "match_outcome"   # the registered model (and MLflow experiment) every stage uses by default
CHAMPION = "champion"          # the alias the service answers with
CHALLENGER = "challenger"      # the latest candidate; the A/B arm when TIME2BET_CHALLENGER_SHARE > 0
VARIANTS = (CHAMPION, CHALLENGER)
# Model families (time2bet.ml.families): which inputs a model may read. The configured family's best version holds
# CHAMPION (what is served); every run, registry version (tag FAMILY_TAG) and served prediction names its family.
FAMILIES = ("independent", "market-aware")   # market-aware models may read the odds of EARLIER matches
DEFAULT_FAMILY = "independent"
FAMILY_TAG = "family"
OUTCOMES = ("home", "draw", "away")   # a model's probability columns, in order (H/D/A)
PREDICTIONS_TABLE = "predictions.upcoming_matches"   # batch predictions of the upcoming fixtures

# --- the dbt marts' columns (fct_match_features, upcoming_match_features) ---------------------------------------

FORM_STATS = (
    "goals_for", "goals_against", "shots_for", "shots_against", "shots_on_target_for",
    "shots_on_target_against", "corners_for", "corners_against", "cards", "points",
)
FORM_WINDOWS = ("last5", "last10", "ewm")
VENUE_STATS = ("points", "goals_for", "goals_against")


def _side(side: str) -> tuple[str, ...]:
    return (
        f"{side}_rest_days",
        f"{side}_matches_played",
        *(f"{side}_{stat}_{window}" for stat in FORM_STATS for window in FORM_WINDOWS),
        f"{side}_venue_matches_last5",
        *(f"{side}_venue_{stat}_last5" for stat in VENUE_STATS),
    )


ID_COLUMNS = (
    "match_id", "division", "season", "match_date", "kickoff_time",
    "home_team", "away_team", "home_team_id", "away_team_id",
)
FEATURE_COLUMNS = (
    *_side("home"),
    *_side("away"),
    "h2h_meetings_last5", "h2h_home_points_last5", "h2h_home_goal_diff_last5",
)
# The market's view, for evaluating models against it; never a feature (closing odds come at kickoff).
MARKET_COLUMNS = ("market_prob_home", "market_prob_draw", "market_prob_away", "market_overround", "market_odds_source")
OUTCOME_COLUMNS = ("result", "home_goals", "away_goals")

# --- the ratings' columns (time2bet.features.ratings; tables ratings.*) ------------------------------------------

ELO_COLUMNS = ("home_elo", "away_elo", "elo_diff", "elo_home_expectation")
PI_COLUMNS = ("home_pi_home", "home_pi_away", "away_pi_home", "away_pi_away", "pi_expected_goal_diff")

# --- what the model sees ----------------------------------------------------------------------------------------

RATING_FEATURES = (*ELO_COLUMNS, *PI_COLUMNS)
MODEL_FEATURES = (*FEATURE_COLUMNS, *RATING_FEATURES)
# ratings.season_entry, which the service needs to rate a team's first match of a season like training does
SEASON_ENTRY_COLUMNS = ("season", "team_id", "start_elo", "previous_division", "division")

# Days since a side's previous match, as the model sees them: at most a month. Beyond that (an off-season, or
# years outside the ingested divisions) more days say nothing more about rest, and one outlier could swing a
# linear model: a team back in the top flight after 21 years came with 7,749 rest days, and the logistic
# regression gave its hosts 8% where the market said 53%. The marts keep the true count; in-window
# walk-forward log-loss is the same with the cap (0.96749 both, big five before 2018-07).
REST_DAYS_CAP = 30.0
REST_DAYS_FEATURES = ("home_rest_days", "away_rest_days")


def model_input(frame: pd.DataFrame, features: Sequence[str]) -> pd.DataFrame:
    """What every model sees (training, batch predictions, serving): the named feature columns as float64, in
    the given order (the logged schema), rest days capped at REST_DAYS_CAP."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise KeyError(f"feature columns missing from the frame: {missing}")
    x = frame.loc[:, list(features)].astype("float64")
    rest = [c for c in REST_DAYS_FEATURES if c in x.columns]
    if rest:
        x[rest] = x[rest].clip(upper=REST_DAYS_CAP)
    return x


def check_family(family: str) -> str:
    """``family`` if it is one of FAMILIES, else a clear error (one check for training, the registry and bench)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; families are {FAMILIES}")
    return family
