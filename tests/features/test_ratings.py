"""Tests for the sequential ratings: hand-computed values, no leakage, same-day isolation, properties, speed."""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from time2bet.features.ratings import (
    CURRENT_COLUMNS,
    current_ratings,
    division_tier,
    elo_ratings,
    goal_difference_multiplier,
    match_ratings,
    pi_ratings,
)
from time2bet.serving_contract import ELO_COLUMNS, PI_COLUMNS

QUICK = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DAY0 = dt.date(2020, 8, 1)


def frame(rows: list[tuple], *, index=None) -> pd.DataFrame:
    """rows: (day offset, home, away, home goals, away goals[, division]); match ids m000, m001, ..."""
    records = []
    for i, row in enumerate(rows):
        day, home, away, hg, ag, *div = row
        records.append({
            "match_id": f"m{i:03d}",
            "division": div[0] if div else "E0",
            "match_date": pd.Timestamp(DAY0 + dt.timedelta(days=day)),
            "home_team_id": home,
            "away_team_id": away,
            "home_goals": hg,
            "away_goals": ag,
        })
    return pd.DataFrame(records, index=index)


def expect(diff: float) -> float:
    return 1.0 / (1.0 + 10.0 ** (-diff / 400.0))


def g(r: float) -> float:  # pi-rating -> expected goal difference, b=10, c=3
    return math.copysign(10.0 ** (abs(r) / 3.0) - 1.0, r) if r else 0.0


def psi_step(error: float) -> float:  # psi(e) * lambda with c=3, lambda=0.035
    return 3.0 * math.log10(1.0 + abs(error)) * math.copysign(1.0, error) * 0.035 if error else 0.0


TOY = [(0, "A", "B", 3, 0), (7, "B", "C", 1, 1), (14, "C", "A", 0, 2)]


# --- hand-computed ----------------------------------------------------------------------------------------


def test_goal_difference_multiplier():
    assert goal_difference_multiplier(np.array([0, 1, -1, 2, -2, 3, 5, -7])).tolist() == [
        1, 1, 1, 1.5, 1.5, 14 / 8, 16 / 8, 18 / 8
    ]


def test_elo_hand_computed_toy_sequence():
    out = elo_ratings(frame(TOY))
    # m1: A 3-0 B, both new at 1500; home advantage 65; margin 3 -> G = (11 + 3) / 8
    we1 = expect(65.0)
    assert we1 == pytest.approx(0.592466, abs=1e-6)
    d1 = 20 * 1.75 * (1 - we1)
    # m2: B 1-1 C; C is new at 1500; a draw has G = 1
    we2 = expect((1500 - d1) - 1500 + 65)
    d2 = 20 * 1.0 * (0.5 - we2)
    # m3: C 0-2 A; margin 2 -> G = 1.5, home lost -> W = 0
    we3 = expect((1500 - d2) - (1500 + d1) + 65)
    d3 = 20 * 1.5 * (0.0 - we3)

    assert out["home_elo"].tolist() == pytest.approx([1500, 1500 - d1, 1500 - d2])
    assert out["away_elo"].tolist() == pytest.approx([1500, 1500, 1500 + d1])
    assert out["elo_diff"].tolist() == pytest.approx([65, 65 - d1, 65 - d2 - d1])
    assert out["elo_home_expectation"].tolist() == pytest.approx([we1, we2, we3])
    # literal check of the arithmetic: 20 * 1.75 * (1 - 0.592466) = 14.2637
    assert d1 == pytest.approx(14.2637, abs=1e-4)
    assert out.loc[2, "away_elo"] == pytest.approx(1514.2637, abs=1e-4)

    now = current_ratings(frame(TOY)).set_index("team_id")
    assert now.loc["A", "elo"] == pytest.approx(1500 + d1 - d3)
    assert now.loc["B", "elo"] == pytest.approx(1500 - d1 + d2)
    assert now.loc["C", "elo"] == pytest.approx(1500 - d2 + d3)


def test_elo_without_goal_difference_weighting_and_other_parameters():
    out = elo_ratings(frame(TOY), goal_diff_weighting=False, k=30, home_advantage=0, initial=1000)
    d1 = 30 * (1 - 0.5)
    assert out["home_elo"].tolist()[:2] == pytest.approx([1000, 1000 - d1])
    assert out["elo_diff"].iloc[0] == 0.0
    assert out["elo_home_expectation"].iloc[0] == 0.5


def test_pi_hand_computed_toy_sequence():
    out = pi_ratings(frame(TOY))
    # m1: all ratings 0, expected gd 0, observed 3 -> psi = 3 log10(4), step = 0.035 psi
    s1 = 0.035 * 3 * math.log10(4)
    assert s1 == pytest.approx(0.0632163, abs=1e-7)
    a_home, a_away = s1, 0.7 * s1
    b_away, b_home = -s1, -0.7 * s1
    # m2: B (home rating b_home) vs C (away rating 0); observed gd 0
    exp2 = g(b_home) - g(0.0)
    assert exp2 == pytest.approx(-(10 ** (0.7 * s1 / 3) - 1))
    s2 = psi_step(0 - exp2)
    b_home2, b_away2 = b_home + s2, b_away + 0.7 * s2
    c_away, c_home = -s2, -0.7 * s2
    # m3: C (home rating c_home) vs A (away rating a_away); observed gd -2
    exp3 = g(c_home) - g(a_away)
    s3 = psi_step(-2 - exp3)

    expected = pd.DataFrame({
        "home_pi_home": [0.0, b_home, c_home],
        "home_pi_away": [0.0, b_away, c_away],
        "away_pi_home": [0.0, 0.0, a_home],
        "away_pi_away": [0.0, 0.0, a_away],
        "pi_expected_goal_diff": [0.0, exp2, exp3],
    })
    for col in PI_COLUMNS:
        assert out[col].tolist() == pytest.approx(expected[col].tolist(), abs=1e-12), col

    now = current_ratings(frame(TOY)).set_index("team_id")
    assert now.loc["A", ["pi_home", "pi_away"]].tolist() == pytest.approx([a_home - 0.7 * s3, a_away - s3])
    assert now.loc["B", ["pi_home", "pi_away"]].tolist() == pytest.approx([b_home2, b_away2])
    assert now.loc["C", ["pi_home", "pi_away"]].tolist() == pytest.approx([c_home + s3, c_away + 0.7 * s3])


# --- leakage ----------------------------------------------------------------------------------------------

TEAMS = ["a", "b", "c", "d", "e"]
fixture = st.tuples(
    st.integers(0, 6),  # day: few days, so same-day matches are common
    st.sampled_from(TEAMS),
    st.sampled_from(TEAMS),
    st.integers(0, 4),
    st.integers(0, 4),
    st.sampled_from(["E0", "E1", "EC"]),
).filter(lambda f: f[1] != f[2])
fixtures = st.lists(fixture, min_size=1, max_size=14)


def all_ratings(df: pd.DataFrame) -> pd.DataFrame:
    return match_ratings(df)


@QUICK
@given(rows=fixtures, data=st.data())
def test_changing_a_result_changes_nothing_up_to_its_date_and_the_teams_next_match(rows, data):
    i = data.draw(st.integers(0, len(rows) - 1))
    day, home, away, hg, ag, div = rows[i]
    # a different outcome (H/D/A), so both the Elo and the pi update of the match must differ
    changed = (day, home, away, *((ag, hg) if hg != ag else (hg + 1, ag)), div)
    before = all_ratings(frame(rows))
    after = all_ratings(frame(rows[:i] + [changed] + rows[i + 1:]))

    upto = np.array([r[0] <= day for r in rows])
    cols = list(ELO_COLUMNS) + list(PI_COLUMNS)
    pd.testing.assert_frame_equal(before.loc[upto, cols], after.loc[upto, cols], check_exact=True)

    for team in (home, away):
        later = [j for j, r in enumerate(rows) if r[0] > day and team in (r[1], r[2])]
        if not later:
            continue
        j = min(later, key=lambda j: (rows[j][0], f"m{j:03d}"))
        side = "home" if rows[j][1] == team else "away"
        assert before.loc[j, f"{side}_elo"] != after.loc[j, f"{side}_elo"]
        assert before.loc[j, f"{side}_pi_home"] != after.loc[j, f"{side}_pi_home"]
        assert before.loc[j, f"{side}_pi_away"] != after.loc[j, f"{side}_pi_away"]


@QUICK
@given(rows=fixtures)
def test_every_teams_first_date_has_the_initial_ratings(rows):
    df = frame(rows)
    out = all_ratings(df)
    first_division = {}
    order = sorted(range(len(rows)), key=lambda j: (rows[j][0], f"m{j:03d}"))
    first_day = {}
    for j in order:
        for team in rows[j][1:3]:
            if team not in first_day:
                first_day[team] = rows[j][0]
                first_division[team] = rows[j][5]
    start = {"E0": 1500.0, "E1": 1400.0, "EC": 1100.0}
    for j, (day, home, away, *_) in enumerate(rows):
        for side, team in (("home", home), ("away", away)):
            if day == first_day[team]:
                assert out.loc[j, f"{side}_elo"] == start[first_division[team]]
                assert out.loc[j, f"{side}_pi_home"] == 0.0
                assert out.loc[j, f"{side}_pi_away"] == 0.0


def test_same_day_matches_use_the_pre_date_rating():
    # day 0: A beats B. Day 1: A plays twice (vs C and at D), and B plays E: nobody sees another day-1 result.
    rows = [(0, "A", "B", 2, 0), (1, "A", "C", 0, 3), (1, "D", "A", 0, 4), (1, "B", "E", 5, 0), (2, "A", "B", 1, 1)]
    df = frame(rows)
    out = elo_ratings(df)
    pi = pi_ratings(df)
    after_day0 = current_ratings(frame(rows[:1])).set_index("team_id")
    after_day1 = current_ratings(frame(rows[:4])).set_index("team_id")

    assert out.loc[1, "home_elo"] == out.loc[2, "away_elo"] == after_day0.loc["A", "elo"]
    assert out.loc[3, "home_elo"] == after_day0.loc["B", "elo"]
    assert pi.loc[1, "home_pi_home"] == after_day0.loc["A", "pi_home"]
    assert pi.loc[2, "away_pi_away"] == after_day0.loc["A", "pi_away"]
    # both of A's day-1 updates land before day 2
    pre = out.loc[1, "home_elo"]
    loss = 20 * 1.75 * (0 - out.loc[1, "elo_home_expectation"])  # A 0-3 C at home: G = 14/8
    d_home = 20 * (15 / 8) * (0 - out.loc[2, "elo_home_expectation"])  # D 0-4 A: G = 15/8; A gains -d_home
    assert out.loc[4, "home_elo"] == pytest.approx(pre + loss - d_home)
    assert out.loc[4, "home_elo"] == pytest.approx(after_day1.loc["A", "elo"])
    # the matches on the same day are independent of their order in the input
    shuffled = frame([rows[0], rows[3], rows[2], rows[1], rows[4]])
    assert elo_ratings(shuffled)["home_elo"].iloc[4] == out.loc[4, "home_elo"]


def test_order_within_a_date_is_by_match_id_not_input():
    rows = [(0, "A", "B", 2, 0), (0, "C", "D", 1, 1), (1, "A", "C", 0, 0)]
    df = frame(rows)
    reversed_ = df.iloc[::-1]
    pd.testing.assert_frame_equal(elo_ratings(df), elo_ratings(reversed_).loc[df.index], check_exact=True)


# --- properties -------------------------------------------------------------------------------------------


@QUICK
@given(rows=fixtures)
def test_elo_is_zero_sum_and_expectation_in_unit_interval(rows):
    df = frame(rows)
    out = elo_ratings(df)
    assert ((out["elo_home_expectation"] > 0) & (out["elo_home_expectation"] < 1)).all()
    now = current_ratings(df)
    start = {"E0": 1500.0, "E1": 1400.0, "EC": 1100.0}
    first = {}
    for j in sorted(range(len(rows)), key=lambda j: (rows[j][0], f"m{j:03d}")):
        for team in rows[j][1:3]:
            first.setdefault(team, start[rows[j][5]])
    assert now["elo"].sum() == pytest.approx(sum(first.values()), abs=1e-9)


def test_each_match_is_zero_sum():
    rows = [(0, "A", "B", 4, 1), (1, "C", "D", 0, 2)]
    now = current_ratings(frame(rows)).set_index("team_id")
    assert now.loc["A", "elo"] - 1500 == pytest.approx(1500 - now.loc["B", "elo"])
    assert now.loc["C", "elo"] - 1500 == pytest.approx(1500 - now.loc["D", "elo"])
    assert now.loc["A", "elo"] > 1500 and now.loc["D", "elo"] > 1500


def test_extreme_ratings_keep_expectation_inside_unit_interval():
    rows = [(d, "A", "B", 9, 0) for d in range(200)]
    exp = elo_ratings(frame(rows), k=200)["elo_home_expectation"]
    assert ((exp > 0) & (exp < 1)).all()


@QUICK
@given(rows=fixtures, seed=st.integers(0, 2**16))
def test_output_follows_input_row_order_and_is_deterministic(rows, seed):
    df = frame(rows, index=pd.RangeIndex(100, 100 + len(rows)))
    shuffled = df.sample(frac=1, random_state=seed)
    base = match_ratings(df)
    again = match_ratings(df)
    out = match_ratings(shuffled)
    pd.testing.assert_frame_equal(base, again, check_exact=True)
    assert out.index.equals(shuffled.index)
    assert (out["match_id"] == shuffled["match_id"]).all()
    pd.testing.assert_frame_equal(out.loc[df.index], base, check_exact=True)


@QUICK
@given(rows=fixtures, home=st.sampled_from(TEAMS), away=st.sampled_from(TEAMS))
def test_current_ratings_are_the_pre_match_state_of_a_later_match(rows, home, away):
    if home == away:
        away = "z"  # a never-seen team
    now = current_ratings(frame(rows)).set_index("team_id")
    nxt = frame(rows + [(30, home, away, 1, 0, "E0")])
    last = match_ratings(nxt).iloc[-1]
    for side, team in (("home", home), ("away", away)):
        if team not in now.index:
            assert last[f"{side}_elo"] == 1500.0 and last[f"{side}_pi_home"] == 0.0
            continue
        assert last[f"{side}_elo"] == now.loc[team, "elo"]
        assert last[f"{side}_pi_home"] == now.loc[team, "pi_home"]
        assert last[f"{side}_pi_away"] == now.loc[team, "pi_away"]
        played = [r for r in rows if team in (r[1], r[2])]
        assert now.loc[team, "matches"] == len(played)
        assert now.loc[team, "last_match_date"] == pd.Timestamp(DAY0 + dt.timedelta(days=max(r[0] for r in played)))


def test_current_ratings_columns():
    now = current_ratings(frame(TOY))
    assert tuple(now.columns) == CURRENT_COLUMNS
    assert now["team_id"].tolist() == ["A", "B", "C"]
    assert now["matches"].tolist() == [2, 2, 2]


# --- tiers, new teams, season regression --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("division", "tier"),
    [("E0", 1), ("E1", 2), ("E2", 3), ("E3", 4), ("EC", 5), ("SC0", 1), ("SC3", 4), ("D1", 1), ("D2", 2),
     ("SP1", 1), ("SP2", 2), ("I2", 2), ("F2", 2), ("N1", 1), ("B1", 1), ("P1", 1), ("T1", 1), ("G1", 1),
     ("XYZ", 1)],
)
def test_division_tier(division, tier):
    assert division_tier(division) == tier


def test_team_first_seen_in_a_lower_division_starts_lower_and_keeps_its_rating_when_promoted():
    rows = [
        (0, "top", "top2", 0, 0, "E0"),
        (0, "low", "low2", 3, 0, "E1"),
        (0, "scot", "scot2", 0, 0, "SC1"),
        (200, "low", "top", 1, 1, "E0"),  # promoted: keeps the rating it earned in E1
    ]
    out = elo_ratings(frame(rows))
    assert out.loc[0, ["home_elo", "away_elo"]].tolist() == [1500, 1500]
    assert out.loc[1, ["home_elo", "away_elo"]].tolist() == [1400, 1400]
    assert out.loc[2, ["home_elo", "away_elo"]].tolist() == [1400, 1400]
    gain = 20 * 1.75 * (1 - expect(65))
    assert out.loc[3, "home_elo"] == pytest.approx(1400 + gain)
    assert out.loc[3, "away_elo"] == pytest.approx(1500 + 20 * (0.5 - expect(65)))

    assert elo_ratings(frame(rows), tier_offset=50).loc[1, "home_elo"] == 1450
    assert elo_ratings(frame(rows), new_team_rating=1000).loc[1, "home_elo"] == 1000
    assert elo_ratings(frame(rows), new_team_rating={"E1": 1234}).loc[[0, 1], "home_elo"].tolist() == [1500, 1234]
    assert elo_ratings(frame(rows), new_team_rating=lambda d: 7.0).loc[2, "home_elo"] == 7.0


def test_season_regression_pulls_toward_the_division_start_at_a_new_season():
    rows = [(0, "A", "B", 3, 0, "E0"), (5, "A", "C", 0, 0, "E0"), (400, "A", "B", 0, 0, "E0"),
            (401, "C", "A", 0, 0, "E0")]
    plain = elo_ratings(frame(rows))
    half = elo_ratings(frame(rows), season_regression=0.5)
    pd.testing.assert_frame_equal(plain.iloc[:2], half.iloc[:2])
    a, b = plain.loc[2, "home_elo"], plain.loc[2, "away_elo"]
    assert half.loc[2, "home_elo"] == pytest.approx(1500 + 0.5 * (a - 1500))
    assert half.loc[2, "away_elo"] == pytest.approx(1500 + 0.5 * (b - 1500))
    # only once per season: A's second match of the new season is not pulled again
    drift = 20 * (0.5 - half.loc[2, "elo_home_expectation"])
    assert half.loc[3, "away_elo"] == pytest.approx(half.loc[2, "home_elo"] + drift)
    # a season column, when present, decides the seasons (here: all one season, so no pull)
    one_season = frame(rows).assign(season="2020-21")
    pd.testing.assert_frame_equal(elo_ratings(one_season, season_regression=0.5), plain)


def test_a_team_entering_a_division_starts_from_the_leavers_rating_plus_the_offset():
    # season 1 (2020-21): A, B, C in E0; season 2: A and N (new), B and C gone; season 3: B is back
    rows = [(0, "A", "B", 3, 0), (7, "B", "C", 2, 0), (14, "C", "A", 0, 1),
            (400, "A", "N", 1, 1), (407, "N", "A", 0, 2),
            (770, "A", "B", 1, 0), (777, "B", "N", 0, 0)]
    df = frame(rows)
    plain = elo_ratings(df)
    end_of_season_1 = current_ratings(df.iloc[:3]).set_index("team_id")["elo"]
    out = elo_ratings(df, entry_from_leavers=True, entry_offset=40)
    pd.testing.assert_frame_equal(out.iloc[:3], plain.iloc[:3])  # the first season is untouched
    assert out.loc[3, "home_elo"] == plain.loc[3, "home_elo"]  # A stayed up
    assert out.loc[3, "away_elo"] == pytest.approx((end_of_season_1["B"] + end_of_season_1["C"]) / 2 + 40)
    # season 3: B enters again, but nobody left after season 2, so B keeps its (stale) rating
    end_of_season_2 = current_ratings(df.iloc[:5], entry_from_leavers=True, entry_offset=40).set_index("team_id")["elo"]
    assert out.loc[5, "away_elo"] == pytest.approx(end_of_season_2["B"])


def test_a_promoted_team_keeps_its_standing_among_the_teams_promoted_with_it():
    # season 1: E0 = {A, B, C, D}, E1 = {P, Q, R, S}; season 2: C and D swap with P and Q
    s1 = [(0, "A", "C", 2, 0), (0, "B", "D", 1, 0), (7, "C", "D", 0, 0), (7, "A", "B", 1, 1),
          (0, "P", "R", 3, 0, "E1"), (0, "Q", "S", 0, 0, "E1"), (7, "P", "Q", 1, 0, "E1"), (7, "R", "S", 0, 1, "E1")]
    s2 = [(400, "A", "P", 0, 0), (400, "B", "Q", 0, 0), (400, "C", "R", 0, 0, "E1"), (400, "D", "S", 0, 0, "E1")]
    df = frame(s1 + s2)
    end = current_ratings(frame(s1)).set_index("team_id")["elo"]
    out = elo_ratings(df, entry_from_leavers=True, entry_offset=10).set_index("match_id")
    top_target = (end["C"] + end["D"]) / 2 + 10  # E0's leavers
    promoted = (end["P"] + end["Q"]) / 2
    assert out.loc["m008", "away_elo"] == pytest.approx(top_target + end["P"] - promoted)
    assert out.loc["m009", "away_elo"] == pytest.approx(top_target + end["Q"] - promoted)
    low_target = (end["P"] + end["Q"]) / 2 + 10  # E1's leavers, relegated sides keep their order
    assert out.loc["m010", "home_elo"] == pytest.approx(low_target + end["C"] - (end["C"] + end["D"]) / 2)
    assert out.loc["m011", "away_elo"] == end["S"]  # stayed in E1
    off = elo_ratings(df, entry_from_leavers=True, entry_offset=10, entry_keep_movers=False).set_index("match_id")
    assert off.loc["m008", "away_elo"] == pytest.approx(top_target) == off.loc["m009", "away_elo"]


seasons_fixture = st.tuples(
    st.sampled_from([0, 1, 2, 370, 371, 372, 740, 741, 1100]),  # days in four seasons
    st.sampled_from(TEAMS + ["f", "g"]),
    st.sampled_from(TEAMS + ["f", "g"]),
    st.integers(0, 4),
    st.integers(0, 4),
    st.sampled_from(["E0", "E1"]),
).filter(lambda f: f[1] != f[2])


@QUICK
@given(rows=st.lists(seasons_fixture, min_size=1, max_size=20), data=st.data())
def test_entry_rule_changing_a_result_changes_nothing_up_to_its_date(rows, data):
    i = data.draw(st.integers(0, len(rows) - 1))
    day, home, away, hg, ag, div = rows[i]
    changed = (day, home, away, *((ag, hg) if hg != ag else (hg + 1, ag)), div)
    params = dict(entry_from_leavers=True, entry_offset=150.0, season_regression=0.2)
    before = match_ratings(frame(rows), **params)
    after = match_ratings(frame(rows[:i] + [changed] + rows[i + 1:]), **params)
    upto = np.array([r[0] <= day for r in rows])
    cols = list(ELO_COLUMNS) + list(PI_COLUMNS)
    pd.testing.assert_frame_equal(before.loc[upto, cols], after.loc[upto, cols], check_exact=True)


# --- inputs -------------------------------------------------------------------------------------------------


def test_accepts_date_objects_and_empty_input():
    df = frame(TOY)
    as_dates = df.assign(match_date=df["match_date"].dt.date)
    pd.testing.assert_frame_equal(match_ratings(as_dates), match_ratings(df))
    empty = elo_ratings(df.iloc[:0])
    assert list(empty.columns) == ["match_id", *ELO_COLUMNS] and empty.empty
    assert current_ratings(df.iloc[:0]).empty


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="lack"):
        elo_ratings(frame(TOY).drop(columns="division"))
    with pytest.raises(ValueError, match="played"):
        pi_ratings(frame(TOY).assign(home_goals=[1, None, 2]))
    with pytest.raises(TypeError, match="unknown"):
        current_ratings(frame(TOY), kk=3)


# --- speed ----------------------------------------------------------------------------------------------


def test_timing_smoke_50k_synthetic_matches():
    rng = np.random.default_rng(0)
    n, n_teams = 50_000, 400
    home = rng.integers(0, n_teams, n)
    away = (home + rng.integers(1, n_teams, n)) % n_teams
    df = pd.DataFrame({
        "match_id": [f"m{i:06d}" for i in range(n)],
        "division": rng.choice(["E0", "E1", "E2", "D1"], n),
        "match_date": pd.Timestamp("2000-08-01") + pd.to_timedelta(np.sort(rng.integers(0, 7000, n)), unit="D"),
        "home_team_id": [f"t{t}" for t in home],
        "away_team_id": [f"t{t}" for t in away],
        "home_goals": rng.poisson(1.5, n),
        "away_goals": rng.poisson(1.1, n),
    })
    t = time.perf_counter()
    elo = elo_ratings(df)
    t_elo = time.perf_counter() - t
    t = time.perf_counter()
    pi = pi_ratings(df)
    t_pi = time.perf_counter() - t
    print(f"\n50k synthetic matches: elo {t_elo:.3f} s, pi {t_pi:.3f} s")
    assert len(elo) == len(pi) == n
