"""Markets from a score matrix against closed forms, Asian-handicap settlement and the market's own prices."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from time2bet.ml import markets
from time2bet.ml.goals import score_matrix

LAM, MU = np.array([1.6, 0.9]), np.array([1.1, 1.3])


def test_independent_poisson_closed_forms():
    m = score_matrix(LAM, MU, 0.0, max_goals=20)
    s = LAM + MU
    assert markets.over_under(m, 2.5) == pytest.approx(1 - np.exp(-s) * (1 + s + s ** 2 / 2), abs=1e-9)
    assert markets.both_teams_to_score(m) == pytest.approx((1 - np.exp(-LAM)) * (1 - np.exp(-MU)), abs=1e-9)
    assert markets.expected_goals(m) == pytest.approx(np.column_stack([LAM, MU]), abs=1e-6)
    assert markets.one_x_two(m).sum(axis=1) == pytest.approx(1.0)


def test_asian_handicap_lines():
    m = score_matrix(LAM, MU, -0.1)
    hda = markets.one_x_two(m)
    assert markets.asian_handicap(m, -0.5)[:, 0] == pytest.approx(hda[:, 0])  # home must win
    level = markets.asian_handicap(m, 0.0)
    assert level == pytest.approx(np.column_stack([hda[:, 0], hda[:, 1], hda[:, 2]]))  # draw no bet
    quarter = markets.asian_handicap(m, -0.25)  # half on 0, half on -0.5
    assert quarter == pytest.approx(0.5 * markets.asian_handicap(m, 0.0) + 0.5 * markets.asian_handicap(m, -0.5))
    assert markets.asian_handicap(m, np.array([-1.0, 1.5])).sum(axis=1) == pytest.approx(1.0)


def test_settle_asian_handicap():
    home, away = np.array([2, 1, 1, 0, 3]), np.array([1, 1, 1, 0, 1])
    line = np.array([-1.0, -0.25, 0.25, -0.5, -1.75])
    # 2-1 at -1: push; 1-1 at -0.25: half lost; at +0.25: half won; 0-0 at -0.5: lost; 3-1 at -1.75: half won
    assert markets.settle_asian_handicap(home, away, line) == pytest.approx([0.0, -0.5, 0.5, -1.0, 0.5])


def test_most_likely_scores():
    top = markets.most_likely_scores(score_matrix([0.3], [0.2], 0.0), k=2)[0]
    assert [(h, a) for h, a, _ in top] == [(0, 0), (1, 0)]


def test_market_prices_follow_the_preference_order():
    raw = pd.DataFrame({
        "odds_pinnacle_close_over_2_5": [np.nan, 1.9], "odds_pinnacle_close_under_2_5": [np.nan, 2.0],
        "odds_b365_over_2_5": [2.0, 1.5], "odds_b365_under_2_5": [1.8, 2.6],
    })
    ou = markets.market_over_under(raw)
    assert list(ou["market_over_under_source"]) == ["b365", "pinnacle_close"]
    assert ou["market_p_over_2_5"].iloc[1] == pytest.approx((1 / 1.9) / (1 / 1.9 + 1 / 2.0))
    extra = pd.Series([json.dumps({"BbAHh": "-0.75", "BbAvAHH": "1.95", "BbAvAHA": "1.9"}),
                       json.dumps({"AHh": "0.25", "PAHH": "2.0", "PAHA": "1.9", "B365AHH": "1.5", "B365AHA": "2.5"}),
                       None])
    ah = markets.market_asian_handicap(extra)
    assert list(ah["ah_line"].iloc[:2]) == [-0.75, 0.25]
    assert list(ah["market_ah_source"]) == ["bb_avg", "pinnacle", None]
    assert np.isnan(ah["market_p_ah_home"].iloc[2])


def test_evaluate_markets_scores_over_under_and_asian_handicap_against_the_market():
    lam, mu, rho = np.array([1.5, 1.2, 2.0, 1.0, 1.4]), np.array([1.0, 1.3, 0.6, 1.1, 1.2]), np.full(5, -0.1)
    m = score_matrix(lam, mu, rho)
    p_over = markets.over_under(m)
    lines = np.array([-0.5, 0.0, -1.0, -0.25, np.nan])
    ah = markets.asian_handicap(m, np.nan_to_num(lines))
    frame = pd.DataFrame({
        "home_goals": [2, 1, 2, 0, 3], "away_goals": [0, 0, 1, 0, 3],
        "goals_exp_home": lam, "goals_exp_away": mu, "goals_rho": rho, "goals_p_over_2_5": p_over,
        "market_p_over_2_5": p_over, "ah_line": lines, "market_p_ah_home": ah[:, 0] / (ah[:, 0] + ah[:, 2]),
    })
    out = markets.evaluate_markets(frame)
    assert out["ou_n"] == 5 and out["ou_gap"] == pytest.approx(0.0)
    # -0.5 (won) and 0.0 (won) count; -1.0 is a push after 2-1, -0.25 a quarter line, the last has no line
    assert out["ah_n"] == 2 and out["ah_gap"] == pytest.approx(0.0)
    assert out["ah_model_log_loss"] == pytest.approx(-np.mean(np.log(ah[:2, 0] / (ah[:2, 0] + ah[:2, 2]))))
    worse = markets.evaluate_markets(frame.assign(goals_p_over_2_5=0.5))
    assert worse["ou_gap"] > 0
