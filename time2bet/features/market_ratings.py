"""Market-implied team ratings: what the betting market thought of each team, from the odds of its EARLIER matches.

Features of the ``market-aware`` model family only (the ``independent`` family never reads odds). The market's
de-margined probabilities of a match say how much stronger it rated the home side, including home advantage:
``implied = 400 * log10(E / (1 - E))`` with ``E = p_home + p_draw / 2`` (the Elo scale). The ratings follow those
implied differences like Elo follows results: after each date, ``error = implied - (r_home - r_away + h)`` and
``r_home += k * error``, ``r_away -= k * error``, the division's home advantage ``h += k_home * error``. A team's
first matches move it faster (``k`` at least ``1 / (2 * (matches + 1))``); a team new to a division starts at the
division's weakest fifth, like a promoted side.

Leakage rule (as :mod:`time2bet.features.ratings`): matches are processed one date at a time, every match of a
date reads the ratings as they stood before that date, the updates of that date are applied afterwards. So a
match's own odds (and those of its same-day matches) never reach its features; they move later matches only.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

MARKET_RATING_FEATURES = (
    "market_rating_home", "market_rating_away", "market_rating_diff", "market_rating_expectation",
)
K = 0.5          # share of the error a team takes per match; with both sides moving, the pair matches its latest price (chosen in-window: 0.08-0.8 tried)
K_HOME = 0.005   # the division's home advantage moves slowly
INITIAL_HOME = 60.0


def implied_difference(p_home: np.ndarray, p_draw: np.ndarray) -> np.ndarray:
    """Elo-scale rating difference (home advantage included) the market's probabilities imply."""
    e = np.clip(p_home + 0.5 * p_draw, 0.02, 0.98)
    return 400.0 * np.log10(e / (1.0 - e))


def market_ratings(frame: pd.DataFrame, *, k: float = K, k_home: float = K_HOME) -> pd.DataFrame:
    """:data:`MARKET_RATING_FEATURES` for every row of ``frame`` (match_date, division, home_team_id,
    away_team_id, market_prob_home/draw/away; rows without odds get features and update nothing), indexed like it."""
    return _run(frame, k, k_home)[0]


def market_rating_state(frame: pd.DataFrame, *, k: float = K, k_home: float = K_HOME) -> pd.DataFrame:
    """Where the ratings stand after every match of ``frame`` (played matches, as :func:`market_ratings` reads
    them): what a match dated later reads, as a table the serving snapshot stores (:data:`STATE_COLUMNS`). One row
    per team (``entity`` "team": its rating) and per division (``entity`` "division": its home advantage, and in
    ``rating`` the start of a team new to it, the weakest fifth of the teams seen at home there)."""
    return _run(frame, k, k_home)[1]


def next_match_market_ratings(state: pd.DataFrame, fixtures: pd.DataFrame) -> pd.DataFrame:
    """:data:`MARKET_RATING_FEATURES` of ``fixtures`` (division, home_team_id, away_team_id), dated after every match
    the ``state`` (:func:`market_rating_state`) was built from: equal to what :func:`market_ratings` gives such a
    match. Nothing of a fixture but its teams and division is read, so its own odds cannot reach its features."""
    teams = state[state["entity"] == "team"].set_index("id")["rating"]
    divisions = state[state["entity"] == "division"].set_index("id")
    division = fixtures["division"].astype(str)
    start = division.map(divisions["rating"]).fillna(0.0).to_numpy(float)
    home_adv = division.map(divisions["home_advantage"]).fillna(INITIAL_HOME).to_numpy(float)
    rh = fixtures["home_team_id"].astype(str).map(teams).to_numpy(float)
    ra = fixtures["away_team_id"].astype(str).map(teams).to_numpy(float)
    rh, ra = np.where(np.isnan(rh), start, rh), np.where(np.isnan(ra), start, ra)
    diff = rh - ra + home_adv
    return pd.DataFrame(np.column_stack([rh, ra, diff, 1.0 / (1.0 + 10.0 ** (-diff / 400.0))]),
                        index=fixtures.index, columns=list(MARKET_RATING_FEATURES))


STATE_COLUMNS = ("entity", "id", "rating", "home_advantage")


def _newcomer_rating(rating: np.ndarray, peers: np.ndarray) -> float:
    """A team new to a division starts at the weakest fifth of the rated teams seen at home there (or 0)."""
    values = rating[np.unique(peers)]
    values = values[~np.isnan(values)]
    return float(np.quantile(values, 0.2)) if len(values) else 0.0


def _run(frame: pd.DataFrame, k: float, k_home: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.to_datetime(frame["match_date"]).to_numpy()
    order = np.lexsort((frame["match_id"].to_numpy(), dates)) if "match_id" in frame else np.argsort(dates, kind="stable")
    teams, codes = np.unique(np.concatenate([frame["home_team_id"].to_numpy(str), frame["away_team_id"].to_numpy(str)]),
                             return_inverse=True)
    home_codes, away_codes = codes[: len(frame)][order], codes[len(frame):][order]
    divisions, division_codes = np.unique(frame["division"].to_numpy(str), return_inverse=True)
    division_codes = division_codes[order]
    p = frame[["market_prob_home", "market_prob_draw"]].to_numpy(float)[order]
    implied = implied_difference(p[:, 0], p[:, 1])
    has_odds = ~np.isnan(implied)

    rating = np.full(len(teams), np.nan)
    played = np.zeros(len(teams))
    home_adv = np.full(len(divisions), INITIAL_HOME)
    out = np.full((len(frame), 4), np.nan)
    sorted_dates = dates[order]
    bounds = np.flatnonzero(np.r_[True, sorted_dates[1:] != sorted_dates[:-1], True])
    for start, stop in itertools.pairwise(bounds):
        h, a, d = home_codes[start:stop], away_codes[start:stop], division_codes[start:stop]
        for teams_of_side in (h, a):  # newcomers start at their division's weakest fifth (or 0)
            for t, div in zip(teams_of_side, d, strict=True):
                if np.isnan(rating[t]):
                    rating[t] = _newcomer_rating(rating, home_codes[:start][division_codes[:start] == div])
        rh, ra = rating[h], rating[a]
        diff = rh - ra + home_adv[d]
        out[start:stop] = np.column_stack([rh, ra, diff, 1.0 / (1.0 + 10.0 ** (-diff / 400.0))])
        ok = has_odds[start:stop]
        if not ok.any():
            continue
        error = np.where(ok, implied[start:stop] - diff, 0.0)
        step_h = np.maximum(k, 0.5 / (played[h] + 1)) * error
        step_a = np.maximum(k, 0.5 / (played[a] + 1)) * error
        np.add.at(rating, h, step_h)
        np.add.at(rating, a, -step_a)
        np.add.at(played, h, ok)
        np.add.at(played, a, ok)
        np.add.at(home_adv, d, k_home * error)
    result = np.empty_like(out)
    result[order] = out
    state = pd.DataFrame({
        "entity": ["team"] * len(teams) + ["division"] * len(divisions),
        "id": [*teams, *divisions],
        "rating": [*rating, *(_newcomer_rating(rating, home_codes[division_codes == d]) for d in range(len(divisions)))],
        "home_advantage": [*np.full(len(teams), np.nan), *home_adv],
    }, columns=list(STATE_COLUMNS))
    return pd.DataFrame(result, index=frame.index, columns=list(MARKET_RATING_FEATURES)), state
