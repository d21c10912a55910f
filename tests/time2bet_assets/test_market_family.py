"""The market-aware family in the platform's own training (issue 16): candidate_model and registered_model, run by
Dagster with the run config `time2bet train --family market-aware` gives, on the session's sample platform (its
warehouse, read only) and a private registry holding the platform's independent champion. The run, the registered
version and the gate say "market-aware"; the model reads the market-implied ratings; the gate compares it with its
own family only: the independent champion keeps `champion` and is not the one it was judged against."""

from __future__ import annotations

import dataclasses

import dagster as dg

from time2bet.features.market_ratings import MARKET_RATING_FEATURES
from time2bet.mlflow_store import registry_client
from time2bet.serving_contract import CHALLENGER, CHAMPION, FAMILY_TAG, MODEL_FEATURES, MODEL_NAME


def test_a_market_aware_model_is_trained_tagged_and_gated_within_its_family(settings, tmp_path):
    import mlflow

    from time2bet_assets.defs.ml.assets import candidate_model, registered_model, training_dataset
    from time2bet_assets.defs.ml.resources import ml_resources

    ours = dataclasses.replace(settings, home=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                               mlflow_artifacts=str(tmp_path / "artifacts"))
    assert ours.model_family == "independent"   # the configured family: it holds `champion`
    platform = registry_client(settings.mlflow_tracking_uri)
    files = platform.get_model_version_download_uri(   # the platform's champion, registered here from its files
        MODEL_NAME, platform.get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    client = registry_client(ours.mlflow_tracking_uri)
    client.create_registered_model(MODEL_NAME)
    independent = client.create_model_version(MODEL_NAME, files, tags={FAMILY_TAG: "independent"}).version
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, independent)

    resources = {k: v for k, v in ml_resources(ours).items() if k in ("mlflow", "registry", "datasets", "gate",
                                                                       "hyperparameters", "warehouse")}
    result = dg.materialize([training_dataset, candidate_model, registered_model], resources=resources,
                            run_config={"ops": {"candidate_model": {"config": {"family": "market-aware"}}}})
    assert result.success
    candidate = result.output_for_node("candidate_model")
    registered = result.output_for_node("registered_model")
    assert candidate["family"] == registered["family"] == "market-aware"

    run = client.get_run(candidate["run_id"])
    assert run.data.tags[FAMILY_TAG] == run.data.params[FAMILY_TAG] == "market-aware"
    inputs = mlflow.models.get_model_info(candidate["model_uri"]).signature.inputs.input_names()
    assert inputs == [*MODEL_FEATURES, *MARKET_RATING_FEATURES]

    model = client.get_registered_model(MODEL_NAME)
    version = client.get_model_version(MODEL_NAME, registered["version"])
    assert version.tags[FAMILY_TAG] == version.tags["gate.family"] == "market-aware"
    # judged against no champion: the independent one is another family's
    assert version.tags["gate.champion_version"] == "" and "no market-aware champion yet" in version.tags["gate.passed"]
    assert model.aliases[CHAMPION] == int(independent) and CHALLENGER not in model.aliases
    alias = "champion-market-aware" if registered["promoted"] else "challenger-market-aware"
    assert model.aliases[alias] == int(registered["version"])
    for number in range(int(independent) + 1, int(registered["version"]) + 1):   # a fallback too: same family
        assert client.get_model_version(MODEL_NAME, str(number)).tags[FAMILY_TAG] == "market-aware"
