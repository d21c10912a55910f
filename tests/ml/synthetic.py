"""Synthetic fct_match_features rows with a known signal, for training and registry tests.

Each team has a latent strength that drifts from season to season; goals are Poisson with rates driven by
the strength difference, so the true H/D/A probabilities are known. Features are noisy views of strength:
elo_diff is sharp, the goal/points form columns are blurred, rest days are pure noise. The market quotes
the true probabilities with a little noise, and 10% of matches have no odds.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

SEASONS = ("2019-20", "2020-21", "2021-22", "2022-23", "2023-24")
WEAK_FEATURES = ("home_rest_days", "away_rest_days", "home_points_last5", "away_points_last5")
FEATURES = (
    *WEAK_FEATURES, "home_goals_for_ewm", "home_goals_against_ewm", "away_goals_for_ewm",
    "away_goals_against_ewm", "elo_diff",
)
_GOALS = np.arange(11)
# (home goals, away goals) cells of a home win, a draw and an away win
_OUTCOME_MASKS = np.stack([np.tril(np.ones((11, 11)), -1), np.eye(11), np.triu(np.ones((11, 11)), 1)])


def _poisson(rate: np.ndarray) -> np.ndarray:
    """(n, 11) Poisson probabilities of 0..10 goals."""
    log_fact = np.cumsum(np.log(np.maximum(_GOALS, 1)))
    return np.exp(_GOALS * np.log(rate[:, None]) - rate[:, None] - log_fact)


def synthetic_matches(seasons=SEASONS, per_season: int | tuple[int, ...] = 300, n_teams: int = 20, seed: int = 0
                      ) -> pd.DataFrame:
    """Matches of the given seasons; ``per_season`` is one count for all or one per season."""
    rng = np.random.default_rng(seed)
    strength = rng.normal(0.0, 0.5, n_teams)
    counts = per_season if isinstance(per_season, tuple) else (per_season,) * len(seasons)
    frames = []
    for season, n_matches in zip(seasons, counts, strict=True):
        strength = strength + rng.normal(0.0, 0.15, n_teams)
        home = rng.integers(0, n_teams, n_matches)
        away = (home + rng.integers(1, n_teams, n_matches)) % n_teams
        diff = strength[home] - strength[away]
        home_rate, away_rate = np.exp(0.3 + 0.5 * diff), np.exp(0.05 - 0.5 * diff)
        joint = _poisson(home_rate)[:, :, None] * _poisson(away_rate)[:, None, :]
        p_true = np.einsum("nij,kij->nk", joint, _OUTCOME_MASKS)
        p_true /= p_true.sum(axis=1, keepdims=True)
        home_goals, away_goals = rng.poisson(home_rate), rng.poisson(away_rate)
        market = p_true * np.exp(rng.normal(0.0, 0.05, p_true.shape))
        market /= market.sum(axis=1, keepdims=True)
        market[rng.random(n_matches) < 0.1] = np.nan
        start = dt.date(int(season[:4]), 8, 1)

        def form(team, sign):
            return np.exp(0.2 + sign * 0.5 * strength[team]) + rng.normal(0.0, 0.4, n_matches)  # noqa: B023 - called within this iteration

        frame = pd.DataFrame({
            "match_id": [f"{season}-{i:04d}" for i in range(n_matches)],
            "division": "E0",
            "season": season,
            "match_date": [start + dt.timedelta(days=int(d)) for d in np.sort(rng.integers(0, 280, n_matches))],
            "home_team": [f"team{t:02d}" for t in home],
            "away_team": [f"team{t:02d}" for t in away],
            "home_rest_days": rng.integers(3, 10, n_matches),
            "away_rest_days": rng.integers(3, 10, n_matches),
            "home_points_last5": np.clip(np.round(7 + 3 * strength[home] + rng.normal(0, 2.5, n_matches)), 0, 15),
            "away_points_last5": np.clip(np.round(7 + 3 * strength[away] + rng.normal(0, 2.5, n_matches)), 0, 15),
            "home_goals_for_ewm": form(home, 1), "home_goals_against_ewm": form(home, -1),
            "away_goals_for_ewm": form(away, 1), "away_goals_against_ewm": form(away, -1),
            "elo_diff": 400 * diff + rng.normal(0.0, 30.0, n_matches),
            "market_prob_home": market[:, 0], "market_prob_draw": market[:, 1], "market_prob_away": market[:, 2],
            "result": np.where(home_goals > away_goals, "H", np.where(home_goals == away_goals, "D", "A")),
            "home_goals": home_goals, "away_goals": away_goals,
        })
        frame.loc[rng.random(n_matches) < 0.05, "home_goals_for_ewm"] = np.nan  # early-season gaps
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
