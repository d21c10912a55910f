"""Match features, built in the warehouse by the dbt project (dbt_project/) and run from here (dbt.py).

The column lists below name what the marts fct_match_features and upcoming_match_features hold, so the ML
stage can select features without guessing from prefixes (home_goals is an outcome, home_goals_for_last5 a
feature). They mirror dbt_project/macros/form.sql; a test keeps the two in step.
"""

from __future__ import annotations

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
