"""Scores for H/D/A probability forecasts, and de-margining of bookmaker odds into the market's probabilities.

Everything here is plain numpy on arrays: ``y`` holds outcome codes (0 = home win, 1 = draw, 2 = away win,
the order used everywhere in time2bet.ml) and ``p`` is an (n, 3) array of probabilities in that order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

OUTCOMES = ("H", "D", "A")
OUTCOME_NAMES = ("home", "draw", "away")
METRICS = ("log_loss", "rps", "brier", "accuracy", "ece", "ece_home", "ece_draw", "ece_away")  # evaluate()'s keys
_EPS = 1e-15


def encode_outcomes(results: Iterable[str]) -> np.ndarray:
    """'H'/'D'/'A' -> 0/1/2; anything else is an error, since a silent NaN would drop matches from scores."""
    codes = {outcome: i for i, outcome in enumerate(OUTCOMES)}
    try:
        return np.array([codes[r] for r in results], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"unknown match result {exc.args[0]!r}; expected one of {OUTCOMES}") from None


def _check(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or y.shape != (p.shape[0],):
        raise ValueError(f"expected y of shape (n,) and p of shape (n, 3); got {y.shape} and {p.shape}")
    if len(y) == 0:
        raise ValueError("cannot score zero matches")
    if not np.isin(y, (0, 1, 2)).all():
        raise ValueError("y must hold outcome codes 0/1/2 (home/draw/away)")
    return y, p


def _one_hot(y: np.ndarray) -> np.ndarray:
    return np.eye(3)[y]


def log_losses(y, p) -> np.ndarray:
    """Per match, the negative log-probability of the observed outcome (probabilities clipped at 1e-15): what a
    paired comparison of two models on the same matches needs (time2bet.ml.bootstrap)."""
    y, p = _check(y, p)
    return -np.log(np.clip(p[np.arange(len(y)), y], _EPS, 1.0))


def log_loss(y, p) -> float:
    """Mean negative log-probability of the observed outcome (probabilities clipped at 1e-15)."""
    return float(np.mean(log_losses(y, p)))


def rps(y, p) -> float:
    """Ranked probability score, averaged: outcomes are ordered H < D < A, so a draw forecast is nearer to a
    home win than an away forecast is. Per match: sum over k < 3 of (cum p_k - cum o_k)^2 / (3 - 1)."""
    y, p = _check(y, p)
    gap = np.cumsum(p, axis=1)[:, :2] - np.cumsum(_one_hot(y), axis=1)[:, :2]
    return float(np.mean(np.sum(gap**2, axis=1) / 2.0))


def brier(y, p) -> float:
    """Multi-class Brier score: sum over the three classes of (p_k - o_k)^2, averaged over matches."""
    y, p = _check(y, p)
    return float(np.mean(np.sum((p - _one_hot(y)) ** 2, axis=1)))


def accuracy(y, p) -> float:
    """Share of matches whose most probable outcome happened (ties go to the earlier outcome, H before D)."""
    y, p = _check(y, p)
    return float(np.mean(np.argmax(p, axis=1) == y))


@dataclass(frozen=True)
class Calibration:
    """Class-wise calibration in equal-width bins. Arrays are (3 classes, n_bins); empty bins hold NaN means
    and count 0, so a report can show how many matches each point of a reliability diagram rests on."""

    per_class: np.ndarray  # (3,) ECE of home, draw, away
    counts: np.ndarray  # (3, n_bins) matches per class and bin
    mean_predicted: np.ndarray  # (3, n_bins)
    observed: np.ndarray  # (3, n_bins) observed frequency of the class
    edges: np.ndarray  # (n_bins + 1,)

    @property
    def ece(self) -> float:
        """Class-wise ECE averaged over the three classes (Kull et al. 2019), the number the gate checks."""
        return float(np.mean(self.per_class))


def expected_calibration_error(y, p, n_bins: int = 10) -> Calibration:
    """ECE per class: sum over bins of (n_bin / n) * |mean predicted - observed frequency|."""
    y, p = _check(y, p)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    outcome = _one_hot(y)
    counts = np.zeros((3, n_bins), dtype=np.int64)
    mean_predicted = np.full((3, n_bins), np.nan)
    observed = np.full((3, n_bins), np.nan)
    per_class = np.zeros(3)
    for k in range(3):
        bins = np.minimum((p[:, k] * n_bins).astype(np.int64), n_bins - 1)  # p == 1 goes to the last bin
        counts[k] = np.bincount(bins, minlength=n_bins)
        filled = counts[k] > 0
        n = counts[k, filled]
        mean_predicted[k, filled] = np.bincount(bins, weights=p[:, k], minlength=n_bins)[filled] / n
        observed[k, filled] = np.bincount(bins, weights=outcome[:, k], minlength=n_bins)[filled] / n
        per_class[k] = np.sum(counts[k, filled] / len(y) * np.abs(mean_predicted[k, filled] - observed[k, filled]))
    return Calibration(per_class, counts, mean_predicted, observed, edges)


def calibrated_ece_quantile(p, n_bins: int = 10, q: float = 0.95, draws: int = 200, seed: int = 0) -> float:
    """The ECE a *perfectly calibrated* forecaster would still show on this many matches, at quantile ``q``:
    outcomes are drawn from ``p`` itself ``draws`` times. On a few hundred matches this noise floor is
    about 0.05, so a fixed ECE threshold alone would reject good models by chance (and pass bad ones on
    big windows never); the promotion gate uses max(threshold, this floor)."""
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    cumulative = np.cumsum(p, axis=1)
    eces = []
    for _ in range(draws):
        u = rng.random(len(p))[:, None]
        y = np.minimum((u > cumulative).sum(axis=1), 2)
        eces.append(expected_calibration_error(y, p, n_bins).ece)
    return float(np.quantile(eces, q))


def evaluate(y, p) -> dict[str, float]:
    """All scores of one forecast set, keyed by metric name (the names MLflow and the reports use)."""
    calibration = expected_calibration_error(y, p)
    return {
        "log_loss": log_loss(y, p),
        "rps": rps(y, p),
        "brier": brier(y, p),
        "accuracy": accuracy(y, p),
        "ece": calibration.ece,
        **{f"ece_{name}": float(v) for name, v in zip(OUTCOME_NAMES, calibration.per_class)},
    }


def demargin(odds_home, odds_draw, odds_away, method: str = "proportional") -> np.ndarray:
    """Turn decimal 1X2 odds into probabilities without the bookmaker's margin; returns (n, 3).

    proportional: p_i = (1/o_i) / sum_j (1/o_j), as the dbt mart does.
    shin: Shin's (1992/1993) insider-trading model in the form of Jullien & Salanie (1994) and Strumbelj
    (2014): p_i(z) = (sqrt(z^2 + 4 (1 - z) pi_i^2 / B) - z) / (2 (1 - z)), pi_i = 1/o_i, B = sum pi_i, with the
    insider share z solved numerically (vectorised bisection) so that sum_i p_i(z) = 1. It shifts margin off
    favourites onto longshots. Shin needs a positive margin; a row whose booksum is <= 1 (no margin to
    remove) falls back to proportional. Rows with a missing price come back as NaN.
    """
    odds = np.column_stack([np.atleast_1d(np.asarray(o, dtype=np.float64)) 
                            for o in (odds_home, odds_draw, odds_away)])
    if np.any(odds <= 1.0):
        raise ValueError("decimal odds must be greater than 1")
    inverse = 1.0 / odds
    booksum = inverse.sum(axis=1, keepdims=True)
    proportional = inverse / booksum
    if method == "proportional":
        return proportional
    if method != "shin":
        raise ValueError(f"unknown de-margining method {method!r}; use 'proportional' or 'shin'")
    share = inverse**2 / booksum

    def shin_probabilities(z: np.ndarray) -> np.ndarray:
        return (np.sqrt(z**2 + 4.0 * (1.0 - z) * share) - z) / (2.0 * (1.0 - z))

    # sum_i p_i(z) falls from sqrt(B) > 1 at z = 0 to sum_i pi_i^2 / B < 1 as z -> 1: one root in (0, 1).
    low = np.zeros_like(booksum)
    high = np.ones_like(booksum)
    for _ in range(64):  # halves the bracket below float resolution of z
        mid = (low + high) / 2.0
        too_much = shin_probabilities(mid).sum(axis=1, keepdims=True) > 1.0
        low = np.where(too_much, mid, low)
        high = np.where(too_much, high, mid)
    shin = shin_probabilities((low + high) / 2.0)
    return np.where(booksum > 1.0, shin, proportional)
