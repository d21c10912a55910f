"""The promotion gate's two rules of issue 16 on a temporary registry: a challenger is judged against the champion by
the paired bootstrap interval over matchdays, and no champion is worse than the Elo-only model (which the fallback
ladder registers when it beats the candidate). Synthetic matches (tests/ml/synthetic.py): elo_diff is the sharp
view of team strength, so the Elo-only model is close to the best there is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from time2bet.ml.bootstrap import MATCHDAY, N_RESAMPLES, SEED
from time2bet.ml.metrics import encode_outcomes
from time2bet.ml.promotion_gate import (
    GateDecision,
    _fallback,
    gate_with_baseline_fallback,
    log_loss_interval,
    promotion_gate,
)
from time2bet.ml.registry import ChampionDescription, describe_champion, register_challenger
from time2bet.ml.tracking import log_training_run
from time2bet.ml.training import BASELINE_MODEL, ELO_ONLY_MODEL, baseline_log_loss, elo_only_log_loss, train_candidate
from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import CHALLENGER, CHAMPION, model_input

from .synthetic import FEATURES, SEASONS, synthetic_matches

TOLERANCE = 0.002


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return frame[frame["season"].isin(SEASONS[:4])], frame[frame["season"] == SEASONS[4]]


@pytest.fixture(scope="module")
def window():
    return _split(synthetic_matches(per_season=(300, 300, 300, 300, 1200)))


def _log(frame, features, model_name, label, tracking):
    """Train and log a model as candidate_model does (walk-forward CV inside the window, MLflow run)."""
    result = train_candidate(frame, features, model_name, n_folds=2)
    return log_training_run(result, frame, data_version=f"synthetic-{label}", experiment="test_promotion_gate",
                            **tracking)


def test_the_champion_is_judged_by_the_bootstrap_interval(window, tracking):
    """The all-feature logistic regression is better than the Elo-only champion by a point estimate of about 0.002
    on 1,200 matches, which the point rule (difference <= tolerance) promoted; its interval straddles zero and
    reaches past the tolerance, so it stays challenger. The interval is in the tags, the audit trail, the MLflow run
    and `time2bet why`, and is the matchday bootstrap of the versions' own predictions. (A clearly better challenger
    is promoted in tests/ml/test_registry.py::test_champion_lifecycle.)"""
    uri, name = tracking["tracking_uri"], "match_outcome_interval"
    train, evaluation = window
    bar = baseline_log_loss(train, evaluation, FEATURES) + 0.01  # the bars leave the champion rule to decide
    runs = {label: _log(train, FEATURES, model, label, tracking) for label, model in (("elo", ELO_ONLY_MODEL),
                                                                                      ("full", "logreg"))}

    def gate(label):
        version = register_challenger(runs[label].model_uri, name, {"mlflow_run_id": runs[label].run_id},
                                      tracking_uri=uri)
        return promotion_gate(name, version, evaluation, FEATURES, baseline_logloss=bar, tracking_uri=uri)

    first = gate("elo")
    assert first.promoted and first.interval is None and "No champion to compare with" in str(
        describe_champion(name, tracking_uri=uri))
    noisy = gate("full")
    ci = noisy.interval
    assert noisy.challenger_log_loss < noisy.champion_log_loss and ci.estimate < 0  # better on the point estimate
    assert noisy.challenger_log_loss <= noisy.champion_log_loss + TOLERANCE  # what the point rule promoted
    assert ci.straddles(0.0) and ci.hi >= TOLERANCE and not noisy.promoted
    assert len(noisy.failed) == 1 and "upper bound >= tolerance" in noisy.failed[0], noisy.failed
    assert registry_client(uri).get_registered_model(name).aliases == {CHAMPION: 1, CHALLENGER: 2}

    # the interval is the matchday bootstrap of exactly what the two versions predict
    import mlflow

    def predict(version):
        return mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(model_input(evaluation, FEATURES))

    y = encode_outcomes(evaluation["result"])
    assert log_loss_interval(y, predict("2"), predict("1"), evaluation["match_date"]) == ci
    assert (ci.n_resamples, ci.seed, ci.block, ci.level) == (N_RESAMPLES, SEED, MATCHDAY, 0.95)
    assert ci.n_blocks == evaluation["match_date"].nunique() < len(evaluation)

    client = registry_client(uri)
    tags = client.get_model_version(name, "2").tags
    assert (float(tags["gate.ci_lo"]), float(tags["gate.ci_hi"])) == (ci.lo, ci.hi)
    assert (tags["gate.ci_n_resamples"], tags["gate.ci_seed"], tags["gate.ci_block"]) == ("2000", str(SEED), MATCHDAY)
    run = client.get_run(runs["full"].run_id).data
    assert run.metrics["gate.ci_hi"] == ci.hi and run.metrics["gate.log_loss"] == noisy.challenger_log_loss
    assert run.tags["gate.ci"] == str(ci) and run.tags["gate.decision"] == "rejected"
    why = describe_champion(name, tracking_uri=uri)
    assert why.audit[-1].split(" ", 1)[1].startswith(f"gate v2: rejected; log-loss - champion v1: {ci}")
    assert why.version == "1"
    # how `time2bet why` words a version's interval (the champion here has none: it was the first)
    text = str(ChampionDescription(name, "2", "", "", "1", {k.removeprefix("gate."): v for k, v in tags.items()
                                                            if k.startswith("gate.")}, dict(tags), ()))
    assert (f"log-loss difference {ci.estimate:+.5f}, 95% paired bootstrap interval [{ci.lo:+.5f}, {ci.hi:+.5f}] "
            f"(2000 resamples of {ci.n_blocks} matchday blocks, seed {SEED}); the gate promotes only when the upper "
            f"bound is below the tolerance") in text, text


def test_the_elo_only_model_replaces_a_candidate_worse_than_it(tracking):
    """Where only the ratings carry information (the other features are noise), XGBoost and the all-feature
    logistic regression are both worse than the Elo-only model on the gate window: the Elo-only model is trained,
    registered and promoted in the candidate's place (the baseline is not trained), serving the same signature."""
    rng = np.random.default_rng(3)
    frame = synthetic_matches(per_season=(300, 300, 300, 300, 1200))
    for column in set(FEATURES) - {"elo_diff"}:
        frame[column] = rng.normal(size=len(frame))
    train, evaluation = _split(frame)
    uri, name = tracking["tracking_uri"], "match_outcome_elo_only"
    features = list(FEATURES)
    candidate = _log(train, features, "xgboost", "noise-xgboost", tracking)

    def no_baseline():
        raise AssertionError("the baseline is not the better fallback here")

    elo_bar = elo_only_log_loss(train, evaluation, features)
    baseline_bar = baseline_log_loss(train, evaluation, features)
    assert elo_bar < baseline_bar
    outcome = gate_with_baseline_fallback(
        name, candidate, "xgboost", evaluation, features, tracking_uri=uri, baseline_logloss=baseline_bar,
        train_baseline=no_baseline, elo_only_logloss=elo_bar,
        train_elo_only=lambda: _log(train, features, ELO_ONLY_MODEL, "noise-elo", tracking))

    rejected, decision = outcome.rejected, outcome.decision
    assert outcome.fallback_model == ELO_ONLY_MODEL and not rejected.promoted
    assert any("Elo-only model" in reason for reason in rejected.failed), rejected.failed
    assert decision.promoted and decision.challenger_log_loss == elo_bar  # the fallback is that model: a tie
    client = registry_client(uri)
    tags = client.get_model_version(name, "2").tags
    assert (tags["gate.fallback_of"], tags["gate.fallback_model"]) == ("1", ELO_ONLY_MODEL)
    assert client.get_model_version(name, "1").tags["gate.fallback_version"] == "2"
    assert client.get_run(tags["mlflow_run_id"]).data.params["model.only_feature"] == "elo_diff"
    import mlflow

    served = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    assert served.metadata.get_input_schema().input_names() == features  # the service's signature
    why = str(describe_champion(name, tracking_uri=uri))
    assert "Elo-only model fallback of v1" in why and f"<= the Elo-only model's {elo_bar:.5f}" in why
    assert outcome.describe().startswith("Elo-only fallback v2 PROMOTED")


def test_each_family_is_gated_against_its_own_champion_and_the_configured_one_holds_champion(window, tracking):
    """Families (time2bet.ml.registry.family_aliases): with market-aware configured, an independent version is
    challenger-independent, then champion-independent; a market-aware one is challenger, then champion, judged against
    no champion (the independent one is another family's). When `champion` is held by another family (the
    configuration changed), it counts as none."""
    from time2bet.ml.registry import family_aliases, promote

    uri, name = tracking["tracking_uri"], "match_outcome_families"
    train, evaluation = window
    bar = baseline_log_loss(train, evaluation, FEATURES) + 0.01
    run = _log(train, FEATURES, ELO_ONLY_MODEL, "families", tracking)
    client = registry_client(uri)

    def gate(family):
        version = register_challenger(run.model_uri, name, {"mlflow_run_id": run.run_id}, tracking_uri=uri,
                                      family=family, champion_family="market-aware")
        assert client.get_model_version(name, version).tags["family"] == family
        assert str(client.get_registered_model(name).aliases[family_aliases(family, "market-aware")[1]]) == version
        return promotion_gate(name, version, evaluation, FEATURES, baseline_logloss=bar, tracking_uri=uri,
                              champion_family="market-aware")

    independent = gate("independent")
    assert independent.promoted and independent.champion_alias == "champion-independent"
    aware = gate("market-aware")
    assert aware.promoted and aware.champion_version is None and aware.champion_alias == CHAMPION
    assert "no market-aware champion yet" in aware.passed[0]
    assert client.get_registered_model(name).aliases == {"champion-independent": 1, CHAMPION: 2}
    assert str(describe_champion(name, tracking_uri=uri)).splitlines()[1] == "Model family: market-aware."

    promote(name, "1", "the configuration was independent", tracking_uri=uri)
    changed = gate("market-aware")
    assert changed.champion_version is None and changed.promoted   # v1 is not of its family
    assert str(client.get_model_version(name, "3").tags["champion.previous_version"]) == "1"
    assert family_aliases("independent") == (CHAMPION, CHALLENGER)
    with pytest.raises(ValueError, match="unknown model family"):
        family_aliases("odds-only")


def _decision(challenger: float, baseline: float, elo: float | None, failed=("worse",)) -> GateDecision:
    return GateDecision(name="m", challenger_version="1", champion_version=None, window="w", n=100,
                        challenger_log_loss=challenger, champion_log_loss=None, challenger_ece=0.0, ece_threshold=0.1,
                        baseline_log_loss=baseline, tolerance=TOLERANCE, max_ece=0.05, passed=(), failed=failed,
                        elo_only_log_loss=elo)


BOTH = {BASELINE_MODEL: object(), ELO_ONLY_MODEL: object()}


@pytest.mark.parametrize("model, decision, trainers, expected", [
    ("xgboost", _decision(1.07, 1.06, 1.05), BOTH, ELO_ONLY_MODEL),    # the lower of the two simpler models
    ("xgboost", _decision(1.07, 1.04, 1.05), BOTH, BASELINE_MODEL),
    ("xgboost", _decision(1.07, 1.05, 1.05), BOTH, ELO_ONLY_MODEL),    # a tie goes to the simpler
    ("xgboost", _decision(1.07, 1.08, 1.05), {BASELINE_MODEL: object()}, None),  # no Elo-only trainer given
    ("xgboost", _decision(1.07, 1.08, None), BOTH, None),              # no ratings: no Elo-only model
    ("xgboost", _decision(1.03, 1.04, 1.05), BOTH, None),              # rejected for another reason
    ("xgboost", _decision(1.07, 1.06, 1.05, failed=()), BOTH, None),   # promoted
    (BASELINE_MODEL, _decision(1.06, 1.06, 1.05), BOTH, ELO_ONLY_MODEL),  # the baseline itself falls to Elo-only
    (BASELINE_MODEL, _decision(1.06, 1.06, 1.07), BOTH, None),
    (ELO_ONLY_MODEL, _decision(1.05, 1.06, 1.05), BOTH, None),
])
def test_the_fallback_ladder_picks_the_best_simpler_model(model, decision, trainers, expected):
    assert _fallback(decision, model, trainers) == expected
