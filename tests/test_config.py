"""The composed configuration (conf/, Hydra): every environment resolves, prod points at the production stores,
variables still override, secrets come from the environment only and never show."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from omegaconf import OmegaConf

from time2bet.cli.main import main
from time2bet.settings import CONF_DIR, ENVIRONMENTS, VARIABLES, Settings, load_config

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "pa:ss@w0rd-not-in-files"


@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.setenv("TIME2BET_PG_PASSWORD", PASSWORD)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_environment_resolves_to_settings(environment, secrets, tmp_path):
    settings = Settings.from_env({"TIME2BET_HOME": str(tmp_path)}, environment=environment)
    assert settings.environment == environment
    assert OmegaConf.is_missing(load_config({}, environment=environment), "environment") is False
    assert settings.hyperparameters["xgboost"]["learning_rate"] > 0 and settings.gate_policy["n_folds"] >= 1


def test_prod_points_at_postgres_s3_and_redis(secrets, tmp_path):
    prod = Settings.from_env({"TIME2BET_HOME": str(tmp_path)}, environment="prod")
    assert prod.warehouse_url.startswith("postgresql://") and PASSWORD in prod.warehouse_url
    assert prod.raw_zone.startswith("s3://") and prod.s3_endpoint_url.startswith("http")
    assert prod.mlflow_artifacts.startswith("s3://") and prod.mlflow_tracking_uri.startswith("http")
    assert prod.redis_url.startswith("redis://") and "127.0.0.1" not in prod.redis_url
    assert prod.dagster_postgres
    assert prod.feast_online_store == "redis"


def test_no_environment_chosen_is_dev_and_equals_the_built_in_defaults(tmp_path):
    """The default keeps today's behaviour: the dev configuration gives exactly the settings the variables alone
    (over the built-in defaults) give."""
    env = {"TIME2BET_HOME": str(tmp_path)}
    configured, built_in = Settings.from_env(env), Settings.from_variables(env)
    assert configured.environment == "dev"
    config_only = {"environment", "hyperparameters", "gate_policy"}
    assert {f.name: getattr(configured, f.name) for f in dataclasses.fields(Settings) if f.name not in config_only} \
        == {f.name: getattr(built_in, f.name) for f in dataclasses.fields(Settings) if f.name not in config_only}


def test_dev_hyperparameters_and_gate_are_the_code_defaults():
    from time2bet.ml.training import LOGREG_PARAMS, XGB_PARAMS
    from time2bet_assets.defs.ml.resources import GatePolicy

    dev = Settings.from_env({})
    assert dev.hyperparameters["logreg"] == LOGREG_PARAMS and dev.hyperparameters["xgboost"] == XGB_PARAMS
    assert dev.gate_policy == GatePolicy().model_dump()


def test_variables_override_the_environment_and_hydra_overrides_apply(secrets, tmp_path):
    env = {"TIME2BET_HOME": str(tmp_path), "TIME2BET_WAREHOUSE_URL": "duckdb:///elsewhere.duckdb",
           "TIME2BET_CHALLENGER_SHARE": ""}   # empty: unset, as before
    prod = Settings.from_env(env, environment="prod", overrides=["serving.max_in_flight=7"])
    assert prod.warehouse_url == "duckdb:///elsewhere.duckdb"
    assert (prod.challenger_share, prod.max_in_flight) == (0.1, 7)
    assert Settings.from_env({**env, "TIME2BET_ENV": "staging"}).environment == "staging"


def test_a_missing_secret_or_an_unknown_environment_is_refused_clearly(monkeypatch, tmp_path):
    monkeypatch.delenv("TIME2BET_PG_PASSWORD", raising=False)
    with pytest.raises(ValueError, match="TIME2BET_PG_PASSWORD"):
        Settings.from_env({"TIME2BET_HOME": str(tmp_path)}, environment="prod")
    with pytest.raises(ValueError, match="TIME2BET_ENV"):
        Settings.from_env({"TIME2BET_ENV": "qa"})


def test_no_secret_is_written_in_the_configuration_files():
    for path in CONF_DIR.rglob("*.yaml"):
        for line in path.read_text().splitlines():
            key, _, value = line.split("#")[0].partition(":")
            if re.search(r"password|secret|token", key, re.IGNORECASE):
                assert "${oc.env:" in value, f"{path.relative_to(REPO)}: {line.strip()}"


def test_every_variable_names_a_key_of_the_configuration():
    dev = load_config({})
    missing = [key for key in VARIABLES.values() if OmegaConf.select(dev, key, default="<absent>") == "<absent>"]
    assert not missing


def test_config_show_prints_the_resolved_configuration_with_secrets_masked(secrets, monkeypatch):
    monkeypatch.setenv("TIME2BET_REDIS_URL", "redis://:hunter2@cache:6379/0")
    result = CliRunner().invoke(main, ["config", "show", "--env", "prod", "serving.max_in_flight=9"])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output and "hunter2" not in result.output
    assert "url: postgresql://time2bet:***@postgres:5432/time2bet" in result.output
    assert "max_in_flight: 9" in result.output and "environment: prod" in result.output
    assert "serving.redis_url is overridden by TIME2BET_REDIS_URL=redis://:***@cache:6379/0" in result.output
