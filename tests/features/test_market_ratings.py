"""Market-implied ratings read the odds of earlier dates only: a match's own odds never reach its features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from time2bet.features.market_ratings import (
    MARKET_RATING_FEATURES,
    implied_difference,
    market_rating_state,
    market_ratings,
    next_match_market_ratings,
)


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


def test_a_fixture_reads_the_state_of_the_played_matches_never_its_own_odds():
    """Serving (the snapshot and the batch predictions) rates an upcoming fixture from the state the played matches
    left (market_rating_state): the same numbers market_ratings gives a match dated after them, whatever the
    fixture's own odds, newcomers to the division included."""
    frame = _league(rounds=8)
    cut = frame["match_date"].max()
    played, upcoming = frame[frame["match_date"] < cut], frame[frame["match_date"] == cut].copy()
    newcomer = upcoming.index[0]
    upcoming.loc[newcomer, "home_team_id"] = "promoted"
    served = next_match_market_ratings(market_rating_state(played), upcoming)
    training = market_ratings(pd.concat([played, upcoming]))
    pd.testing.assert_frame_equal(served, training.loc[upcoming.index])
    assert served.notna().all().all()

    moved = upcoming.copy()   # the fixture's own odds: read by neither rule
    moved[["market_prob_home", "market_prob_draw", "market_prob_away"]] = [0.9, 0.05, 0.05]
    pd.testing.assert_frame_equal(next_match_market_ratings(market_rating_state(played), moved), served)
    pd.testing.assert_frame_equal(market_ratings(pd.concat([played, moved])).loc[upcoming.index], served)

    earlier = played.copy()   # the played matches' odds are what it reads
    last = earlier["match_date"] == earlier["match_date"].max()
    earlier.loc[last, "market_prob_home"] = earlier.loc[last, "market_prob_away"]
    assert not next_match_market_ratings(market_rating_state(earlier), upcoming).equals(served)
