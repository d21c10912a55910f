"""Champion/challenger policy on a temporary SQLite registry, with models trained on synthetic matches.

The evaluation window is one later season of 1200 matches: class-wise ECE has a sampling noise of about
0.03 at 300 matches, which would make the max_ece=0.05 check a coin toss.
"""

from __future__ import annotations

import numpy as np
import pytest

from time2bet.ml.promotion_gate import gate_with_baseline_fallback, promotion_gate
from time2bet.ml.registry import describe_champion, promote, register_challenger, rollback
from time2bet.ml.tracking import log_training_run
from time2bet.ml.training import baseline_log_loss, train_candidate
from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import CHALLENGER, CHAMPION

from .synthetic import FEATURES, SEASONS, WEAK_FEATURES, synthetic_matches


@pytest.fixture(scope="module")
def window():
    frame = synthetic_matches(per_season=(300, 300, 300, 300, 1200))
    return frame[frame["season"].isin(SEASONS[:4])], frame[frame["season"] == SEASONS[4]]


@pytest.fixture(scope="module")
def logged(window, tracking):
    """Three logged models: weak (rest days and points only), shuffled (full features, labels permuted,
    so it learnt nothing) and full (every feature)."""
    train, _ = window
    shuffled = train.assign(result=np.random.default_rng(1).permutation(train["result"].to_numpy()))
    uris = {}
    for label, frame, features in (("weak", train, WEAK_FEATURES), ("shuffled", shuffled, FEATURES),
                                   ("full", train, FEATURES)):
        result = train_candidate(frame, features, "logreg", n_folds=2)
        run = log_training_run(result, frame, data_version=f"synthetic-{label}", experiment="test_registry",
                               **tracking)
        uris[label] = run.model_uri
    return uris


def _aliases(name, tracking_uri):
    from time2bet.mlflow_store import registry_client

    return {alias: str(v) for alias, v in registry_client(tracking_uri).get_registered_model(name).aliases.items()}


def _tags(name, version, tracking_uri):
    from time2bet.mlflow_store import registry_client

    return registry_client(tracking_uri).get_model_version(name, version).tags


def test_champion_lifecycle(window, logged, tracking):
    uri = tracking["tracking_uri"]
    name = "match_outcome_lifecycle"
    train, evaluation = window
    full_baseline = baseline_log_loss(train, evaluation, FEATURES)

    # 1. no champion yet: the first challenger that passes becomes champion
    v1 = register_challenger(logged["weak"], name, {"data_version": "synthetic-weak"}, tracking_uri=uri)
    assert _aliases(name, uri) == {CHALLENGER: v1}
    first = promotion_gate(name, v1, evaluation, WEAK_FEATURES, tracking_uri=uri,
                           baseline_logloss=baseline_log_loss(train, evaluation, WEAK_FEATURES))
    assert first.promoted and first.champion_version is None and first.n == 1200
    assert first.challenger_log_loss == first.baseline_log_loss  # it *is* the baseline: a tie passes
    assert _aliases(name, uri) == {CHAMPION: v1}

    # 2. a model that learnt nothing (shuffled labels) never becomes champion
    v2 = register_challenger(logged["shuffled"], name, tracking_uri=uri)
    worse = promotion_gate(name, v2, evaluation, FEATURES, baseline_logloss=full_baseline, tracking_uri=uri)
    assert not worse.promoted
    assert worse.champion_version == v1 and worse.challenger_log_loss > worse.champion_log_loss + 0.002
    assert any("champion v" in reason for reason in worse.failed)
    assert any("baseline" in reason for reason in worse.failed)
    assert _aliases(name, uri) == {CHAMPION: v1, CHALLENGER: v2}
    tags = _tags(name, v2, uri)
    assert tags["gate.decision"] == "rejected" and tags["gate.champion_version"] == v1
    assert float(tags["gate.challenger_log_loss"]) == worse.challenger_log_loss
    assert float(tags["gate.baseline_log_loss"]) == full_baseline and tags["gate.tolerance"] == "0.002"

    # 3. a better challenger replaces the champion, judged on the same window
    v3 = register_challenger(logged["full"], name, tracking_uri=uri)
    better = promotion_gate(name, v3, evaluation, FEATURES, baseline_logloss=full_baseline, tracking_uri=uri)
    assert better.promoted, better.describe()
    assert better.challenger_log_loss < better.champion_log_loss == first.challenger_log_loss
    assert _aliases(name, uri) == {CHAMPION: v3}

    why = describe_champion(name, tracking_uri=uri)
    assert (why.version, why.previous_version) == (v3, v1)
    assert why.gate["decision"] == "promoted" and why.gate["n"] == "1200"
    assert float(why.gate["champion_log_loss"]) == better.champion_log_loss
    assert "passed the promotion gate" in why.reason and f"v{v3} is champion" in str(why)

    # 4. rollback returns to the previous champion and says so; a second rollback undoes the first
    assert rollback(name, "alerts on live log-loss", tracking_uri=uri) == v1
    assert _aliases(name, uri)[CHAMPION] == v1
    back = describe_champion(name, tracking_uri=uri)
    assert back.previous_version == v3 and back.reason == f"rollback from v{v3}: alerts on live log-loss"
    assert "back to v" in _tags(name, v3, uri)["champion.rolled_back"]
    assert any("rollback: champion v3 -> v1" in event for event in back.audit)

    assert rollback(name, "false alarm", tracking_uri=uri) == v3
    assert _aliases(name, uri)[CHAMPION] == v3
    assert "champion.rolled_back" not in _tags(name, v3, uri)
    audit = describe_champion(name, tracking_uri=uri).audit  # "<UTC time> <event>: ..."
    assert [event.split(" ")[1].rstrip(":") for event in audit] == [
        "register", "gate", "promote", "register", "gate", "register", "gate", "promote", "rollback", "rollback",
    ]
    assert logged["shuffled"] in audit[3] and "rejected" in audit[4]


def test_gate_rejects_a_poorly_calibrated_first_challenger(window, logged, tracking):
    uri = tracking["tracking_uri"]
    name = "match_outcome_ece"
    _train, evaluation = window
    version = register_challenger(logged["full"], name, tracking_uri=uri)
    # home and away results swapped: the model's probabilities no longer match the observed frequencies,
    # far beyond the noise a calibrated model shows on this window (log-loss checks made moot on purpose)
    swapped = evaluation.assign(result=evaluation["result"].map({"H": "A", "D": "D", "A": "H"}))
    decision = promotion_gate(name, version, swapped, FEATURES, max_ece=0.001, tracking_uri=uri,
                              baseline_logloss=10.0)
    assert not decision.promoted and len(decision.failed) == 1 and "ECE" in decision.failed[0]
    assert "REJECTED" in decision.describe()
    with pytest.raises(LookupError):
        describe_champion(name, tracking_uri=uri)


def test_manual_promotion_and_nothing_to_roll_back_to(logged, tracking):
    uri = tracking["tracking_uri"]
    name = "match_outcome_manual"
    version = register_challenger(logged["weak"], name, tracking_uri=uri)
    assert promote(name, version, "bootstrap", tracking_uri=uri) is None
    assert describe_champion(name, tracking_uri=uri).reason == "bootstrap"
    with pytest.raises(ValueError, match="already champion"):
        promote(name, version, "again", tracking_uri=uri)
    with pytest.raises(LookupError, match="nothing to roll back to"):
        rollback(name, tracking_uri=uri)


def _log(frame, features, model_name, label, tracking):
    """Train and log a candidate as candidate_model does (walk-forward CV inside the window, MLflow run)."""
    result = train_candidate(frame, features, model_name, n_folds=2)
    return log_training_run(result, frame, data_version=f"synthetic-{label}", experiment="test_registry", **tracking)


def test_baseline_fallback_when_the_baseline_beats_the_chosen_candidate(window, tracking):
    uri = tracking["tracking_uri"]
    name = "match_outcome_fallback"
    train, evaluation = window
    # XGBoost on a few hundred matches a season of a linear signal: worse than logistic regression
    candidate = _log(train, FEATURES, "xgboost", "xgboost", tracking)
    outcome = gate_with_baseline_fallback(
        name, candidate, "xgboost", evaluation, FEATURES, tracking_uri=uri, tags={"data_version": "synthetic"},
        baseline_logloss=baseline_log_loss(train, evaluation, FEATURES),
        train_baseline=lambda: _log(train, FEATURES, "logreg", "fallback", tracking))

    rejected, decision = outcome.rejected, outcome.decision
    assert rejected is not None and not rejected.promoted and rejected.challenger_version == "1"
    assert rejected.challenger_log_loss > rejected.baseline_log_loss
    assert [reason for reason in rejected.failed if "baseline" in reason]
    assert decision.promoted and outcome.version == "2" and decision.champion_version is None
    assert decision.challenger_log_loss == decision.baseline_log_loss  # the fallback is the baseline: a tie
    assert _aliases(name, uri) == {CHAMPION: "2"}

    first, fallback = _tags(name, "1", uri), _tags(name, "2", uri)
    assert first["gate.decision"] == "rejected" and first["gate.fallback_version"] == "2"
    assert fallback["gate.decision"] == "promoted" and fallback["gate.fallback_of"] == "1"
    assert fallback["data_version"] == first["data_version"] == "synthetic"
    assert first["mlflow_run_id"] == candidate.run_id != fallback["mlflow_run_id"]
    client = registry_client(uri)
    assert client.get_run(fallback["mlflow_run_id"]).data.params["model_name"] == "logreg"
    assert "registered instead as v2" in client.get_model_version(name, "1").description
    assert "baseline fallback of v1" in client.get_model_version(name, "2").description
    why = describe_champion(name, tracking_uri=uri)
    assert why.gate["fallback_of"] == "1" and "baseline fallback of v1" in str(why)
    assert any("baseline fallback: v1 (xgboost)" in event for event in why.audit)
    assert outcome.describe().startswith("Baseline fallback v2 PROMOTED")


def test_no_fallback_when_the_candidate_passes(window, tracking):
    uri = tracking["tracking_uri"]
    name = "match_outcome_no_fallback"
    train, evaluation = window
    candidate = _log(train, FEATURES, "xgboost", "xgboost-pass", tracking)

    def no_fallback():
        raise AssertionError("the baseline must not be trained when the candidate passes")

    # against a baseline on the weak features only, the candidate is the better model
    outcome = gate_with_baseline_fallback(
        name, candidate, "xgboost", evaluation, FEATURES, tracking_uri=uri, train_baseline=no_fallback,
        baseline_logloss=baseline_log_loss(train, evaluation, WEAK_FEATURES))
    assert outcome.rejected is None and outcome.decision.promoted and outcome.version == "1"
    assert _aliases(name, uri) == {CHAMPION: "1"}
    assert "gate.fallback_version" not in _tags(name, "1", uri)
    assert outcome.describe() == outcome.decision.describe()


def test_an_automatic_training_says_why_in_the_audit_trail(window, logged, tracking):
    """The retraining sensor's reason (run tag -> registered_model -> the gate) lands in the audit trail and on the
    champion it promoted."""
    uri, name = tracking["tracking_uri"], "match_outcome_automatic"
    train, evaluation = window
    why = "automatic: new season: matches of 2025-26 loaded; the last training saw seasons up to 2024-25"
    version = register_challenger(logged["full"], name, tracking_uri=uri)
    decision = promotion_gate(name, version, evaluation, FEATURES, baseline_logloss=baseline_log_loss(
        train, evaluation, FEATURES), tracking_uri=uri, training_reason=why)
    assert decision.promoted, decision.describe()
    champion = describe_champion(name, tracking_uri=uri)
    assert champion.reason.startswith(f"{why}; passed the promotion gate")
    assert any(event.endswith(f"trained because {why}") for event in champion.audit if " gate v" in event)
    assert any(f"promote: champion v- -> v{version}: {why}" in event for event in champion.audit)
