"""Betting markets from a score matrix, and the market's own prices for them.

A score matrix ``m`` is (n, G, G): ``m[k, i, j]`` = P(match k ends i-j, home goals first), as
:func:`time2bet.ml.goals.score_matrix` makes it. Every market here is a sum over its cells, so all of them stay
consistent with one another (and with the 1X2).

Asian handicap (AH) lines are the home side's handicap, as football-data.co.uk's ``AHh`` / ``BbAHh`` /
``AHCh`` columns give them: ``-0.75`` means the home side starts 0.75 goals down. A quarter line splits the
stake over the two neighbouring lines (-0.75 = half on -0.5, half on -1), a whole line refunds a draw after
the handicap (push).

Imports only numpy, pandas, scipy/scikit-learn and (for score matrices of rows) the goals model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, logit


def _grid(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = np.arange(m.shape[-1])
    return g[:, None], g[None, :]


def one_x_two(m: np.ndarray) -> np.ndarray:
    """(n, 3) P(home win), P(draw), P(away win)."""
    i, j = _grid(m)
    return np.stack([(m * (i > j)).sum(axis=(1, 2)), (m * (i == j)).sum(axis=(1, 2)),
                     (m * (i < j)).sum(axis=(1, 2))], axis=1)


def over_under(m: np.ndarray, line: float = 2.5) -> np.ndarray:
    """(n,) P(total goals > line), for a half line."""
    i, j = _grid(m)
    return (m * ((i + j) > line)).sum(axis=(1, 2))


def both_teams_to_score(m: np.ndarray) -> np.ndarray:
    """(n,) P(both sides score)."""
    i, j = _grid(m)
    return (m * ((i > 0) & (j > 0))).sum(axis=(1, 2))


def expected_goals(m: np.ndarray) -> np.ndarray:
    """(n, 2) expected home and away goals over the matrix."""
    i, j = _grid(m)
    return np.stack([(m * i).sum(axis=(1, 2)), (m * j).sum(axis=(1, 2))], axis=1)


def most_likely_scores(m: np.ndarray, k: int = 3) -> list[list[tuple[int, int, float]]]:
    """Per match, the ``k`` likeliest scores as (home goals, away goals, probability), likeliest first."""
    g = m.shape[-1]
    flat = m.reshape(len(m), -1)
    top = np.argsort(-flat, axis=1, kind="stable")[:, :k]
    return [[(int(c // g), int(c % g), float(row[c])) for c in cells] for row, cells in zip(flat, top, strict=True)]


def _split_line(line: float) -> tuple[float, float]:
    """A quarter line as its two half-stakes' lines; other lines twice themselves."""
    quarter = round(line * 4) % 2 == 1
    return (line - 0.25, line + 0.25) if quarter else (line, line)


def asian_handicap(m: np.ndarray, line: np.ndarray | float) -> np.ndarray:
    """(n, 3) P(home bet wins), P(push), P(home bet loses) at the home handicap ``line`` (per match or one
    for all), in stake units: on a quarter line a half win counts half to win and half to push."""
    n = len(m)
    lines = np.broadcast_to(np.asarray(line, float), (n,))
    i, j = _grid(m)
    margin = (i - j)[None, :, :]
    out = np.zeros((n, 3))
    quarter = np.round(lines * 4) % 2 == 1   # _split_line on arrays (no Python call per match)
    for shift in (-0.25, 0.25):
        part_line = np.where(quarter, lines + shift, lines)[:, None, None]
        d = margin + part_line
        out += 0.5 * np.stack([(m * (d > 0)).sum(axis=(1, 2)), (m * (d == 0)).sum(axis=(1, 2)),
                               (m * (d < 0)).sum(axis=(1, 2))], axis=1)
    return out


def settle_asian_handicap(home_goals: np.ndarray, away_goals: np.ndarray, line: np.ndarray) -> np.ndarray:
    """(n,) the home bet's result in stake units of win (1), push (0) and loss (-1), halves on quarter lines."""
    result = np.zeros(len(line))
    for part in (0, 1):
        part_line = np.array([_split_line(x)[part] for x in line])
        result += 0.5 * np.sign(home_goals - away_goals + part_line)
    return result


def demargin(odds: np.ndarray) -> np.ndarray:
    """(n, k) decimal odds -> probabilities with the margin removed proportionally (NaN rows stay NaN)."""
    implied = 1.0 / np.asarray(odds, float)
    return implied / implied.sum(axis=1, keepdims=True)


# --- the market's prices in the raw rows ------------------------------------------------------------------

# Over/under 2.5 sources in order of preference: Pinnacle closing, Pinnacle, market average (then the older
# BetBrain average), Bet365. Raw warehouse columns (time2bet.warehouse.schema).
OVER_UNDER_SOURCES = ("pinnacle_close", "pinnacle", "avg", "bb_avg", "b365")
# Asian handicap in the raw rows' `extra` JSON: (source, line column, home odds, away odds), same preference.
ASIAN_HANDICAP_SOURCES = (
    ("pinnacle_close", "AHCh", "PCAHH", "PCAHA"),
    ("pinnacle", "AHh", "PAHH", "PAHA"),
    ("avg", "AHh", "AvgAHH", "AvgAHA"),
    ("bb_avg", "BbAHh", "BbAvAHH", "BbAvAHA"),
    ("b365", "AHh", "B365AHH", "B365AHA"),
)


def market_over_under(raw: pd.DataFrame) -> pd.DataFrame:
    """De-margined P(over 2.5) per raw row from the first source with both prices, and the source's name."""
    p_over = pd.Series(np.nan, index=raw.index)
    source = pd.Series(None, index=raw.index, dtype=object)
    for name in OVER_UNDER_SOURCES:
        over, under = f"odds_{name}_over_2_5", f"odds_{name}_under_2_5"
        if over not in raw or under not in raw:
            continue
        odds = raw[[over, under]].to_numpy(float)
        ok = (odds > 1).all(axis=1) & p_over.isna().to_numpy()
        p_over[ok] = demargin(odds[ok])[:, 0]
        source[ok] = name
    return pd.DataFrame({"market_p_over_2_5": p_over, "market_over_under_source": source})


def market_asian_handicap(extra: pd.Series) -> pd.DataFrame:
    """Home line and de-margined P(home bet wins | no push) per raw row from its ``extra`` JSON (NaN when none)."""
    rows = []
    for text in extra:
        fields: Mapping[str, object] = json.loads(text) if isinstance(text, str) and text else {}
        found = (np.nan, np.nan, None)
        for name, line_col, home_col, away_col in ASIAN_HANDICAP_SOURCES:
            try:
                line, home, away = (float(fields[c]) for c in (line_col, home_col, away_col))
            except (KeyError, TypeError, ValueError):
                continue
            if home > 1 and away > 1 and np.isfinite(line):
                found = (line, demargin(np.array([[home, away]]))[0, 0], name)
                break
        rows.append(found)
    return pd.DataFrame(rows, index=extra.index, columns=["ah_line", "market_p_ah_home", "market_ah_source"])


# --- recalibration of the goals model's over/under 2.5 ----------------------------------------------------

# Dixon-Coles' P(over 2.5) is over-confident out of sample (estimated team strengths spread the expected totals
# too widely): a Platt map fitted on the out-of-fold predictions of the five seasons before a season cuts its
# over/under log-loss by about 0.002 in the training window (bench/ablations.py --only ou; ADR 0006).
OU_RECALIBRATION_SEASONS = 5      # lookback, chosen in-window: 3, 4, 5, 6, 8 seasons and all earlier ones tried
OU_RECALIBRATION_MIN_ROWS = 500   # fewer out-of-fold rows than this: the season keeps the model's own P(over)


@dataclass(frozen=True)
class OverUnderRecalibration:
    """Platt map of the goals model's P(over 2.5): ``logit p' = intercept + slope * logit p``; a slope below 1
    pulls over-confident probabilities toward the middle. The default is the identity."""

    intercept: float = 0.0
    slope: float = 1.0

    def __call__(self, p_over: np.ndarray | pd.Series | float) -> np.ndarray:
        p = np.clip(np.asarray(p_over, float), 1e-6, 1 - 1e-6)
        return expit(self.intercept + self.slope * logit(p))


def fit_over_under_recalibration(p_over: np.ndarray | pd.Series, over: np.ndarray | pd.Series) -> OverUnderRecalibration:
    """The Platt map that maximises the likelihood of ``over`` (1: the match went over 2.5) given the goals
    model's out-of-fold ``p_over`` for the same matches (predictions made before each match, never in-sample)."""
    from sklearn.linear_model import LogisticRegression

    p, y = np.asarray(p_over, float), np.asarray(over, float)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"p_over and over must be 1-d of one length, got {p.shape} and {y.shape}")
    if not (np.isfinite(p).all() and ((p > 0) & (p < 1)).all()):
        raise ValueError("p_over must be probabilities strictly between 0 and 1 (drop rows without a prediction)")
    if not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
        raise ValueError("over must be 0/1 outcomes with both present")
    fitted = LogisticRegression(C=np.inf).fit(logit(p)[:, None], y.astype(int))
    return OverUnderRecalibration(float(fitted.intercept_[0]), float(fitted.coef_[0, 0]))


def walk_forward_over_under(p_over: pd.Series, over: pd.Series, season: pd.Series, *,
                            seasons: int | None = OU_RECALIBRATION_SEASONS,
                            min_rows: int = OU_RECALIBRATION_MIN_ROWS) -> pd.Series:
    """Each season's ``p_over`` through the map fitted (:func:`fit_over_under_recalibration`) on the rows of the
    ``seasons`` seasons before it (all earlier ones if None) that have a prediction and an outcome; a row's own
    season and later ones never reach its map. ``over`` is NaN for unplayed rows, ``season`` labels sort
    chronologically ('2017-18'); rows without a prediction stay NaN."""
    if not (p_over.index.equals(over.index) and p_over.index.equals(season.index)):
        raise ValueError("p_over, over and season must share one index")
    out = pd.Series(np.nan, index=p_over.index)
    known = p_over.notna() & over.notna()
    order = sorted(season.unique())
    for k, label in enumerate(order):
        rows = (season == label) & p_over.notna()
        if not rows.any():
            continue
        history = known & season.isin(order[max(0, k - seasons) if seasons else 0:k])
        if history.sum() >= min_rows:
            out[rows] = fit_over_under_recalibration(p_over[history], over[history])(p_over[rows])
        else:
            out[rows] = p_over[rows]
    return out


def binary_log_losses(outcome: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per match, -log of the probability given to what happened (``outcome`` 1/0), clipped at 1e-15."""
    p = np.clip(np.asarray(p, float), 1e-15, 1 - 1e-15)
    return -np.where(np.asarray(outcome) == 1, np.log(p), np.log1p(-p))


def evaluate_markets(frame: pd.DataFrame) -> dict[str, float]:
    """Over/under 2.5 and Asian-handicap log-loss of the goals model against the de-margined market.

    ``frame``: played matches with home_goals/away_goals, the goals model's ``goals_p_over_2_5`` (and its
    walk-forward recalibration ``goals_p_over_2_5_recalibrated``, which is scored when present; ``ou_raw_gap``
    then keeps the model's own figure), ``goals_exp_home``/``goals_exp_away``/``goals_rho``, and the market's
    ``market_p_over_2_5``, ``ah_line``, ``market_p_ah_home`` (NaN where absent). Over/under on every match with
    both prices. Asian handicap on the half and whole lines (a quarter line settles in halves, not as one
    yes/no), whole-line pushes left out, as P(home bet wins | no push)."""
    goals = (frame["home_goals"] + frame["away_goals"]).to_numpy(float)
    out: dict[str, float] = {}
    recalibrated = "goals_p_over_2_5_recalibrated" in frame
    column = "goals_p_over_2_5_recalibrated" if recalibrated else "goals_p_over_2_5"
    ou = frame["market_p_over_2_5"].notna().to_numpy() & frame[column].notna().to_numpy()
    over = (goals[ou] > 2.5).astype(int)

    def ou_log_loss(name: str) -> float:
        return float(binary_log_losses(over, frame.loc[ou, name]).mean()) if ou.any() else np.nan

    model_ou, market_ou = ou_log_loss(column), ou_log_loss("market_p_over_2_5")
    out |= {"ou_n": int(ou.sum()), "ou_model_log_loss": model_ou, "ou_market_log_loss": market_ou,
            "ou_gap": model_ou - market_ou}
    if recalibrated:
        out["ou_raw_gap"] = ou_log_loss("goals_p_over_2_5") - market_ou
    line = frame["ah_line"].to_numpy(float)
    whole_or_half = np.isfinite(line) & (np.round(line * 4) % 2 == 0)
    ah = whole_or_half & frame["market_p_ah_home"].notna().to_numpy() & frame["goals_exp_home"].notna().to_numpy()
    settled = settle_asian_handicap(frame["home_goals"].to_numpy(float), frame["away_goals"].to_numpy(float),
                                    np.nan_to_num(line))
    ah &= settled != 0
    if ah.any():
        sub = frame.loc[ah]
        m = score_matrix_of(sub)
        win, _, lose = asian_handicap(m, line[ah]).T
        won = (settled[ah] > 0).astype(int)
        model_ah = binary_log_losses(won, win / (win + lose)).mean()
        market_ah = binary_log_losses(won, sub["market_p_ah_home"]).mean()
    else:
        model_ah = market_ah = np.nan
    out |= {"ah_n": int(ah.sum()), "ah_model_log_loss": float(model_ah), "ah_market_log_loss": float(market_ah),
            "ah_gap": float(model_ah - market_ah)}
    return out


def score_matrix_of(frame: pd.DataFrame) -> np.ndarray:
    """Score matrices of rows carrying the goals model's goals_exp_home/goals_exp_away/goals_rho."""
    from time2bet.ml.goals import score_matrix  # (the goals model imports this module's sums)

    return score_matrix(frame["goals_exp_home"].to_numpy(float), frame["goals_exp_away"].to_numpy(float),
                        frame["goals_rho"].to_numpy(float))
