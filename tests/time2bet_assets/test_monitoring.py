"""The monitoring area on a replay of the sample site, end to end, with nothing of ours replaced.

A platform of its own is built as of DEFAULT_AS_OF (a champion, predictions of the next round). Predictions of that
round go to the ledger through LedgerWriter as the service writes them: an early one, the last one before kickoff,
and one made after the first match day had begun. The site is then replayed two weeks later, so the round is
played (ingest, then the features job). Then prediction_ledger loads and anchors the ledger's day, the monitor job
scores the kickoff week and reports its drift, and live_quality is run again on a deliberately bad set of
predictions with a lower minimum of matches. Last, a truncated and an edited segment make the ledger's load fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import dagster as dg
import numpy as np
import orjson
import pandas as pd
import pytest

from time2bet.ledger import LedgerRecord, LedgerWriter, match_key, new_prediction_id, read_records, segments
from time2bet.ml import metrics
from time2bet.ml.training import reference_probabilities
from time2bet.monitoring import store
from time2bet.settings import Settings
from time2bet.warehouse.client import Warehouse

WEEK = "2025-02-24"            # Monday of the kickoff week of the sample platform's next round (2025-03-01/02)
LATER = dt.timedelta(days=14)  # the replay: that round is played by then
EARLY = dt.datetime(2025, 2, 26, 9, 0, tzinfo=dt.UTC)
LAST = dt.datetime(2025, 2, 28, 18, 0, tzinfo=dt.UTC)
MATCH_DAY = dt.datetime(2025, 3, 1, 11, 0, tzinfo=dt.UTC)   # after the 1 March matches' day began: not for them
P = ["p_home", "p_draw", "p_away"]


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _record(rows: pd.DataFrame, p: np.ndarray, as_of: dt.datetime, variant: str = "champion") -> LedgerRecord:
    days = pd.to_datetime(rows["match_date"]).dt.date.tolist()
    return LedgerRecord(
        prediction_id=new_prediction_id(), created_at=dt.datetime.now(dt.UTC), as_of=as_of, source="service:/predict",
        model_name=rows["model_name"].iloc[0], model_version=str(rows["model_version"].iloc[0]), model_alias=variant,
        variant=variant, data_version=rows["data_version"].iloc[0], features_as_of=dt.date(2025, 2, 9),
        match_key=[match_key(*k) for k in zip(rows["division"], days, rows["home_team"], rows["away_team"])],
        match_id=rows["match_id"].tolist(), kickoff_date=days,
        p_home=p[:, 0].tolist(), p_draw=p[:, 1].tolist(), p_away=p[:, 2].tolist())


def _write(ledger_dir: Path, writer: str, records: list[LedgerRecord]) -> None:
    w = LedgerWriter(ledger_dir, writer, autostart=False)
    for r in records:
        assert w.append(r)
    w.close()
    assert w.written == len(records) and not w.dropped


def _replay(env: dict[str, str], site: Path, as_of: dt.date, instance: dg.DagsterInstance) -> None:
    """Ingest the site replayed as of ``as_of`` and build the features (no training: the champion stays)."""
    from time2bet.cli.main import run_ingest
    from time2bet.source.mirror import ReplayServer
    from time2bet_assets.definitions import build_definitions

    with ReplayServer(site, as_of=as_of) as server, _environment({**env, "TIME2BET_SOURCE_URL": server.url}):
        settings = Settings.from_env()
        assert run_ingest(settings, None, None, True)
        result = build_definitions(settings).resolve_job_def("build_features").execute_in_process(
            instance=instance, raise_on_error=False)
        assert result.success


@dataclasses.dataclass
class Replayed:
    settings: Settings
    instance: dg.DagsterInstance
    defs: dg.Definitions
    predicted: pd.DataFrame   # the round as predicted: champion's table rows
    expected: pd.DataFrame    # per match: the probabilities that must be scored for the champion


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, platform_builder) -> Replayed:
    from time2bet.source.sample_site import DEFAULT_AS_OF
    from time2bet_assets.definitions import build_definitions

    root = tmp_path_factory.mktemp("monitoring")
    env = platform_builder(root)
    settings = Settings.from_env(env)
    wh = Warehouse.from_url(settings.warehouse_url)
    predicted = wh.read_sql("SELECT * FROM predictions.upcoming_matches WHERE variant = 'champion' "
                            "ORDER BY match_date, match_id")
    assert len(predicted) and set(pd.to_datetime(predicted["match_date"]).dt.date) == {dt.date(2025, 3, 1),
                                                                                       dt.date(2025, 3, 2)}
    table_p = predicted[P].to_numpy()
    early_p = np.roll(table_p, 1, axis=1)          # something else, superseded by the last one before kickoff
    day_p = np.full_like(table_p, 1 / 3)           # made on 1 March, 11:00 UTC: too late for that day's matches
    _write(settings.ledger_dir, "svc-monitoring-test",
           [_record(predicted, early_p, EARLY), _record(predicted, table_p, LAST), _record(predicted, day_p, MATCH_DAY)])
    second_day = pd.to_datetime(predicted["match_date"]).dt.date == dt.date(2025, 3, 2)
    expected = predicted[["match_id", "division", "match_date"]].copy()
    expected[P] = np.where(second_day.to_numpy()[:, None], day_p, table_p)

    instance = dg.DagsterInstance.from_config(str(settings.dagster_home))
    _replay(env, root / "site", DEFAULT_AS_OF + LATER, instance)
    return Replayed(settings, instance, build_definitions(settings), predicted, expected)


def _days(settings: Settings) -> list[str]:
    return sorted({p.parent.name for paths in segments(settings.ledger_dir).values() for p in paths})


def _load_ledger(r: Replayed, day: str) -> dg.ExecuteInProcessResult:
    return r.defs.resolve_job_def("load_prediction_ledger").execute_in_process(
        instance=r.instance, partition_key=day, raise_on_error=False)


def _failure(result: dg.ExecuteInProcessResult) -> str:
    [event] = [e for e in result.all_events if e.is_step_failure]
    return event.step_failure_data.user_failure_data.description


def _prom(settings: Settings) -> str:
    return (settings.home / "monitoring" / "metrics.prom").read_text()


@pytest.fixture(scope="module")
def loaded(replayed):
    """Every ledger day loaded and anchored (the platform's batch run and the service's records)."""
    results = {day: _load_ledger(replayed, day) for day in _days(replayed.settings)}
    assert all(r.success for r in results.values())
    return results


def test_the_ledger_day_is_verified_loaded_and_anchored(replayed, loaded):
    settings = replayed.settings
    wh = Warehouse.from_url(settings.warehouse_url)
    for day, result in loaded.items():
        [materialization] = result.asset_materializations_for_node("prediction_ledger")
        md = materialization.metadata
        records = read_records(settings.ledger_dir, day)
        assert md["dagster/row_count"].value == len(records)
        loaded_rows = wh.read_sql(f"SELECT count(*) AS n FROM {store.LEDGER_TABLE} WHERE day = DATE '{day}'")
        assert int(loaded_rows["n"].iloc[0]) == len(records)
        anchors = md["anchors"].value
        assert set(anchors) == set(records["writer"])
        for head in anchors.values():   # the day's heads: each segment's last record
            last = orjson.loads((settings.ledger_dir / head["segment"]).read_bytes().splitlines()[-1])
            assert (head["seq"], head["hash"]) == (last["seq"], last["hash"])
        assert "all intact" in md["verification"].value
    assert "svc-monitoring-test" in {w for r in loaded.values()
                                     for w in r.asset_materializations_for_node("prediction_ledger")[0]
                                     .metadata["anchors"].value}
    prom = _prom(settings)
    assert "time2bet_ledger_verified{" in prom and 'time2bet_freshness_seconds{stage="features"}' in prom


@pytest.fixture(scope="module")
def monitored(replayed, loaded):
    result = replayed.defs.resolve_job_def("monitor").execute_in_process(
        instance=replayed.instance, partition_key=WEEK, raise_on_error=False)
    assert result.success
    return result


def _direct(replayed: Replayed) -> dict[str, float]:
    """The champion's week figures computed here, on the rows the join must pick: time2bet.ml.metrics on them."""
    from time2bet.mlflow_store import registry_client
    from time2bet.monitoring.versions import logged_reference, version_facts

    wh = Warehouse.from_url(replayed.settings.warehouse_url)
    played = wh.read_sql("SELECT * FROM analytics.stg_matches WHERE match_date BETWEEN DATE '2025-03-01' AND "
                         "DATE '2025-03-02'")
    rows = replayed.expected.merge(played[["match_id", "result", "market_odds_home", "market_odds_draw",
                                           "market_odds_away"]], on="match_id")
    y, p = metrics.encode_outcomes(rows["result"]), rows[P].to_numpy()
    market = metrics.demargin(rows["market_odds_home"], rows["market_odds_draw"], rows["market_odds_away"])
    version = str(replayed.predicted["model_version"].iloc[0])
    client = registry_client(replayed.settings.mlflow_tracking_uri)
    reference = logged_reference(client, version_facts(client, replayed.settings.model_name, version))
    ratings = wh.read_sql("SELECT match_id, elo_diff FROM analytics.fct_match_features")
    x = rows[["match_id"]].merge(ratings, on="match_id")
    elo = reference_probabilities(reference, x)
    return {"n": len(rows), **metrics.evaluate(y, p), "market_log_loss": metrics.log_loss(y, market),
            "elo_log_loss": metrics.log_loss(y, elo), "n_elo": len(x), "version": version}


def test_live_quality_scores_the_last_prediction_before_kickoff_beside_market_and_elo(replayed, monitored):
    settings = replayed.settings
    [md] = [m.metadata for m in monitored.asset_materializations_for_node("live_quality")]
    n = len(replayed.predicted)
    assert md["scored"].value == n                                   # every played predicted match, once
    first_day = (pd.to_datetime(replayed.predicted["match_date"]).dt.date == dt.date(2025, 3, 1)).sum()
    # left out: the 1 March ones made on 1 March, and the platform's own batch run (as_of: its wall clock, 2026)
    assert md["after_kickoff_excluded"].value == first_day + n
    assert md["superseded"].value == n + (n - first_day)              # EARLY for all, LAST for the 2 March ones
    assert md["elo_reference"].value == {f"match_outcome v{replayed.predicted['model_version'].iloc[0]}": "logged"}
    table = Warehouse.from_url(settings.warehouse_url).read_sql(f"SELECT * FROM {store.LIVE_QUALITY_TABLE}")
    week = table[(table["window"] == "week") & (table["division"] == "ALL") & (table["variant"] == "champion")]
    [row] = week.to_dict("records")
    direct = _direct(replayed)
    assert row["model_version"] == direct["version"] and row["n"] == direct["n"] == n
    for name in ("log_loss", "rps", "brier", "accuracy", "ece", "ece_home", "ece_draw", "ece_away", "market_log_loss",
                 "elo_log_loss", "n_elo"):
        assert row[name] == pytest.approx(direct[name], abs=1e-9), name
    assert row["n_with_odds"] == n and row["model_log_loss_on_odds"] == pytest.approx(direct["log_loss"])
    assert set(table["division"]) == {"D1", "E0", "E1", "ALL"} and set(table["window"]) == {"week", "rolling"}
    assert table.groupby(["window", "division"])["n"].sum().loc[("week", "ALL")] == n
    assert row["promotion_log_loss"] > 0 and md["plot"].value.endswith(f"{WEEK}.png")
    assert Path(md["plot"].value).exists() and md["cumulative_log_loss"].value.startswith("![")
    # the checks did not judge 15 matches (fewer than the default minimum of 100): passed, with a note
    checks = {c.check_name: c for c in monitored.get_asset_check_evaluations()}
    assert checks["live_logloss_vs_promotion_estimate"].passed and checks["live_logloss_vs_elo_reference"].passed
    assert "not judged" in checks["live_logloss_vs_promotion_estimate"].description
    prom = _prom(settings)
    assert f'time2bet_live_log_loss{{division="ALL",model="match_outcome",model_version="{row["model_version"]}",' \
           f'source="model",variant="champion",week="{WEEK}",window="week"}} {row["log_loss"]!r}' in prom


def test_the_drift_report_is_kept_and_its_figures_published(replayed, monitored):
    settings = replayed.settings
    [md] = [m.metadata for m in monitored.asset_materializations_for_node("drift_report")]
    html = Path(md["report"].value)
    assert html == settings.home / "monitoring" / "drift" / f"{WEEK}.html" and html.stat().st_size > 100_000
    n = len(replayed.predicted)
    assert (md["current_matches"].value, md["current_played"].value) == (n, n)
    assert md["features_tested"].value == 84 and 0 <= md["share_of_drifted_features"].value <= 1
    assert isinstance(md["target_drift"].value, bool) and isinstance(md["prediction_drift"].value, bool)
    assert set(md["p_values"].value["target"]) == {"result", "goals"}
    assert set(md["p_values"].value["prediction"]) == set(P)
    table = Warehouse.from_url(settings.warehouse_url).read_sql(f"SELECT * FROM {store.DRIFT_TABLE}")
    assert table.groupby("kind").size().to_dict() == {"dataset": 1, "feature": 84, "prediction": 3, "target": 2}
    assert 'time2bet_drift_share_of_drifted_features{model="match_outcome"' in _prom(settings)


def test_the_checks_fail_on_a_bad_set_of_predictions(replayed, monitored):
    from time2bet_assets.defs.monitoring.assets import live_quality
    from time2bet_assets.defs.monitoring.resources import MonitoringResource, monitoring_resources

    settings = replayed.settings
    wh = Warehouse.from_url(settings.warehouse_url)
    played = wh.read_sql("SELECT match_id, result FROM analytics.stg_matches")
    bad = replayed.predicted.merge(played, on="match_id")
    y = metrics.encode_outcomes(bad["result"])
    p = np.full((len(bad), 3), 0.01)
    p[np.arange(len(bad)), (y + 1) % 3] = 0.98                        # confident, and wrong every time
    _write(settings.ledger_dir, "svc-monitoring-bad", [_record(bad, p, LAST, variant="challenger")])
    for day in _days(settings):
        assert _load_ledger(replayed, day).success
    resources = monitoring_resources(settings)
    strict = MonitoringResource(home=str(settings.home), dataset_dir=str(settings.home / "datasets"),
                                tracking_uri=settings.mlflow_tracking_uri, model_name=settings.model_name,
                                logloss_margin=settings.live_logloss_margin, min_matches=10)
    result = dg.materialize([live_quality], partition_key=WEEK, instance=replayed.instance,
                            resources={**resources, "monitoring": strict}, raise_on_error=False)
    assert result.success   # the checks are not blocking: the figures are written, the checks tell
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    estimate, reference = checks["live_logloss_vs_promotion_estimate"], checks["live_logloss_vs_elo_reference"]
    version = str(replayed.predicted["model_version"].iloc[0])
    assert not estimate.passed and estimate.severity == dg.AssetCheckSeverity.WARN
    assert not reference.passed and reference.severity == dg.AssetCheckSeverity.ERROR
    assert f"v{version} challenger: live" in estimate.description and f"v{version} challenger" in reference.description
    # the champion is judged too, on its own numbers
    direct = _direct(replayed)
    rolling = wh.read_sql(f"SELECT * FROM {store.LIVE_QUALITY_TABLE} WHERE \"window\" = 'rolling' AND division = 'ALL'")
    champion = rolling[rolling["variant"] == "champion"].iloc[0]
    assert champion["log_loss"] == pytest.approx(direct["log_loss"])   # nothing before the week in the window
    bad_rows = rolling[rolling["variant"] == "challenger"].iloc[0]
    assert bad_rows["log_loss"] == pytest.approx(metrics.log_loss(y, p)) and bad_rows["n"] == len(bad)
    champion_fails = champion["log_loss"] > champion["promotion_log_loss"] + settings.live_logloss_margin
    assert (f"v{version} champion" in estimate.description) == bool(champion_fails)
    assert (f"v{version} champion" in reference.description) == bool(champion["log_loss"] > champion["elo_log_loss"])


def test_a_tampered_ledger_fails_to_load_and_leaves_the_loaded_rows(replayed, monitored):
    settings = replayed.settings
    [segment] = segments(settings.ledger_dir)["svc-monitoring-test"]
    day = segment.parent.name
    wh = Warehouse.from_url(settings.warehouse_url)
    count = f"SELECT count(*) AS n FROM {store.LEDGER_TABLE} WHERE day = DATE '{day}'"
    before, original = int(wh.read_sql(count)["n"].iloc[0]), segment.read_bytes()
    lines = original.splitlines(keepends=True)
    try:
        segment.write_bytes(b"".join(lines[:-1]))     # the newest record removed: only the anchor tells
        truncated = _load_ledger(replayed, day)
        assert not truncated.success and "does not verify" in _failure(truncated)
        assert 'time2bet_ledger_verified{day="' + day + '"} 0.0' in _prom(settings)
        segment.write_bytes(original)
        assert _load_ledger(replayed, day).success
        edited = json.loads(lines[1])
        edited["record"]["rows"]["p_home"][0] += 0.01
        segment.write_bytes(lines[0] + orjson.dumps(edited) + b"\n" + b"".join(lines[2:]))
        result = _load_ledger(replayed, day)
        assert not result.success and "problem" in _failure(result)
        assert int(wh.read_sql(count)["n"].iloc[0]) == before
    finally:
        segment.write_bytes(original)


def test_automation_loads_the_ledger_every_six_hours_and_judges_the_week_on_tuesdays(tmp_path):
    """The monitoring assets' automation conditions (run by the code location's default automation sensor)."""
    from time2bet_assets.definitions import build_definitions

    defs = build_definitions(Settings.from_env({"TIME2BET_HOME": str(tmp_path)}))
    keys = [dg.AssetKey(k) for k in ("prediction_ledger", "live_quality", "drift_report")]
    tuesday = dt.datetime(2026, 12, 8, 6, 0, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        cursor, requested = None, []
        for minutes in (0, 20, 40, 65, 70):   # 06:00, 06:20 (after 06:15), 06:40, 07:05 (after 07:00), 07:10
            result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor,
                                                       evaluation_time=tuesday + dt.timedelta(minutes=minutes))
            cursor = result.cursor
            requested.append({k.to_user_string(): sorted(result.get_requested_partitions(k)) for k in keys
                              if result.get_num_requested(k)})
    assert requested == [
        {},
        {"prediction_ledger": ["2026-12-07", "2026-12-08"]},   # today, and yesterday's last records
        {},
        {"drift_report": ["2026-11-30"], "live_quality": ["2026-11-30"]},   # the week that ended on Sunday
        {},
    ]
