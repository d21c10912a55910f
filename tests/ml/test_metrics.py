"""Scores and de-margining against values worked out by hand or published elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from time2bet.ml.metrics import (
    METRICS,
    accuracy,
    brier,
    demargin,
    encode_outcomes,
    evaluate,
    expected_calibration_error,
    log_loss,
    rps,
)

# Four matches: home win, draw, away win, home win.
Y = np.array([0, 1, 2, 0])
P = np.array([
    [0.5, 0.3, 0.2],
    [0.2, 0.5, 0.3],
    [0.1, 0.3, 0.6],
    [0.3, 0.3, 0.4],
])


def test_encode_outcomes_orders_home_draw_away():
    assert encode_outcomes(["H", "D", "A", "H"]).tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="unknown match result"):
        encode_outcomes(["H", "X"])


def test_log_loss_by_hand():
    # -(ln .5 + ln .5 + ln .6 + ln .3) / 4 = (0.6931472 + 0.6931472 + 0.5108256 + 1.2039728) / 4 = 3.1010928 / 4
    assert log_loss(Y, P) == pytest.approx(0.7752732, abs=1e-7)
    assert np.isfinite(log_loss([0], [[0.0, 0.5, 0.5]]))  # clipped, not inf


def test_rps_by_hand_and_ordering():
    # per match (sum over k<3 of (cum p - cum o)^2) / 2:
    # H: (.5-1)^2+(.8-1)^2 = .29 -> .145;  D: (.2-0)^2+(.7-1)^2 = .13 -> .065
    # A: (.1)^2+(.4)^2 = .17 -> .085;      H: (.3-1)^2+(.6-1)^2 = .65 -> .325;   mean .62 / 4 = .155
    assert rps(Y, P) == pytest.approx(0.155)
    # Constantinou & Fenton (2012): a home win forecast (0.9, 0.1, 0) scores 0.005
    assert rps([0], [[0.9, 0.1, 0.0]]) == pytest.approx(0.005)
    # the ordering matters: after a home win, mass on the draw is less wrong than mass on the away win,
    # which the Brier score cannot tell apart
    near, far = [[0.5, 0.5, 0.0]], [[0.5, 0.0, 0.5]]
    assert rps([0], near) < rps([0], far)
    assert brier([0], near) == brier([0], far)


def test_brier_and_accuracy_by_hand():
    # .25+.09+.04 = .38; .04+.25+.09 = .38; .01+.09+.16 = .26; .49+.09+.16 = .74; mean 1.76 / 4
    assert brier(Y, P) == pytest.approx(0.44)
    assert accuracy(Y, P) == 0.75  # the last match's favourite (away, .4) lost


def test_expected_calibration_error_by_hand():
    # Two bins, [0, .5) and [.5, 1]:
    # home  p .5 .2 .1 .3, o 1 0 0 1: low bin mean .2 vs 1/3 (3 matches), high .5 vs 1 (1) -> .1 + .125 = .225
    # draw  p .3 .5 .3 .3, o 0 1 0 0: low .3 vs 0 (3), high .5 vs 1 (1)                  -> .225 + .125 = .35
    # away  p .2 .3 .6 .4, o 0 0 1 0: low .3 vs 0 (3), high .6 vs 1 (1)                  -> .225 + .1 = .325
    calibration = expected_calibration_error(Y, P, n_bins=2)
    np.testing.assert_allclose(calibration.per_class, [0.225, 0.35, 0.325])
    assert calibration.ece == pytest.approx(0.3)
    assert calibration.counts.tolist() == [[3, 1], [3, 1], [3, 1]]
    np.testing.assert_allclose(calibration.observed[0], [1 / 3, 1.0])
    np.testing.assert_allclose(calibration.mean_predicted[2], [0.3, 0.6])


def test_expected_calibration_error_is_zero_for_the_frequencies_and_reports_empty_bins():
    y = np.array([0, 0, 1, 2])  # frequencies .5 / .25 / .25
    calibration = expected_calibration_error(y, np.tile([0.5, 0.25, 0.25], (4, 1)))
    assert calibration.ece == 0.0
    assert calibration.counts[0].tolist() == [0, 0, 0, 0, 0, 4, 0, 0, 0, 0]
    assert np.isnan(calibration.observed[0, 0])


def test_evaluate_returns_every_metric():
    scores = evaluate(Y, P)
    assert tuple(scores) == METRICS
    assert scores["rps"] == pytest.approx(0.155)


def test_scores_reject_malformed_input():
    with pytest.raises(ValueError):
        log_loss([0, 1], P)
    with pytest.raises(ValueError):
        rps([3], [[0.2, 0.3, 0.5]])


def test_proportional_demargin_sums_to_one():
    odds = np.array([[2.1, 3.4, 3.6], [1.25, 6.0, 11.0], [2.0, 4.0, 4.0]])
    p = demargin(odds[:, 0], odds[:, 1], odds[:, 2])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[2], [0.5, 0.25, 0.25])  # no margin: unchanged
    inverse = 1 / odds[0]
    np.testing.assert_allclose(p[0], inverse / inverse.sum())


def test_shin_matches_published_values():
    # Published outputs of two independent implementations of Shin's method (Jullien & Salanie's
    # fixed point as described by Strumbelj 2014):
    # - the `shin` package (github.com/mberk/shin, README and tests/test_shin.py):
    #   odds [2.6, 2.4, 4.3] -> [0.37299406033208965, 0.4047794109200184, 0.2222265287474275], z = 0.01694
    # - penaltyblog (docs/implied/implied.ipynb, Shin on American odds +170/+130/+340 = decimal 2.7/2.3/4.4):
    #   -> [0.35934391959159157, 0.42324384818283234, 0.21741223222458853], z = 0.0162
    p = demargin([2.6, 2.7], [2.4, 2.3], [4.3, 4.4], method="shin")
    np.testing.assert_allclose(p[0], [0.37299406033208965, 0.4047794109200184, 0.2222265287474275], atol=1e-9)
    np.testing.assert_allclose(p[1], [0.35934391959159157, 0.42324384818283234, 0.21741223222458853], atol=1e-9)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_shin_moves_margin_onto_the_longshot():
    shin = demargin(1.25, 6.0, 11.0, method="shin")[0]
    proportional = demargin(1.25, 6.0, 11.0)[0]
    assert shin[0] > proportional[0] and shin[2] < proportional[2]


def test_demargin_edge_rows():
    p = demargin([np.nan, 2.1, 2.0], [3.4, 3.4, 4.2], [3.6, 3.6, 4.2], method="shin")
    assert np.isnan(p[0]).all()  # no odds, no probabilities
    np.testing.assert_allclose(p[2], demargin(2.0, 4.2, 4.2)[0])  # booksum < 1: proportional
    with pytest.raises(ValueError):
        demargin(1.0, 3.0, 3.0)
    with pytest.raises(ValueError):
        demargin(2.0, 3.0, 3.0, method="power")


def test_calibrated_ece_noise_floor_shrinks_with_more_matches_and_is_reproducible():
    from time2bet.ml.metrics import calibrated_ece_quantile

    rng = np.random.default_rng(1)
    p = rng.dirichlet([4, 3, 3], size=2000)
    small, large = calibrated_ece_quantile(p[:200]), calibrated_ece_quantile(p)
    assert 0 < large < small < 0.2
    assert calibrated_ece_quantile(p[:200]) == small
