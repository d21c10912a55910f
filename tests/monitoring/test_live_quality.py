"""Live quality on real ledger files: which prediction is scored (the last one per match, version and variant made
by the start of the match day, on as_of), and that every figure is time2bet.ml.metrics's on exactly those rows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from time2bet.ledger import read_records
from time2bet.ml import metrics
from time2bet.ml.training import fit_reference, reference_parameters, reference_probabilities
from time2bet.monitoring.live_quality import (
    ALL_DIVISIONS,
    ELO,
    PROBABILITIES,
    add_reference,
    check_against_estimate,
    check_against_reference,
    cumulative_figure,
    join_predictions,
    kickoff_cutoff,
    quality_table,
)

from .conftest import UTC, record, write

EARLY = dt.datetime(2025, 2, 26, 9, 0, tzinfo=UTC)
LATE = dt.datetime(2025, 2, 28, 18, 0, tzinfo=UTC)


def _p(values) -> np.ndarray:
    p = np.asarray(values, dtype=float)
    return p / p.sum(axis=1, keepdims=True)


@pytest.fixture
def ledger(tmp_path, matches):
    """v3 champion twice (EARLY, LATE: LATE counts), v4 challenger once without match ids (matched by key), and
    v3 champion again after kickoff for the first day's matches (not scored)."""
    first_day = matches[matches["match_date"] == matches["match_date"].min()]
    records = [record(matches, as_of=EARLY, seed=1), record(matches, as_of=LATE, seed=2),
               record(matches, as_of=LATE, version="4", variant="challenger", with_ids=False, seed=3),
               record(first_day, as_of=dt.datetime(2025, 3, 1, 11, 0, tzinfo=UTC), seed=4)]
    write(tmp_path / "ledger", "svc-a", records)
    return read_records(tmp_path / "ledger")


def test_the_last_prediction_before_kickoff_is_joined_once_per_match_version_and_variant(ledger, matches):
    joined = join_predictions(ledger, matches)
    frame = joined.frame
    assert len(frame) == 2 * len(matches)   # every played match, once per version and variant
    assert not frame.duplicated(["match_id", "model_name", "model_version", "variant"]).any()
    assert frame.groupby(["model_version", "variant"]).size().to_dict() == {("3", "champion"): len(matches),
                                                                            ("4", "challenger"): len(matches)}
    champion = frame[frame["variant"] == "champion"]
    assert (champion["as_of"] == pd.Timestamp(LATE)).all()   # EARLY superseded, the after-kickoff one left out
    late = ledger[(ledger["as_of"] == pd.Timestamp(LATE)) & (ledger["model_version"] == "3")]
    expected = late.set_index("match_id").loc[champion["match_id"], list(PROBABILITIES)].to_numpy()
    assert np.array_equal(champion[list(PROBABILITIES)].to_numpy(), expected)
    first_day = (matches["match_date"] == matches["match_date"].min()).sum()
    assert (joined.predictions, joined.of_played) == (len(ledger), len(ledger))
    assert joined.after_kickoff == first_day
    assert joined.superseded == len(matches)
    assert frame["y"].tolist() == metrics.encode_outcomes(frame["result"]).tolist()


def test_the_start_of_the_match_day_in_utc_is_the_last_instant_a_prediction_counts(tmp_path, matches):
    one = matches.iloc[[0]]
    midnight = kickoff_cutoff(one["match_date"]).iloc[0].to_pydatetime()
    assert midnight == dt.datetime(2025, 3, 1, tzinfo=UTC)
    write(tmp_path / "l", "w", [record(one, as_of=midnight - dt.timedelta(hours=1), seed=1),
                                record(one, as_of=midnight, seed=2),                        # a replay's clock
                                record(one, as_of=midnight + dt.timedelta(seconds=1), seed=3)])
    rows = read_records(tmp_path / "l")
    joined = join_predictions(rows, matches)
    assert len(joined.frame) == 1 and joined.after_kickoff == 1 and joined.superseded == 1
    assert joined.frame["as_of"].iloc[0] == pd.Timestamp(midnight)
    assert joined.frame["p_home"].iloc[0] == rows[rows["as_of"] == pd.Timestamp(midnight)]["p_home"].iloc[0]


def test_predictions_of_matches_not_played_are_not_joined(tmp_path, matches):
    write(tmp_path / "l", "w", [record(matches, as_of=LATE, seed=1)])
    rows = read_records(tmp_path / "l")
    joined = join_predictions(rows, matches.iloc[:5])
    assert len(joined.frame) == 5 and joined.of_played == 5 and joined.predictions == len(matches)


def test_every_figure_is_time2bet_ml_metrics_on_the_same_rows(ledger, matches):
    frame = join_predictions(ledger, matches).frame
    table = quality_table(frame)
    assert set(table["division"]) == {"D1", "E0", ALL_DIVISIONS}
    assert len(table) == 2 * 3
    for row in table.itertuples(index=False):
        rows = frame[(frame["model_version"] == row.model_version) & (frame["variant"] == row.variant)]
        if row.division != ALL_DIVISIONS:
            rows = rows[rows["division"] == row.division]
        y, p = rows["y"].to_numpy(), rows[list(PROBABILITIES)].to_numpy()
        assert row.n == len(rows)
        expected = metrics.evaluate(y, p)
        for name in ("log_loss", "rps", "brier", "accuracy", "ece", "ece_home", "ece_draw", "ece_away"):
            assert getattr(row, name) == pytest.approx(expected[name], abs=1e-12), name
        odds = rows[["market_odds_home", "market_odds_draw", "market_odds_away"]].to_numpy()
        with_odds = np.isfinite(odds).all(axis=1)
        market = metrics.demargin(*odds[with_odds].T)
        assert row.n_with_odds == with_odds.sum()
        assert row.market_log_loss == pytest.approx(metrics.log_loss(y[with_odds], market), abs=1e-12)
        assert row.market_rps == pytest.approx(metrics.rps(y[with_odds], market), abs=1e-12)
        assert row.market_brier == pytest.approx(metrics.brier(y[with_odds], market), abs=1e-12)
        assert row.model_log_loss_on_odds == pytest.approx(metrics.log_loss(y[with_odds], p[with_odds]), abs=1e-12)
        assert row.n_elo == 0 and np.isnan(row.elo_log_loss)   # no reference given
    assert (table["n_with_odds"] < table["n"]).any()           # the match without odds is left out of the market's


def _window(n: int = 600, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    diff = rng.normal(0, 150, n)
    u = rng.random(n)
    home = 1 / (1 + np.exp(-(diff / 200 + 0.3)))
    result = np.where(u < home * 0.75, "H", np.where(u < home * 0.75 + 0.27, "D", "A"))
    frame = pd.DataFrame({"match_id": [f"t{i}" for i in range(n)], "elo_diff": diff, "result": result})
    frame.loc[::17, "elo_diff"] = np.nan
    return frame


def test_the_reference_logged_as_numbers_predicts_what_the_fitted_pipeline_does():
    window = _window()
    pipeline = fit_reference(window, "elo_diff")
    parameters = reference_parameters(pipeline, "elo_diff")
    new = _window(80, seed=6)
    expected = pipeline.predict_proba(new[["elo_diff"]].astype("float64"))
    assert np.allclose(reference_probabilities(parameters, new), expected, rtol=0, atol=1e-12)
    assert np.isnan(new["elo_diff"]).any()   # a missing rating takes the imputed value, as in the pipeline


def test_each_version_is_compared_with_its_own_reference_on_the_matches_with_ratings(ledger, matches):
    frame = join_predictions(ledger, matches).frame
    inputs = pd.DataFrame({"match_id": matches["match_id"],
                           "elo_diff": np.linspace(-200, 200, len(matches))}).iloc[2:]   # two without ratings yet
    ref3 = reference_parameters(fit_reference(_window(seed=7), "elo_diff"), "elo_diff")
    scored = add_reference(frame, inputs, {("match_outcome", "3"): ref3, ("match_outcome", "4"): None})
    v3 = scored[scored["model_version"] == "3"]
    has = v3["match_id"].isin(inputs["match_id"])
    assert np.isfinite(v3.loc[has, list(ELO)].to_numpy()).all() and v3.loc[~has, list(ELO)].isna().all().all()
    x = inputs.set_index("match_id").loc[v3.loc[has, "match_id"]].reset_index()
    assert np.array_equal(v3.loc[has, list(ELO)].to_numpy(), reference_probabilities(ref3, x))
    assert scored.loc[scored["model_version"] == "4", list(ELO)].isna().all().all()   # no reference: none
    overall = quality_table(scored).query("division == @ALL_DIVISIONS").set_index("model_version")
    y, p, q = (v3.loc[has, "y"].to_numpy(), v3.loc[has, list(PROBABILITIES)].to_numpy(),
               v3.loc[has, list(ELO)].to_numpy())
    assert overall.loc["3", "n_elo"] == has.sum() == len(matches) - 2
    assert overall.loc["3", "elo_log_loss"] == pytest.approx(metrics.log_loss(y, q), abs=1e-12)
    assert overall.loc["3", "model_log_loss_on_elo"] == pytest.approx(metrics.log_loss(y, p), abs=1e-12)
    assert overall.loc["4", "n_elo"] == 0
    fig = cumulative_figure(scored, "test")
    assert len(fig.axes[0].lines) == 2 * 2 + 1   # each version's model and market, v3's Elo-only reference


def _overall(n: int, log_loss: float, elo: float, n_elo: int | None = None) -> pd.DataFrame:
    return pd.DataFrame([{"model_name": "match_outcome", "model_version": "3", "variant": "champion", "n": n,
                          "log_loss": log_loss, "n_elo": n if n_elo is None else n_elo,
                          "model_log_loss_on_elo": log_loss, "elo_log_loss": elo}])


@pytest.mark.parametrize(("n", "live", "passed", "says"), [
    (200, 1.00, True, "<= promotion-time estimate"),
    (200, 1.03, False, "> promotion-time estimate"),
    (50, 1.50, True, "not judged: 50 matches < 100"),
])
def test_live_log_loss_against_the_promotion_time_estimate(n, live, passed, says):
    [verdict] = check_against_estimate(_overall(n, live, 0.9), {("match_outcome", "3"): 1.0}, margin=0.02,
                                       min_matches=100)
    assert verdict.passed is passed and says in verdict.note
    [unknown] = check_against_estimate(_overall(200, 2.0, 0.9), {}, margin=0.02, min_matches=100)
    assert unknown.passed and "no promotion-time estimate" in unknown.note


@pytest.mark.parametrize(("n", "live", "elo", "passed", "says"), [
    (200, 1.00, 1.01, True, "<= Elo-only reference"),
    (200, 1.02, 1.01, False, "> Elo-only reference"),
    (20, 3.00, 1.01, True, "not judged: 20 matches < 100"),
])
def test_live_log_loss_against_the_elo_only_reference(n, live, elo, passed, says):
    [verdict] = check_against_reference(_overall(n, live, elo), min_matches=100)
    assert verdict.passed is passed and says in verdict.note
    [none] = check_against_reference(_overall(200, 3.0, np.nan, n_elo=0), min_matches=100)
    assert none.passed and "no Elo-only reference" in none.note


def test_pooled_weighs_each_row_by_its_matches_and_skips_rows_without_the_score():
    from time2bet.monitoring.live_quality import pooled

    weeks = pd.DataFrame({"log_loss": [1.0, 0.5, None], "n": [10, 30, 5]})
    assert pooled(weeks, "log_loss", "n") == (pytest.approx((10 * 1.0 + 30 * 0.5) / 40), 40)
    score, n = pooled(pd.DataFrame(), "log_loss", "n")
    assert np.isnan(score) and n == 0
