"""The pipeline's alert figures, end to end with nothing of ours replaced: the ingestion assets run for real against
the replay server (a file that fails validation, one that drops loaded matches, one the source cannot serve, one
unchanged), the monitoring area's sensors export what they recorded and the failed runs of every job to a real
Pushgateway, and a real Prometheus, scraping it as deploy/prometheus/prometheus.yml does (honor_labels) and loading
the shipped rule files unchanged, raises exactly the alerts of deploy/prometheus/rules/pipeline.yml that the state
calls for, and resolves them once a good file is loaded. Then the sensors as registered, on the wall clock, with
the Pushgateway down: they export to the textfile and never raise."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import time
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from time2bet.background import Background, free_port
from time2bet.football import season_file_path, season_of
from time2bet.settings import Settings
from time2bet.source.mirror import ReplayServer
from time2bet.source.sample_site import DEFAULT_AS_OF
from time2bet_assets.definitions import build_definitions
from time2bet_assets.defs.ingestion.backfill import observe_changes, register_partitions, run_season_file_backfill
from time2bet_assets.defs.monitoring.sensors import export_ingestion_figures, previous_season

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
START_S = 30
SEEN_S = 20          # a push scraped and the rules evaluated (every second here)
DIVISIONS, SEASONS = ["E0", "D1"], ["2023-24", "2024-25"]   # as of DEFAULT_AS_OF: 2024-25 is being played
DAYS = 86400.0


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} not found on PATH in CI")
    pytest.skip(f"{name} not installed (apt-get install prometheus prometheus-pushgateway)")


@pytest.fixture
def prometheus(tmp_path):
    """(Pushgateway URL, Prometheus URL): both on free loopback ports, Prometheus configured by the shipped file
    (its pushgateway job, the shipped rule files), scraping and evaluating every second."""
    gateway, server = free_port(), free_port()
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_YML.parent / pattern) for pattern in config["rule_files"]]
    config.pop("alerting")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "pushgateway"]
    assert job["honor_labels"] is True
    job["static_configs"] = [{"targets": [f"127.0.0.1:{gateway}"]}]
    config["scrape_configs"] = [job]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    with contextlib.ExitStack() as stack:
        for name, command, ready in (
                ("pushgateway", [_binary("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{gateway}"],
                 f"http://127.0.0.1:{gateway}/-/ready"),
                ("prometheus", [_binary("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                                f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{server}"],
                 f"http://127.0.0.1:{server}/-/ready")):
            process = Background(name, command, dict(os.environ), tmp_path / f"{name}.log").start()
            stack.callback(process.stop)
            process.wait_ready(ready, START_S)
        yield f"http://127.0.0.1:{gateway}", f"http://127.0.0.1:{server}"


def _query(prometheus: str, promql: str) -> list[dict]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def _alerts(prometheus: str, *names: str) -> dict[tuple[str, frozenset], str]:
    """(alert name, its labels but alertname and severity) -> state (pending, firing) of the alerts ``names``."""
    found = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return {(a["labels"]["alertname"], frozenset((k, v) for k, v in a["labels"].items()
                                                  if k not in ("alertname", "severity"))): a["state"]
            for a in found if a["labels"]["alertname"] in names}


def _wait_for(condition, what: str, timeout_s: float = SEEN_S):
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:.0f}s")
        time.sleep(0.25)
    return result


def _figures(home: Path, asset: str) -> dict[tuple[str, frozenset], float]:
    text = (home / "monitoring" / "prometheus" / f"{asset}.prom").read_text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def _invalid(lines: list[str]) -> list[str]:   # a date that does not exist: parsing rejects the file
    header, fields = lines[0].split(","), lines[2].split(",")
    fields[header.index("Date")] = "31/02/2024"
    return [lines[0], lines[1], ",".join(fields), *lines[3:]]


def _with_a_new_match(lines: list[str], season: str) -> list[str]:   # a good new version: one match more
    last = lines[-1].split(",")
    last[1] = "30/06/" + season[:2] + season[-2:]
    last[2], last[3] = last[3], last[2]
    return [*lines, ",".join(last)]


def _publish(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _context(instance: dg.DagsterInstance, defs: dg.Definitions) -> dg.SensorEvaluationContext:
    """As the daemon evaluates the code location's sensors: its jobs, its configured monitoring resource."""
    return dg.build_sensor_context(instance=instance, definitions=defs,
                                   resources={"monitoring": defs.resources["monitoring"]})


def _sensor(defs: dg.Definitions, name: str) -> dg.SensorDefinition:
    (sensor,) = [s for s in defs.sensors if s.name == name]
    return sensor


def _key(division: str, season: str) -> frozenset:
    return frozenset({"division": division, "season": season}.items())


def test_the_pipeline_alerts_fire_on_what_the_sensors_export_and_resolve(site_copy, platform, instance, prometheus):
    gateway, server = prometheus
    files = {(d, s): site_copy / season_file_path(d, s) for d in DIVISIONS for s in SEASONS}
    original = {k: _lines(p) for k, p in files.items()}

    def configured(url: str) -> tuple[Settings, dg.Definitions]:
        settings, _ = platform(url, TIME2BET_PUSHGATEWAY_URL=gateway)
        return settings, build_definitions(settings)

    def export(defs: dg.Definitions) -> None:
        """Both sensors' exports: the shipped run counter as it ticks, the ingestion's figures as of DEFAULT_AS_OF
        (the sensor passes the wall clock's date)."""
        context = _context(instance, defs)
        assert "pushed" in _sensor(defs, "dagster_runs_figures").evaluate_tick(context).skip_message
        assert export_ingestion_figures(context, defs.resources["monitoring"], DEFAULT_AS_OF).count("pushed") == 2

    # a platform loaded before this state was kept (another instance), three days ago; the failed-run counts of
    # every job exported once, all at 0
    with ReplayServer(site_copy) as source:
        settings, defs = configured(source.url)
        export(defs)
        with dg.instance_for_test() as before:
            assert all(r.success for r in run_season_file_backfill(defs, before, DIVISIONS, SEASONS))
    warehouse = settings.warehouse_url.removeprefix("duckdb:///")
    with duckdb.connect(warehouse) as con:
        con.execute("UPDATE raw.match_files SET loaded_at = loaded_at - INTERVAL 3 DAY")
        loaded_at = {(d, s): t.replace(tzinfo=dt.UTC).timestamp()
                     for d, s, t in con.execute("SELECT division, season, loaded_at FROM raw.match_files").fetchall()}
    runs = _wait_for(lambda: _query(server, 'time2bet_dagster_runs_failed_total{job="time2bet_monitoring", '
                                            'asset="dagster_runs"}'), "the run counts scraped")
    jobs = {job.name for job in defs.get_repository_def().get_all_jobs()}   # ad hoc materializations' included
    assert {"__ASSET_JOB", "ingest_season_files", "observe_season_files", "build_features", "monitor"} <= jobs
    assert {r["metric"]["job_name"]: r["value"][1] for r in runs} == {name: "0" for name in jobs}

    # the source republishes: E0 2024-25 invalid, D1 2023-24 with half its matches; D1 2024-25 cannot be fetched
    _publish(files[("E0", "2024-25")], _invalid(original[("E0", "2024-25")]))
    _publish(files[("D1", "2023-24")], original[("D1", "2023-24")][:len(original[("D1", "2023-24")]) // 2])
    started = time.time()
    with ReplayServer(site_copy) as source:
        source.inject_fault(season_file_path("D1", "2024-25"), "http_500")
        settings, defs = configured(source.url)
        (ingest,) = run_season_file_backfill(defs, instance, DIVISIONS, SEASONS)   # nothing ingested in this one
        assert not ingest.success   # the blocking checks of raw_matches fail the run
        changed, observed = observe_changes(defs, instance, {f"{d}|{s}" for d in DIVISIONS for s in SEASONS})
        assert all(r.success for r in observed) and changed == {"E0|2024-25", "D1|2023-24", "D1|2024-25"}
    export(defs)

    fresh = _figures(settings.home, "source_season_files")
    success = "time2bet_ingestion_last_success_timestamp_seconds"
    assert fresh[(success, _key("E0", "2023-24"))] >= started   # fetched unchanged
    for key in (("E0", "2024-25"), ("D1", "2023-24"), ("D1", "2024-25")):   # their load is the last success known
        assert fresh[(success, _key(*key))] == pytest.approx(loaded_at[key], abs=1e-3)
        assert fresh[(success, _key(*key))] < started - 2.9 * DAYS
    assert {k: v for (name, k), v in fresh.items() if name == "time2bet_ingestion_season_in_progress"} == {
        _key("E0", "2023-24"): 0, _key("D1", "2023-24"): 0, _key("E0", "2024-25"): 1, _key("D1", "2024-25"): 1}
    assert {(dict(k)["division"], dict(k)["season"], dict(k)["reason"]): v
            for (_, k), v in _figures(settings.home, "raw_matches").items()} == {
        ("E0", "2023-24", "invalid"): 0, ("E0", "2023-24", "quarantined"): 0,
        ("E0", "2024-25", "invalid"): 1, ("E0", "2024-25", "quarantined"): 0,
        ("D1", "2023-24", "invalid"): 0, ("D1", "2023-24", "quarantined"): 1,
        ("D1", "2024-25", "invalid"): 0, ("D1", "2024-25", "quarantined"): 0}

    names = ("SourceFileRejected", "IngestionStaleInSeason", "DagsterRunFailed")
    expected = {
        ("SourceFileRejected", frozenset({"division": "E0", "season": "2024-25", "reason": "invalid"}.items())): "firing",
        ("SourceFileRejected", frozenset({"division": "D1", "season": "2023-24", "reason": "quarantined"}.items())):
            "firing",
        # stale three days while its season is played (for: 15m, so pending here); D1 2023-24 is as old, but over
        ("IngestionStaleInSeason", _key("E0", "2024-25")): "pending",
        ("IngestionStaleInSeason", _key("D1", "2024-25")): "pending",
        ("DagsterRunFailed", frozenset({"job_name": "ingest_season_files"}.items())): "firing",
    }
    _wait_for(lambda: _alerts(server, *names) == expected,
              f"the alerts {expected} (Prometheus has {_alerts(server, *names)})")

    # a good new version of E0 2024-25 (and D1 2024-25 served again, by a server without the fault): loaded
    _publish(files[("E0", "2024-25")], _with_a_new_match(original[("E0", "2024-25")], "2024-25"))
    with ReplayServer(site_copy) as source:
        settings, defs = configured(source.url)
        results = run_season_file_backfill(defs, instance, ["E0"], ["2024-25"])
        assert [r.job_def.name for r in results] == ["observe_season_files", "ingest_season_files"]
        assert all(r.success for r in results)
    export(defs)
    assert _figures(settings.home, "source_season_files")[(success, _key("E0", "2024-25"))] >= started
    del expected[("SourceFileRejected", frozenset({"division": "E0", "season": "2024-25", "reason": "invalid"}.items()))]
    del expected[("IngestionStaleInSeason", _key("E0", "2024-25"))]
    _wait_for(lambda: _alerts(server, *names) == expected,
              f"the alerts {expected} (Prometheus has {_alerts(server, *names)})")


def test_the_sensors_as_registered_export_without_a_pushgateway(tmp_path, instance):
    down = f"http://127.0.0.1:{free_port()}"   # nothing listens there
    settings = Settings.from_env({"TIME2BET_HOME": str(tmp_path), "TIME2BET_PUSHGATEWAY_URL": down})
    defs = build_definitions(settings)
    current = season_of(dt.datetime.now(dt.UTC).date())
    register_partitions(instance, ["E0"], [previous_season(current), current, "2015-16"])
    context = _context(instance, defs)
    ticks = {name: _sensor(defs, name).evaluate_tick(context) for name in ("dagster_runs_figures", "ingestion_figures")}
    for name, tick in ticks.items():
        assert not tick.run_requests and "push failed" in tick.skip_message, (name, tick.skip_message)
    assert set(_figures(settings.home, "dagster_runs").values()) == {0}
    assert {k: v for (name, k), v in _figures(settings.home, "source_season_files").items()} == {
        _key("E0", previous_season(current)): 0, _key("E0", current): 1}   # no fetch recorded: no timestamp
    assert _figures(settings.home, "raw_matches") == {}
    combined = (tmp_path / "monitoring" / "metrics.prom").read_text()
    assert "time2bet_dagster_runs_failed_total" in combined and "time2bet_ingestion_season_in_progress" in combined
