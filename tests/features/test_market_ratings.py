"""Market-implied ratings read the odds of earlier dates only: a match's own odds never reach its features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from time2bet.features.market_ratings import MARKET_RATING_FEATURES, implied_difference, market_ratings


def _league(n_teams: int = 8, rounds: int = 6, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 150, n_teams)
    rows = []
    for r in range(rounds):
        order = rng.permutation(n_teams)
        for i in range(0, n_teams, 2):
            h, a = order[i], order[i + 1]
            e = 1 / (1 + 10 ** (-(strength[h] - strength[a] + 60) / 400))
            rows.append({"match_id": f"r{r}-{i}", "division": "X1",
                         "match_date": pd.Timestamp("2020-01-04") + pd.Timedelta(days=7 * r),
                         "home_team_id": f"t{h}", "away_team_id": f"t{a}",
                         "market_prob_home": 0.75 * e, "market_prob_draw": 0.25, "market_prob_away": 0.75 * (1 - e)})
    return pd.DataFrame(rows)


def test_own_odds_never_reach_a_match_but_move_later_ones():
    frame = _league()
    before = market_ratings(frame)
    k = 9  # a match of the second round
    changed = frame.copy()
    changed.loc[k, ["market_prob_home", "market_prob_draw", "market_prob_away"]] = [0.05, 0.15, 0.80]
    after = market_ratings(changed)
    same_day = frame["match_date"] == frame.loc[k, "match_date"]
    earlier = frame["match_date"] < frame.loc[k, "match_date"]
    pd.testing.assert_frame_equal(before[same_day | earlier], after[same_day | earlier])
    teams = {frame.loc[k, "home_team_id"], frame.loc[k, "away_team_id"]}
    later = (frame["match_date"] > frame.loc[k, "match_date"]) & (
        frame["home_team_id"].isin(teams) | frame["away_team_id"].isin(teams))
    assert (before.loc[later, "market_rating_diff"] - after.loc[later, "market_rating_diff"]).abs().min() > 1.0


def test_ratings_learn_the_market_order_and_rows_without_odds_change_nothing():
    frame = _league(rounds=12)
    out = market_ratings(frame)
    assert list(out.columns) == list(MARKET_RATING_FEATURES)
    last = frame["match_date"] == frame["match_date"].max()
    implied = implied_difference(frame.loc[last, "market_prob_home"].to_numpy(), 0.25)
    assert np.corrcoef(out.loc[last, "market_rating_diff"], implied)[0, 1] > 0.95
    no_odds = frame.copy()
    no_odds.loc[3, ["market_prob_home", "market_prob_draw", "market_prob_away"]] = np.nan
    with_gap = market_ratings(no_odds)
    first_round = frame["match_date"] == frame["match_date"].min()
    pd.testing.assert_frame_equal(out[first_round], with_gap[first_round])
    assert with_gap.notna().all().all()
