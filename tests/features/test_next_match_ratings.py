"""Upcoming matches are rated by the rules played ones get: the same rating run rates fixtures
(``rating_tables``), and :class:`NextMatchRatings` rates any other next match (the service's arbitrary pairs)
to the bit as that run would, season starts included (entry rule, season regression)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from time2bet.features.ratings import (
    RATING_PARAMS,
    NextMatchRatings,
    current_ratings,
    match_ratings,
    rating_tables,
)
from time2bet.football import season_of

RATING_COLUMNS = ["match_id", "home_elo", "away_elo", "elo_diff", "elo_home_expectation", "home_pi_home",
                  "home_pi_away", "away_pi_home", "away_pi_away", "pi_expected_goal_diff"]


def league(seed: int = 3, seasons: int = 3, size: int = 6) -> tuple[pd.DataFrame, dict]:
    """Two tiers (E0, E1) over ``seasons`` seasons from 2018-19: each season every team of a tier meets every
    other at home (dates spread over Aug-May); the bottom two of E0 and the top two of E1 swap each summer, one
    E1 side drops out and a new club replaces it. Returns the matches and each season's divisions."""
    rng = np.random.default_rng(seed)
    tiers = {"E0": [f"a{i}" for i in range(size)], "E1": [f"b{i}" for i in range(size)]}
    rows, composition = [], {}
    for s in range(seasons):
        year = 2018 + s
        label = season_of(dt.date(year, 8, 1))
        composition[label] = {d: list(t) for d, t in tiers.items()}
        points = {t: 0 for d in tiers for t in tiers[d]}
        for division, teams in tiers.items():
            pairs = [(h, a) for h in teams for a in teams if h != a]
            rng.shuffle(pairs)
            for k, (h, a) in enumerate(pairs):
                day = dt.date(year, 8, 10) + dt.timedelta(days=7 * (k // (len(teams) // 2)))
                hg, ag = int(rng.poisson(1.5)), int(rng.poisson(1.1))
                rows.append((division, label, day, h, a, hg, ag))
                points[h] += 3 if hg > ag else 1 if hg == ag else 0
                points[a] += 3 if ag > hg else 1 if hg == ag else 0
        top = sorted(tiers["E0"], key=lambda t: (points[t], t))
        low = sorted(tiers["E1"], key=lambda t: (-points[t], t))
        down, up = top[:2], low[:2]
        stay_low = [t for t in tiers["E1"] if t not in up]
        stay_low.remove(stay_low[-1])   # drops out of the data
        tiers = {"E0": [t for t in tiers["E0"] if t not in down] + up,
                 "E1": stay_low + down + [f"new{s + 1}"]}
    composition[season_of(dt.date(2018 + seasons, 8, 1))] = tiers
    frame = pd.DataFrame(rows, columns=["division", "season", "match_date", "home_team_id", "away_team_id",
                                        "home_goals", "away_goals"])
    frame["match_date"] = pd.to_datetime(frame["match_date"])
    frame.insert(0, "match_id", [f"m{i:05d}" for i in range(len(frame))])
    return frame, composition


def fixtures_of(rows: list[tuple]) -> pd.DataFrame:
    """rows: (match_id, division, date, home, away)."""
    frame = pd.DataFrame(rows, columns=["match_id", "division", "match_date", "home_team_id", "away_team_id"])
    frame["match_date"] = pd.to_datetime(frame["match_date"])
    frame["season"] = [season_of(d.date()) for d in frame["match_date"]]
    return frame


def test_without_fixtures_the_tables_are_the_played_ones():
    matches, _ = league()
    tables = rating_tables(matches, fixtures_of([]), **RATING_PARAMS)
    pd.testing.assert_frame_equal(tables["ratings.match_ratings"], match_ratings(matches, **RATING_PARAMS))
    pd.testing.assert_frame_equal(tables["ratings.team_state"], current_ratings(matches, **RATING_PARAMS))
    assert len(tables["ratings.fixture_ratings"]) == 0


def test_a_promoted_teams_first_fixture_is_rated_as_training_rates_it_once_played():
    """The season-start parity the service depends on: fixture of a new season with a promoted team, played,
    rebuilt from scratch: training's pre-match ratings of that match equal the fixture's, to the bit."""
    matches, composition = league()
    new_season = max(composition)
    promoted = composition[new_season]["E0"][-1]                   # came up from E1 this summer
    opponent = composition[new_season]["E0"][0]
    first_day = dt.date(int(new_season[:4]), 8, 9)
    rows = [("f0", "E0", first_day, promoted, opponent)]
    others = [t for t in composition[new_season]["E0"] if t not in (promoted, opponent)]
    rows += [(f"f{i + 1}", "E0", first_day, h, a) for i, (h, a) in enumerate(zip(others[::2], others[1::2]))]
    rows += [("e0", "E1", first_day, *composition[new_season]["E1"][:2])]
    fixtures = fixtures_of(rows)
    before = rating_tables(matches, fixtures, **RATING_PARAMS)
    served = before["ratings.fixture_ratings"].set_index("match_id").loc["f0"]

    # without the season rules the promoted side would keep its E1 rating: the test would see that
    state = before["ratings.team_state"].set_index("team_id")
    assert served["home_elo"] != state.loc[promoted, "elo"]

    played = pd.concat([matches, fixtures.iloc[:1].assign(home_goals=2, away_goals=1)], ignore_index=True)
    after = rating_tables(played, fixtures.iloc[1:], **RATING_PARAMS)
    trained = after["ratings.match_ratings"].set_index("match_id").loc["f0"]
    pd.testing.assert_series_equal(trained[RATING_COLUMNS[1:]], served[RATING_COLUMNS[1:]], check_names=False)
    # and the closed form the service uses gives the same
    upcoming = NextMatchRatings(before["ratings.team_state"], before["ratings.season_entry"], **RATING_PARAMS)
    pd.testing.assert_frame_equal(upcoming.frame(fixtures).reset_index(drop=True)[RATING_COLUMNS],
                                  before["ratings.fixture_ratings"].reset_index(drop=True)[RATING_COLUMNS])


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_any_next_match_is_rated_as_the_rating_run_would_rate_it(seed):
    """Random requests (a pair, a division, a date in the current season, the next or the one after), with and
    without a partial fixture list: NextMatchRatings equals the run over matches + fixtures + that request."""
    matches, composition = league(seed=seed)
    rng = np.random.default_rng(seed)
    new_season = max(composition)
    year = int(new_season[:4])
    fixture_lists = [[], [("x0", "E0", dt.date(year, 8, 9), *composition[new_season]["E0"][:2]),
                          ("x1", "E1", dt.date(year, 8, 9), *composition[new_season]["E1"][-2:])]]
    teams = sorted(set(matches["home_team_id"]) | {t for d in composition[new_season].values() for t in d})
    checked = 0
    for fixture_rows in fixture_lists:
        fixtures = fixtures_of(fixture_rows)
        tables = rating_tables(matches, fixtures, **RATING_PARAMS)
        upcoming = NextMatchRatings(tables["ratings.team_state"], tables["ratings.season_entry"], **RATING_PARAMS)
        in_list = {t: d for _, d, _, h, a in fixture_rows for t in (h, a)}
        sides = pd.concat([matches[["home_team_id", "match_date"]].set_axis(["team", "date"], axis=1),
                           matches[["away_team_id", "match_date"]].set_axis(["team", "date"], axis=1)])
        latest = sides.groupby("team")["date"].max()   # a next match is after each team's latest
        for _ in range(40):
            home, away = rng.choice(teams, size=2, replace=False)
            division = in_list.get(home) or in_list.get(away) or str(rng.choice(["E0", "E1"]))
            if in_list.get(away, division) != division or in_list.get(home, division) != division:
                continue   # a team asked about in another division than its listed fixture: not a next match
            after = max(latest.get(home, pd.Timestamp("2000-01-01")), latest.get(away, pd.Timestamp("2000-01-01")))
            date = (after + pd.Timedelta(days=int(rng.integers(1, 800)))).date()
            season = season_of(date)
            if season < matches["season"].max():
                continue   # a season before the latest played one: only the regression applies (documented)
            in_season = set(matches.loc[matches["season"] == season, ["home_team_id", "away_team_id"]].stack())
            if in_season and {home, away} - in_season and {home, away} & in_season:
                continue   # a team joining a season under way changes that season's played ratings: see the class
            request = fixtures_of([("req", division, date, home, away)])
            want = rating_tables(matches, pd.concat([fixtures, request], ignore_index=True), **RATING_PARAMS)[
                "ratings.fixture_ratings"].set_index("match_id").loc["req"]
            got = upcoming.frame(request).set_index("match_id").loc["req"]
            pd.testing.assert_series_equal(got[RATING_COLUMNS[1:]], want[RATING_COLUMNS[1:]], check_names=False,
                                           obj=f"{home} v {away} ({division}, {date})")
            checked += 1
    assert checked >= 40
