"""Markets from a score matrix against closed forms, Asian-handicap settlement, the market's own prices and the
over/under recalibration map."""

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
    recalibrated = markets.evaluate_markets(frame.assign(goals_p_over_2_5_recalibrated=0.5))
    assert recalibrated["ou_gap"] == pytest.approx(worse["ou_gap"])  # the recalibrated column is the one scored
    assert recalibrated["ou_raw_gap"] == pytest.approx(0.0)


def _over_confident(n: int, seed: int, intercept: float = 0.15, slope: float = 0.6):
    """Model P(over) spread too widely: the truth is its Platt map with ``slope`` < 1."""
    rng = np.random.default_rng(seed)
    p_model = rng.uniform(0.25, 0.8, n)
    truth = markets.OverUnderRecalibration(intercept, slope)(p_model)
    return p_model, (rng.random(n) < truth).astype(float)


def test_over_under_recalibration_recovers_the_map_and_refuses_bad_input():
    p, over = _over_confident(20_000, seed=3)
    fitted = markets.fit_over_under_recalibration(p, over)
    assert fitted.slope == pytest.approx(0.6, abs=0.08) and fitted.intercept == pytest.approx(0.15, abs=0.06)
    assert markets.binary_log_losses(over, fitted(p)).mean() < markets.binary_log_losses(over, p).mean()
    assert markets.OverUnderRecalibration()(p) == pytest.approx(p)  # the default is the identity
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        markets.fit_over_under_recalibration(np.r_[p[:10], np.nan], np.r_[over[:10], 1.0])
    with pytest.raises(ValueError, match="both present"):
        markets.fit_over_under_recalibration(p[:10], np.ones(10))


def test_walk_forward_over_under_reads_only_earlier_seasons():
    p, over = _over_confident(6 * 800, seed=4)
    season = pd.Series(np.repeat([f"20{10 + k}-{11 + k}" for k in range(6)], 800))
    p, over = pd.Series(p), pd.Series(over)
    out = markets.walk_forward_over_under(p, over, season, seasons=2)
    first = season == "2010-11"
    assert out[first].to_numpy() == pytest.approx(p[first].to_numpy())  # no earlier season: the model's own
    assert not np.allclose(out[~first], p[~first])
    # change the outcomes of one season: it and the earlier ones stay, the next two move, the one after not
    flipped = over.where(season != "2012-13", 1 - over)
    after = markets.walk_forward_over_under(p, flipped, season, seasons=2)
    same = season <= "2012-13"
    assert after[same].to_numpy() == pytest.approx(out[same].to_numpy())
    assert not np.allclose(after[season == "2013-14"], out[season == "2013-14"])
    assert not np.allclose(after[season == "2014-15"], out[season == "2014-15"])
    assert after[season == "2015-16"].to_numpy() == pytest.approx(out[season == "2015-16"].to_numpy())
    assert np.isnan(markets.walk_forward_over_under(p.where(~first), over, season)[first]).all()
