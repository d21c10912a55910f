"""The `time2bet` command line drives the real platform: sample site, ingestion, status."""

from __future__ import annotations

from click.testing import CliRunner

from time2bet.cli.main import main
from time2bet.source.mirror import ReplayServer
from time2bet.source.sample_site import DEFAULT_AS_OF


def test_sample_site_then_ingest_then_status(tmp_path, monkeypatch):
    runner = CliRunner()
    site = tmp_path / "site"
    out = runner.invoke(main, ["sample-site", str(site)])
    assert out.exit_code == 0, out.output
    assert (site / "mmz4281").is_dir()
    with ReplayServer(site, as_of=DEFAULT_AS_OF) as server:
        monkeypatch.setenv("TIME2BET_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
        monkeypatch.setenv("TIME2BET_SOURCE_URL", server.url)
        out = runner.invoke(main, ["ingest", "--divisions", "E0,D1", "--seasons", "2023-24:2024-25"])
    assert out.exit_code == 0, out.output
    assert "season files published" in out.output
    status = runner.invoke(main, ["status"])
    assert status.exit_code == 0, status.output
    assert "in 4 division-seasons" in status.output
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").exists()


def test_unknown_division_is_a_clear_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TIME2BET_HOME", str(tmp_path))
    monkeypatch.setenv("TIME2BET_SOURCE_URL", "http://127.0.0.1:9")
    out = CliRunner().invoke(main, ["ingest", "--divisions", "XX9"])
    assert out.exit_code != 0
    assert "XX9" in out.output


def test_train_family_is_one_of_the_families_and_not_for_a_division(tmp_path, monkeypatch):
    """`time2bet train --family` takes the model families only, and a division's model is not one to choose: both
    refused before anything runs (the family's training itself: tests/time2bet_assets/test_market_family.py)."""
    monkeypatch.setenv("TIME2BET_HOME", str(tmp_path))
    unknown = CliRunner().invoke(main, ["train", "--family", "odds-only"])
    assert unknown.exit_code == 2 and "'independent', 'market-aware'" in unknown.output
    division = CliRunner().invoke(main, ["train", "--division", "E0", "--family", "market-aware"])
    assert division.exit_code == 2 and "--family trains the pooled model" in division.output
    assert not (tmp_path / "dagster").exists()
