"""On the sample platform (what `make demo` trains), the champion is no worse on the gate window than the Elo-only
model, and the service's /model/info and `time2bet why` show both figures."""

from __future__ import annotations

from click.testing import CliRunner

from time2bet.cli.main import main


def test_the_sample_champion_is_no_worse_than_the_elo_only_model_and_says_so(platform_env, client):
    from time2bet.mlflow_store import registry_client
    from time2bet.serving_contract import CHAMPION, MODEL_NAME

    info = client.get("/model/info").json()
    registry = registry_client(platform_env["MLFLOW_TRACKING_URI"])
    assert info["version"] == str(registry.get_model_version_by_alias(MODEL_NAME, CHAMPION).version)
    tags = registry.get_model_version(MODEL_NAME, info["version"]).tags
    champion, elo_only = float(tags["gate.challenger_log_loss"]), float(tags["gate.elo_only_log_loss"])
    assert tags["gate.decision"] == "promoted" and champion <= elo_only, (champion, elo_only)
    # /model/info: the serving model's run metrics carry the gate's figures on the same window
    assert (info["metrics"]["gate.log_loss"], info["metrics"]["gate.elo_only_log_loss"]) == (champion, elo_only)
    assert info["metrics"]["gate.n"] == float(tags["gate.n"])

    why = CliRunner().invoke(main, ["why"], env=platform_env)
    assert why.exit_code == 0, why.output
    assert f"v{info['version']} is champion" in why.output
    assert (f"Simplest-model floor: gate-window log-loss {champion:.5f} <= the Elo-only model's {elo_only:.5f}"
            in why.output), why.output
