"""What monitoring reads about a version, on the session's sample platform: the promotion-time estimate the gate
wrote, the training window its run names, and the Elo-only reference its training run logged, which is the very
reference refitting on that window gives (the fallback for versions trained before runs logged it)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from time2bet.ml.training import fit_reference, reference_parameters, reference_probabilities
from time2bet.mlflow_store import registry_client
from time2bet.monitoring.versions import alias_version, elo_reference, training_window, version_facts
from time2bet.warehouse.client import Warehouse


@pytest.fixture(scope="module")
def champion(settings):
    client = registry_client(settings.mlflow_tracking_uri)
    version = alias_version(client, settings.model_name)
    assert version is not None, "the sample platform has no champion"
    return client, version_facts(client, settings.model_name, version)


def test_the_gate_estimate_and_the_training_window_of_the_champion(settings, champion):
    client, facts = champion
    tags = client.get_model_version(settings.model_name, facts.version).tags
    assert facts.promotion_log_loss == float(tags["gate.challenger_log_loss"])
    assert facts.gate_n == int(tags["gate.n"]) and facts.data_version == tags["data_version"]
    assert facts.train_seasons == ("2020-21", "2023-24") and facts.held_out_season == "2024-25"
    assert facts.reference_feature == "elo_diff"
    wh = Warehouse.from_url(settings.warehouse_url)
    window = training_window(facts, wh, settings.home / "datasets")          # the run's dataset snapshot
    assert set(window["season"]) == {"2020-21", "2021-22", "2022-23", "2023-24"}
    from_warehouse = training_window(facts, wh, None)                        # without it: fct_match_features
    assert window["match_id"].tolist() == from_warehouse["match_id"].tolist()


def test_the_reference_the_run_logged_is_the_one_refitting_gives(settings, champion):
    client, facts = champion
    wh = Warehouse.from_url(settings.warehouse_url)
    window = training_window(facts, wh, settings.home / "datasets")
    logged, source = elo_reference(client, facts, lambda: pytest.fail("the logged reference needs no window"))
    assert source == "logged" and logged["feature"] == "elo_diff"
    refitted, source = elo_reference(client, dataclasses.replace(facts, run_id=None), lambda: window)
    assert source == "refitted"
    for key in ("coef", "intercept", "impute_value", "classes"):
        assert np.allclose(logged[key], refitted[key], rtol=0, atol=1e-9), key
    pipeline = fit_reference(window, "elo_diff")
    assert np.allclose(reference_probabilities(logged, window), pipeline.predict_proba(window[["elo_diff"]]),
                       rtol=0, atol=1e-9)
    assert reference_parameters(pipeline, "elo_diff")["classes"] == [0, 1, 2]
    none, source = elo_reference(client, dataclasses.replace(facts, run_id=None), None)
    assert (none, source) == (None, "none")
