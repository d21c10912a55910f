"""The promotion gate's evidence: a paired bootstrap of per-match log-loss differences that resamples matchdays.

Per-match differences are built exactly: against a uniform champion (log-loss ln 3 on every match), a challenger
that gives the observed outcome probability exp(-(ln 3 + d)) has a per-match difference of exactly d.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pytest

from time2bet.ml.bootstrap import MATCHDAY, N_RESAMPLES, SEED, paired_block_bootstrap
from time2bet.ml.promotion_gate import log_loss_interval

TOLERANCE = 0.002  # the gate's default


def _season(days: int, per_day: int, seed: int = 0):
    """(y, dates) of ``days`` matchdays of ``per_day`` matches each, a week apart."""
    rng = np.random.default_rng(seed)
    dates = np.repeat([dt.date(2023, 8, 5) + dt.timedelta(days=7 * d) for d in range(days)], per_day)
    return rng.integers(0, 3, days * per_day), dates


def _pair(y: np.ndarray, differences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(challenger p, uniform champion p) whose per-match log-loss differences are ``differences``."""
    champion = np.full((len(y), 3), 1 / 3)
    observed = np.exp(-(np.log(3) + differences))
    challenger = np.repeat(((1 - observed) / 2)[:, None], 3, axis=1)
    challenger[np.arange(len(y)), y] = observed
    return challenger, champion


def test_a_clearly_better_challenger_has_an_interval_below_zero():
    y, dates = _season(38, 10)
    d = np.random.default_rng(1).normal(-0.03, 0.05, len(y))
    ci = log_loss_interval(y, *_pair(y, d), dates)
    assert ci.hi < 0 < TOLERANCE and ci.lo < ci.estimate < ci.hi
    assert ci.estimate == pytest.approx(d.mean(), abs=1e-12)
    assert (ci.n_resamples, ci.seed, ci.block, ci.n_blocks, ci.n, ci.level) == (N_RESAMPLES, SEED, MATCHDAY, 38,
                                                                                380, 0.95)


def test_identical_predictions_give_the_interval_zero_zero():
    y, dates = _season(20, 9)
    p = np.random.default_rng(2).dirichlet([2, 1.5, 2], len(y))
    ci = log_loss_interval(y, p, p.copy(), dates)
    assert (ci.estimate, ci.lo, ci.hi) == (0.0, 0.0, 0.0)


def test_a_noisy_tiny_gain_straddles_zero_and_misses_the_tolerance():
    """Better on the point estimate, but on 180 matches the noise dwarfs it: the gate's rule (upper bound below the
    tolerance) refuses what the old point rule (difference below the tolerance) would have promoted."""
    y, dates = _season(18, 10)
    rng = np.random.default_rng(3)
    d = rng.normal(0.0, 0.06, len(y))
    d += -0.001 - d.mean()  # a gain of exactly 0.001 per match
    ci = log_loss_interval(y, *_pair(y, d), dates)
    assert ci.estimate == pytest.approx(-0.001) and ci.estimate <= TOLERANCE
    assert ci.straddles(0.0) and ci.hi >= TOLERANCE


def test_the_seed_fixes_the_interval():
    y, dates = _season(30, 8)
    d = np.random.default_rng(4).normal(-0.002, 0.05, len(y))
    first, again = paired_block_bootstrap(d, dates), paired_block_bootstrap(d, dates)
    assert (first.lo, first.hi) == (again.lo, again.hi)
    other = paired_block_bootstrap(d, dates, seed=SEED + 1)
    assert (other.lo, other.hi) != (first.lo, first.hi) and other.estimate == first.estimate


def test_blocks_are_matchdays_not_matches():
    """Errors shared by a matchday's matches (a round the challenger read well or badly): resampling matches would
    take 400 matches for 400 independent pieces of evidence and promote; resampling the 40 matchdays does not."""
    y, dates = _season(40, 10)
    rng = np.random.default_rng(5)
    day_effect = np.repeat(rng.normal(0.0, 0.04, 40), 10)
    d = day_effect + rng.normal(0.0, 0.01, len(y))
    d += -0.004 - d.mean()
    by_day = log_loss_interval(y, *_pair(y, d), dates)
    by_match = paired_block_bootstrap(d, np.arange(len(d)), block="match")
    assert by_day.n_blocks == 40 and by_match.n_blocks == 400
    assert by_match.hi < TOLERANCE <= by_day.hi  # a different verdict
    # a kickoff time on the date does not split a matchday
    timed = [dt.datetime.combine(day, dt.time(12 + i % 9)) for i, day in enumerate(dates)]
    assert log_loss_interval(y, *_pair(y, d), timed) == by_day


def test_two_thousand_resamples_of_a_big_season_take_milliseconds():
    y, dates = _season(300, 10)
    d = np.random.default_rng(6).normal(0.0, 0.05, len(y))
    challenger, champion = _pair(y, d)
    started = time.perf_counter()
    ci = log_loss_interval(y, challenger, champion, dates)
    assert time.perf_counter() - started < 0.5 and ci.n == 3000 and ci.n_blocks == 300


def test_one_label_per_match_is_required():
    with pytest.raises(ValueError, match="one block label per difference"):
        paired_block_bootstrap([0.1, 0.2], ["2024-01-01"])
