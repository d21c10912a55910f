"""Goals model: Dixon-Coles (1997) with time-decay weights, fitted walk-forward per division.

Home goals ~ Poisson(lambda), away goals ~ Poisson(mu), ``log lambda = attack[home] + defence[away] + home
advantage``, ``log mu = attack[away] + defence[home]``, with the Dixon-Coles correction ``tau`` of the four low
scores (rho < 0 makes 0-0 and 1-1 likelier, 1-0 and 0-1 less likely than independence says). Each match is
weighted ``exp(-xi * days before the fit date)``, so older form counts less. Our own code rather than
penaltyblog: penaltyblog 1.13 (which does fit Python 3.11 and our numpy/pandas) pulls in scraping and plotting
libraries (plotly, kaleido, statsbombpy, ipywidgets, wrapper-tls-requests, ...) that a model of a few dozen
parameters does not need; the negative log-likelihood here is vectorised with an analytic gradient for L-BFGS.

A small ridge penalty on attack and defence identifies the model (they are only defined up to a shift) and
shrinks teams with few weighted matches (newly promoted) toward the average.

Walk-forward cadence (:func:`walk_forward_goals`): per division, one fit at the first day of every month that
has matches, on that division's matches of the previous ``window_days`` before that day, warm-started from the
previous month's fit; the fit predicts that month's matches. A match therefore only sees matches of earlier
dates (earlier months), never its own result or a later one.

Over/under 2.5 is then recalibrated walk-forward by season (:func:`time2bet.ml.markets.walk_forward_over_under`:
a Platt map fitted on the out-of-fold predictions of the five seasons before), as the market column
``goals_p_over_2_5_recalibrated``; the model input ``goals_p_over_2_5`` and the score matrix stay the model's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import gammaln

from time2bet.football import season_of
from time2bet.ml.markets import OU_RECALIBRATION_SEASONS, one_x_two, over_under, walk_forward_over_under

MAX_GOALS = 10          # score matrices cover 0..10 goals a side
XI = 0.0019             # per day: Dixon & Coles' 0.0065 per half-week; weight halves in about a year
WINDOW_DAYS = 3 * 365   # matches older than this weigh < 13% and are left out of a fit
RIDGE = 5.0             # penalty on attack/defence (weighted log-likelihood units); chosen in-window: 0.5, 5, 25 tried
MIN_MATCHES = 150       # a division needs this many matches in the window before it gets predictions

GOALS_FEATURES = (
    "goals_exp_home", "goals_exp_away", "goals_p_home", "goals_p_draw", "goals_p_away", "goals_p_over_2_5",
)


def _tau(hg: np.ndarray, ag: np.ndarray, lam: np.ndarray, mu: np.ndarray, rho: float) -> np.ndarray:
    tau = np.ones_like(lam)
    tau = np.where((hg == 0) & (ag == 0), 1.0 - lam * mu * rho, tau)
    tau = np.where((hg == 0) & (ag == 1), 1.0 + lam * rho, tau)
    tau = np.where((hg == 1) & (ag == 0), 1.0 + mu * rho, tau)
    return np.where((hg == 1) & (ag == 1), 1.0 - rho, tau)


@dataclass(frozen=True)
class GoalsData:
    """Matches of one fit as integer team codes, goals and weights."""

    home: np.ndarray
    away: np.ndarray
    home_goals: np.ndarray
    away_goals: np.ndarray
    weights: np.ndarray
    n_teams: int


def _unpack(params: np.ndarray, n: int):
    return params[:n], params[n:2 * n], params[2 * n], params[2 * n + 1]


def negative_log_likelihood(params: np.ndarray, data: GoalsData, ridge: float = RIDGE) -> tuple[float, np.ndarray]:
    """Weighted Dixon-Coles negative log-likelihood (plus ridge) and its gradient.

    ``params`` = attack (n), defence (n), home advantage, rho."""
    n = data.n_teams
    attack, defence, hfa, rho = _unpack(params, n)
    h, a, x, y, w = data.home, data.away, data.home_goals, data.away_goals, data.weights
    log_lam = attack[h] + defence[a] + hfa
    log_mu = attack[a] + defence[h]
    lam, mu = np.exp(log_lam), np.exp(log_mu)
    tau = _tau(x, y, lam, mu, rho)
    if np.any(tau <= 0):
        return 1e12, np.zeros_like(params)
    loglik = np.log(tau) + x * log_lam - lam + y * log_mu - mu - gammaln(x + 1) - gammaln(y + 1)
    # d log(tau) / d log(lam), d log(mu), d rho for the four corrected scores
    s00, s01, s10, s11 = (x == 0) & (y == 0), (x == 0) & (y == 1), (x == 1) & (y == 0), (x == 1) & (y == 1)
    d_lam = np.where(s00, -lam * mu * rho / tau, 0.0) + np.where(s01, lam * rho / tau, 0.0)
    d_mu = np.where(s00, -lam * mu * rho / tau, 0.0) + np.where(s10, mu * rho / tau, 0.0)
    d_rho = (np.where(s00, -lam * mu, 0.0) + np.where(s01, lam, 0.0) + np.where(s10, mu, 0.0)
             - np.where(s11, 1.0, 0.0)) / tau
    g_lam = w * (x - lam + d_lam)   # d loglik / d log_lam
    g_mu = w * (y - mu + d_mu)
    grad = np.empty_like(params)
    grad[:n] = np.bincount(h, g_lam, n) + np.bincount(a, g_mu, n)
    grad[n:2 * n] = np.bincount(a, g_lam, n) + np.bincount(h, g_mu, n)
    grad[2 * n] = g_lam.sum()
    grad[2 * n + 1] = (w * d_rho).sum()
    penalty = ridge * (np.sum(attack ** 2) + np.sum(defence ** 2))
    grad[:2 * n] = -grad[:2 * n] + 2 * ridge * params[:2 * n]
    grad[2 * n:] = -grad[2 * n:]
    return float(-(w * loglik).sum() + penalty), grad


@dataclass(frozen=True)
class DixonColes:
    """A fitted model: parameters by team id."""

    teams: tuple[str, ...]
    attack: np.ndarray
    defence: np.ndarray
    home_advantage: float
    rho: float

    @property
    def params(self) -> dict[str, np.ndarray | float]:
        return {"attack": self.attack, "defence": self.defence, "home_advantage": self.home_advantage, "rho": self.rho}

    def _strength(self, team_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """attack, defence of each team; a team the fit never saw (promoted) gets the weakest fifth's."""
        index = {t: i for i, t in enumerate(self.teams)}
        unknown_attack = float(np.quantile(self.attack, 0.2))
        unknown_defence = float(np.quantile(self.defence, 0.8))
        codes = np.array([index.get(t, -1) for t in team_ids], dtype=np.int64)
        att = np.where(codes >= 0, self.attack[codes.clip(0)], unknown_attack)
        dfn = np.where(codes >= 0, self.defence[codes.clip(0)], unknown_defence)
        return att, dfn

    def expected_goals(self, home_ids: Sequence[str], away_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        ha, hd = self._strength(home_ids)
        aa, ad = self._strength(away_ids)
        return np.exp(ha + ad + self.home_advantage), np.exp(aa + hd)

    def score_matrix(self, home_ids: Sequence[str], away_ids: Sequence[str]) -> np.ndarray:
        lam, mu = self.expected_goals(home_ids, away_ids)
        return score_matrix(lam, mu, self.rho)


def score_matrix(lam: np.ndarray, mu: np.ndarray, rho: float, max_goals: int = MAX_GOALS) -> np.ndarray:
    """(n, G, G) probabilities of home goals i (axis 1) and away goals j (axis 2), renormalised over 0..G-1."""
    lam, mu = np.atleast_1d(np.asarray(lam, float)), np.atleast_1d(np.asarray(mu, float))
    goals = np.arange(max_goals + 1)
    log_fact = gammaln(goals + 1)
    ph = np.exp(goals * np.log(lam)[:, None] - lam[:, None] - log_fact)
    pa = np.exp(goals * np.log(mu)[:, None] - mu[:, None] - log_fact)
    m = ph[:, :, None] * pa[:, None, :]
    m[:, 0, 0] *= 1 - lam * mu * rho
    m[:, 0, 1] *= 1 + lam * rho
    m[:, 1, 0] *= 1 + mu * rho
    m[:, 1, 1] *= 1 - rho
    m = np.clip(m, 0.0, None)
    return m / m.sum(axis=(1, 2), keepdims=True)


def fit_dixon_coles(data: GoalsData, init: np.ndarray | None = None, ridge: float = RIDGE) -> np.ndarray:
    """Parameters minimising :func:`negative_log_likelihood` (L-BFGS-B, rho bounded to (-0.2, 0.2))."""
    n = data.n_teams
    x0 = np.zeros(2 * n + 2) if init is None else init
    if init is None:
        x0[2 * n] = 0.25
    bounds = [(None, None)] * (2 * n + 1) + [(-0.2, 0.2)]
    res = minimize(negative_log_likelihood, x0, args=(data, ridge), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 500, "gtol": 1e-6})
    return res.x


def fit(matches: pd.DataFrame, as_of: pd.Timestamp, *, xi: float = XI, ridge: float = RIDGE,
        init: DixonColes | None = None) -> DixonColes:
    """Fit on ``matches`` (match_date, home_team_id, away_team_id, home_goals, away_goals), weighted by their age
    at ``as_of``; ``init`` warm-starts the teams it knows."""
    teams = tuple(sorted(set(matches["home_team_id"]) | set(matches["away_team_id"])))
    code = {t: i for i, t in enumerate(teams)}
    age = (as_of - pd.to_datetime(matches["match_date"])).dt.days.to_numpy(float)
    data = GoalsData(
        home=matches["home_team_id"].map(code).to_numpy(np.int64),
        away=matches["away_team_id"].map(code).to_numpy(np.int64),
        home_goals=matches["home_goals"].to_numpy(float), away_goals=matches["away_goals"].to_numpy(float),
        weights=np.exp(-xi * age), n_teams=len(teams),
    )
    x0 = None
    if init is not None:
        att, dfn = init._strength(teams)
        x0 = np.concatenate([att, dfn, [init.home_advantage, init.rho]])
    params = fit_dixon_coles(data, x0, ridge)
    attack, defence, hfa, rho = _unpack(params, len(teams))
    return DixonColes(teams, attack.copy(), defence.copy(), float(hfa), float(rho))


def walk_forward_goals(matches: pd.DataFrame, *, xi: float = XI, window_days: int = WINDOW_DAYS,
                       ridge: float = RIDGE, min_matches: int = MIN_MATCHES,
                       targets: pd.DataFrame | None = None,
                       ou_seasons: int | None = OU_RECALIBRATION_SEASONS) -> pd.DataFrame:
    """Goals-model outputs for every row of ``targets`` (default: ``matches``), from monthly per-division fits on
    the played ``matches`` strictly before each target's month (see the module docstring).

    Returns a frame indexed like ``targets`` with :data:`GOALS_FEATURES` (NaN where the division's window held
    fewer than ``min_matches`` matches), ``goals_rho`` and ``goals_p_over_2_5_recalibrated`` (each season's
    P(over 2.5) through the map fitted on the out-of-fold predictions of the ``ou_seasons`` seasons before it,
    all earlier ones if None; 0 leaves the column out)."""
    out = _walk_forward_fits(matches, xi=xi, window_days=window_days, ridge=ridge, min_matches=min_matches,
                             targets=matches if targets is None else targets)
    if ou_seasons == 0:
        return out
    history = out if targets is None else _walk_forward_fits(matches, xi=xi, window_days=window_days,
                                                             ridge=ridge, min_matches=min_matches, targets=matches)
    played = matches.loc[history.index]
    over = (played["home_goals"] + played["away_goals"]).gt(2.5).astype(float).where(
        played["home_goals"].notna() & played["away_goals"].notna())
    rows = pd.concat([history["goals_p_over_2_5"], over, _season(played["match_date"])], axis=1,
                     keys=["p", "over", "season"])
    if targets is not None:  # the targets' own rows: predicted, never part of a map's history
        rows = pd.concat([rows, pd.DataFrame({"p": out["goals_p_over_2_5"], "over": np.nan,
                                              "season": _season(targets["match_date"])})], ignore_index=True)
    recalibrated = walk_forward_over_under(rows["p"], rows["over"], rows["season"], seasons=ou_seasons)
    out["goals_p_over_2_5_recalibrated"] = recalibrated.to_numpy()[-len(out):]
    return out


def _season(dates: pd.Series) -> pd.Series:
    """Season labels ('2017-18') of match dates."""
    return pd.to_datetime(dates).map(season_of)


def _walk_forward_fits(matches: pd.DataFrame, *, xi: float, window_days: int, ridge: float, min_matches: int,
                       targets: pd.DataFrame) -> pd.DataFrame:
    """:data:`GOALS_FEATURES` and ``goals_rho`` of ``targets`` from the monthly per-division fits."""
    played = matches.dropna(subset=["home_goals", "away_goals"])
    played = played.assign(match_date=pd.to_datetime(played["match_date"]))
    out = pd.DataFrame(np.nan, index=targets.index, columns=[*GOALS_FEATURES, "goals_rho"])
    target_dates = pd.to_datetime(targets["match_date"])
    months = target_dates.dt.to_period("M")
    for division in sorted(targets["division"].unique()):
        history = played[played["division"] == division].sort_values("match_date")
        dates = history["match_date"].to_numpy()
        mine = targets["division"] == division
        previous: DixonColes | None = None
        for month in sorted(months[mine].unique()):
            start = month.start_time
            lo, hi = np.searchsorted(dates, np.datetime64(start - pd.Timedelta(days=window_days))), \
                np.searchsorted(dates, np.datetime64(start))
            if hi - lo < min_matches:
                continue
            model = fit(history.iloc[lo:hi], start, xi=xi, ridge=ridge, init=previous)
            previous = model
            rows = mine & (months == month)
            chunk = targets.loc[rows]
            lam, mu = model.expected_goals(chunk["home_team_id"], chunk["away_team_id"])
            m = score_matrix(lam, mu, model.rho)
            p = one_x_two(m)
            out.loc[rows, list(GOALS_FEATURES)] = np.column_stack([lam, mu, p, over_under(m, 2.5)])
            out.loc[rows, "goals_rho"] = model.rho
    return out
