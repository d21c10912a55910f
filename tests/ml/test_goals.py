"""The Dixon-Coles goals model: gradient, parameter recovery from simulated seasons, walk-forward leakage, the
walk-forward over/under recalibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from scipy.special import logit

from time2bet.ml import goals
from time2bet.ml.markets import one_x_two


def _simulate(n_teams: int = 20, seasons: int = 12, rho: float = -0.12, hfa: float = 0.3, seed: int = 7):
    """Double round-robin seasons drawn from a Dixon-Coles model with known parameters."""
    rng = np.random.default_rng(seed)
    attack = rng.normal(0, 0.3, n_teams)
    attack -= attack.mean()
    defence = rng.normal(0, 0.25, n_teams)
    defence -= defence.mean()
    pairs = [(h, a) for h in range(n_teams) for a in range(n_teams) if h != a]
    home = np.tile([h for h, _ in pairs], seasons)
    away = np.tile([a for _, a in pairs], seasons)
    m = goals.score_matrix(np.exp(attack[home] + defence[away] + hfa), np.exp(attack[away] + defence[home]), rho)
    g = m.shape[-1]
    flat = m.reshape(len(m), -1)
    cells = (flat.cumsum(axis=1) < rng.random(len(m))[:, None]).sum(axis=1).clip(max=g * g - 1)
    days = np.repeat(np.arange(seasons) * 365, len(pairs)) + np.tile(np.arange(len(pairs)) % 280, seasons)
    frame = pd.DataFrame({
        "match_id": [f"m{k}" for k in range(len(home))], "division": "X1",
        "match_date": pd.Timestamp("2000-08-01") + pd.to_timedelta(days, unit="D"),
        "home_team_id": [f"t{h}" for h in home], "away_team_id": [f"t{a}" for a in away],
        "home_goals": cells // g, "away_goals": cells % g,
    })
    return frame, attack, defence


def test_gradient_matches_finite_differences():
    frame, _, _ = _simulate(n_teams=6, seasons=2)
    data = goals.GoalsData(
        home=frame["home_team_id"].str[1:].astype(int).to_numpy(), away=frame["away_team_id"].str[1:].astype(int).to_numpy(),
        home_goals=frame["home_goals"].to_numpy(float), away_goals=frame["away_goals"].to_numpy(float),
        weights=np.linspace(0.2, 1.0, len(frame)), n_teams=6)
    x = np.random.default_rng(1).normal(0, 0.2, 14)
    x[-1] = -0.08
    err = check_grad(lambda p: goals.negative_log_likelihood(p, data)[0],
                     lambda p: goals.negative_log_likelihood(p, data)[1], x)
    assert err < 1e-3 * np.linalg.norm(goals.negative_log_likelihood(x, data)[1])


def test_recovers_known_parameters_and_the_sign_of_rho():
    frame, attack, defence = _simulate()
    model = goals.fit(frame, frame["match_date"].max() + pd.Timedelta(days=1), xi=0.0, ridge=0.01)
    order = [model.teams.index(f"t{k}") for k in range(len(attack))]
    assert np.corrcoef(model.attack[order], attack)[0, 1] > 0.95
    assert np.corrcoef(model.defence[order], defence)[0, 1] > 0.9
    assert model.home_advantage == pytest.approx(0.3, abs=0.04)
    assert -0.2 < model.rho < -0.05  # simulated with -0.12: low draws likelier than independence
    # an independent-Poisson world gives rho near zero
    indep, _, _ = _simulate(rho=0.0, seed=8)
    assert abs(goals.fit(indep, indep["match_date"].max(), xi=0.0, ridge=0.01).rho) < 0.05


def test_rho_moves_probability_into_the_draw():
    base = one_x_two(goals.score_matrix([1.4], [1.1], 0.0))[0]
    corrected = one_x_two(goals.score_matrix([1.4], [1.1], -0.13))[0]
    assert corrected[1] > base[1] + 0.01
    assert goals.score_matrix([1.4], [1.1], -0.13).sum() == pytest.approx(1.0)


def test_walk_forward_reads_only_earlier_months():
    frame, _, _ = _simulate(n_teams=10, seasons=3)
    out = goals.walk_forward_goals(frame, min_matches=60)
    assert out["goals_p_home"].notna().sum() > len(frame) // 2
    assert np.allclose(out[["goals_p_home", "goals_p_draw", "goals_p_away"]].dropna().sum(axis=1), 1.0)
    # fewer earlier out-of-fold rows than a map needs: over/under stays the model's own
    assert out["goals_p_over_2_5_recalibrated"].equals(out["goals_p_over_2_5"])
    # change one result: its own month's forecasts stay, the next month's move
    k = int(out["goals_p_home"].notna().idxmax()) + 5
    month = frame["match_date"].dt.to_period("M")
    changed = frame.copy()
    changed.loc[k, ["home_goals", "away_goals"]] = [9, 0]
    after = goals.walk_forward_goals(changed, min_matches=60)
    same_month = month == month[k]
    pd.testing.assert_frame_equal(out[same_month], after[same_month])
    next_month = month == month[month > month[k]].min()
    assert not np.allclose(out.loc[next_month, "goals_exp_home"], after.loc[next_month, "goals_exp_home"])


def test_walk_forward_recalibrates_the_over_under_of_matches_to_come():
    frame, _, _ = _simulate(n_teams=14, seasons=5, seed=11)
    season = frame["match_date"].map(goals.season_of)
    last = season == season.max()
    upcoming = frame[last].assign(home_goals=np.nan, away_goals=np.nan)
    predicted = goals.walk_forward_goals(frame[~last], targets=upcoming)
    raw, recalibrated = (predicted[c].to_numpy() for c in ("goals_p_over_2_5", "goals_p_over_2_5_recalibrated"))
    assert np.isfinite(recalibrated).all()
    # one Platt map of the earlier seasons' out-of-fold rows (markets' tests: earlier seasons only), not the identity
    slope, intercept = np.polyfit(logit(raw), logit(recalibrated), 1)
    assert logit(recalibrated) == pytest.approx(intercept + slope * logit(raw), abs=1e-6)
    assert abs(slope - 1) + abs(intercept) > 0.01
