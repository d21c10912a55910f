"""The Grafana dashboards of deploy/grafana (Service, Model, Data) and their provisioning.

Statically: every dashboard JSON is what deploy/grafana/generate.py writes, loads, has a unique uid and title, and
every panel queries the provisioned datasource (its fixed uid) with at least one PromQL expression; the provisioning
files point at paths that exist.

Live (heavy; Grafana itself cannot be installed here): a real Prometheus, configured by the shipped
deploy/prometheus/prometheus.yml (its job names, its rule files: the dashboards reuse a recording rule) on free
loopback ports and a 1 s scrape interval, scrapes the session's `bentoml serve` (sent real requests: a prediction
for an upcoming fixture of GET /matches, a batch, an async job, an invalid request) and a real Pushgateway into
which the figures of every monitoring asset are pushed by time2bet.monitoring.prometheus.export. Then every
panel target's expression is evaluated through Prometheus' HTTP API as Grafana would send it: each dashboard
variable resolved as Grafana resolves it (a query variable's label_values() through Prometheus' label values API,
chained variables in order; the value taken is the first one, but for a real division rather than the ALL aggregate;
a custom variable's current value), `$__rate_interval`/`$__interval`/`$__range` replaced by a fixed window (1 m),
and each must answer with at least one series whose value is a number (not NaN), and carry the labels its legend
shows. Series that exist only after a rare event (shed requests, dropped ledger records, failed runs, rejected
files) are queried as `... or on () vector(0)`: they answer 0 here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml

from .conftest import started, wait_until

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD_FILES = ("service.json", "model.json", "data.json")
DATASOURCES_YML = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS_YML = GRAFANA / "provisioning" / "dashboards" / "time2bet.yml"
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
SERVICE_JOB = "time2bet-service"
WINDOW = "1m"            # for $__rate_interval, $__interval and $__range: 30 scrapes at 2 s, and the requests
                         # sent stay in it while the queries are evaluated (and retried)
START_S = 30
DATA_S = 90              # for the targets to be up and the requests scraped (a CI machine under the whole suite)
EVAL_S = 30              # for every query to have data (the recording rules evaluated)
LABEL_VALUES = re.compile(r"^label_values\((?P<metric>.+),\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\)$")
VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def datasource_uid() -> str:
    (source,) = yaml.safe_load(DATASOURCES_YML.read_text())["datasources"]
    assert source["type"] == "prometheus"
    return source["uid"]


def dashboards() -> dict[str, dict]:
    return {name: json.loads((GRAFANA / "dashboards" / name).read_text()) for name in DASHBOARD_FILES}


def panels(dashboard: dict) -> list[dict]:
    """Every panel but rows (and the panels of collapsed rows)."""
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


# --- static ---------------------------------------------------------------------------------------------------

def test_the_dashboards_are_what_the_generator_writes():
    done = subprocess.run([sys.executable, str(GRAFANA / "generate.py"), "--check"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr


def test_every_dashboard_and_panel_queries_the_provisioned_datasource():
    uid = datasource_uid()
    found = dashboards()
    assert len({d["uid"] for d in found.values()}) == len(found)
    assert len({d["title"] for d in found.values()}) == len(found)
    for name, dashboard in found.items():
        assert dashboard["uid"] and dashboard["title"], name
        assert 36 <= dashboard["schemaVersion"] <= 41, name
        assert panels(dashboard), name
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(set(ids)) == len(ids), name
        for panel in panels(dashboard):
            where = f"{name}: {panel['title']!r}"
            assert panel["type"] in ("timeseries", "stat", "table"), where
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, where
            assert panel["targets"], where
            for target in panel["targets"]:
                assert target.get("expr", "").strip(), where
                assert target.get("datasource", panel["datasource"]) == panel["datasource"], where
            assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), where
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"] == {"type": "prometheus", "uid": uid}, (name, variable["name"])
                assert LABEL_VALUES.match(variable["definition"]), (name, variable["name"])
        # every variable a query uses is defined (or one of Grafana's own)
        defined = {v["name"] for v in dashboard["templating"]["list"]}
        used = {m.group(1) or m.group(2) for p in panels(dashboard) for t in p["targets"]
                for m in VARIABLE.finditer(t["expr"])}
        assert used - defined <= {"__rate_interval", "__interval", "__range"}, (name, used - defined)


def test_the_provisioning_files_point_at_what_exists():
    (provider,) = yaml.safe_load(PROVIDERS_YML.read_text())["providers"]
    assert provider["type"] == "file"
    folder = Path(provider["options"]["path"])
    folder = folder if folder.is_absolute() else REPO / folder   # relative: Grafana started from the repository
    assert folder.resolve() == (GRAFANA / "dashboards").resolve()
    assert {p.name for p in folder.glob("*.json")} == set(DASHBOARD_FILES)
    source = yaml.safe_load(DATASOURCES_YML.read_text())["datasources"][0]
    assert source["url"].startswith("http://") and source["access"] == "proxy"


METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
BUILT_IN = {"up",                   # Prometheus, per scrape target
            "push_time_seconds"}    # the Pushgateway, per pushed group


def metric_names(expr: str) -> set[str]:
    """The metric names of a PromQL expression of these dashboards: time2bet_* series, recording rules (a colon in
    the name), and the built-in series above; quoted strings (label values) and range selectors left out."""
    bare = re.sub(r'"[^"]*"', '""', expr)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    return {n for n in METRIC.findall(bare) if n.startswith("time2bet_") or ":" in n or n in BUILT_IN}


def exported_names() -> set[str]:
    """Every series name the platform exports: the service's metrics (its modules' prometheus_client metrics and the
    snapshot age it renders), every monitoring figure, the shipped recording rules, and the built-in series."""
    import prometheus_client

    import bento_service.errors
    import bento_service.jobs
    import bento_service.metrics

    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
                "gauge": ("",), "unknown": ("",)}
    families = [f for f in prometheus_client.REGISTRY.collect() if f.name.startswith("time2bet_")]
    for registry in monitoring_registries(["E0"], {"name": "match_outcome", "version": "1"}).values():
        families.extend(registry.collect())
    names = {f.name + suffix for f in families for suffix in suffixes[f.type]}
    names.add(bento_service.metrics.SNAPSHOT_AGE)
    for path in (PROMETHEUS_YML.parent / "rules").glob("*.yml"):
        names |= {r["record"] for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"] if "record" in r}
    return names | BUILT_IN


def test_every_metric_the_dashboards_query_is_exported():
    """Also those queried as `... or on () vector(0)`, whose misspelling the live test would not notice."""
    exported = exported_names()
    assert {"time2bet_requests_total", "time2bet_request_seconds_bucket", "time2bet_live_log_loss",
            "time2bet_dagster_runs_failed_total", "job_bound:time2bet_jobs_queue_fill:ratio"} <= exported
    unknown = set()
    for name, dashboard in dashboards().items():
        exprs = [t["expr"] for p in panels(dashboard) for t in p["targets"]]
        exprs += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
        for expr in exprs:
            assert metric_names(expr), (name, expr)
            unknown |= {(name, n) for n in metric_names(expr) - exported}
    assert not unknown, sorted(unknown)


# --- live ---------------------------------------------------------------------------------------------------------

def prometheus_config(ports: dict[str, int]) -> dict:
    """The shipped configuration on the test's ports, scraping and evaluating every second, with the shipped rule
    files; no Alertmanager (neither the alerting block nor its scrape job)."""
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    # 2 s: late in a full test session the service's /metrics (every worker's files) has been seen to miss a 1 s
    # scrape timeout, and a target whose scrapes time out never shows the second round of requests
    config["global"].update(scrape_interval="2s", scrape_timeout="2s", evaluation_interval="2s")
    config["rule_files"] = [str(PROMETHEUS_YML.parent / pattern) for pattern in config["rule_files"]]
    config.pop("alerting", None)
    jobs = [job for job in config["scrape_configs"] if job["job_name"] != "alertmanager"]
    assert {job["job_name"] for job in jobs} == set(ports), sorted(job["job_name"] for job in jobs)
    for job in jobs:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    config["scrape_configs"] = jobs
    return config


def query(prometheus: str, promql: str) -> dict:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert answer["status"] == "success", (promql, answer)
    return answer["data"]


def label_values(prometheus: str, metric: str, label: str) -> list[str]:
    """As Grafana resolves label_values(metric, label): Prometheus' label values API, matched by the selector."""
    answer = httpx.get(f"{prometheus}/api/v1/label/{label}/values", params={"match[]": metric}, timeout=10).json()
    assert answer["status"] == "success", answer
    return sorted(answer["data"])


def substitute(text: str, values: dict[str, str]) -> str:
    for name in ("__rate_interval", "__interval", "__range"):
        text = text.replace(f"${{{name}}}", WINDOW).replace(f"${name}", WINDOW)
    text = VARIABLE.sub(lambda m: values[m.group(1) or m.group(2)], text)
    assert "$" not in text, text
    return text


def resolve_variables(prometheus: str, dashboard: dict) -> dict[str, str]:
    """A concrete value for each of the dashboard's variables, in order (a query may use an earlier one)."""
    values: dict[str, str] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(substitute(variable["definition"], values))
            found = label_values(prometheus, match["metric"], match["label"])
            assert found, f"{dashboard['uid']}: variable ${variable['name']} ({variable['definition']}) has no values"
            values[variable["name"]] = next((v for v in found if v != "ALL"), found[0])   # a real division
        elif variable["type"] == "custom":
            values[variable["name"]] = variable["current"]["value"]
        else:
            raise AssertionError(f"variable type {variable['type']} not resolved by this test")
    return values


def monitoring_registries(divisions: list[str], model: dict) -> dict:
    """Every monitoring asset's and sensor's figures (asset -> registry), built by time2bet.monitoring.prometheus
    from plausible inputs: the live quality of ``model`` in each division and all together, a week's drift, the
    ledger and the freshness of every stage, the season files of ``divisions`` (none rejected), no failed run."""
    from time2bet.football import season_of
    from time2bet.monitoring import prometheus as figures
    from time2bet.monitoring.drift import DriftResult

    now = dt.datetime.now(dt.UTC)
    today = now.date()
    week = str(today - dt.timedelta(days=today.weekday()))
    name, version = model["name"], str(model["version"])
    rows = []
    for window in ("rolling", "week"):
        for i, division in enumerate(["ALL", *divisions]):
            n = 120 if division == "ALL" else 40 + i
            rows.append({
                "week": pd.Timestamp(week), "window": window, "model_name": name, "model_version": version,
                "variant": "champion", "division": division, "n": n, "log_loss": 1.01 + 0.01 * i, "rps": 0.21,
                "brier": 0.6, "accuracy": 0.5, "ece": 0.04, "ece_home": 0.05, "ece_draw": 0.03, "ece_away": 0.04,
                "n_with_odds": n - 2, "model_log_loss_on_odds": 1.0 + 0.01 * i, "market_log_loss": 0.98,
                "market_rps": 0.2, "market_brier": 0.58, "market_accuracy": 0.53, "n_elo": n,
                "model_log_loss_on_elo": 1.01 + 0.01 * i, "elo_log_loss": 1.05, "elo_rps": 0.22, "elo_brier": 0.62,
                "elo_accuracy": 0.48})
    columns = pd.DataFrame([
        {"kind": "feature", "column_name": "elo_diff", "method": "ks", "statistic": 0.01, "threshold": 0.05,
         "drifted": True},
        {"kind": "feature", "column_name": "home_rest_days", "method": "ks", "statistic": 0.4, "threshold": 0.05,
         "drifted": False},
        {"kind": "prediction", "column_name": "p_home", "method": "ks", "statistic": 0.3, "threshold": 0.05,
         "drifted": False},
        {"kind": "target", "column_name": "result", "method": "chisquare", "statistic": 0.2, "threshold": 0.05,
         "drifted": False}])
    drift = DriftResult(columns=columns, n_reference=1080, n_current=15, n_current_played=12, drift_share=0.5,
                        html=None)
    current = season_of(today)
    previous = season_of(today - dt.timedelta(days=365))
    seasons = {(d, s): ((now - dt.timedelta(hours=h)).timestamp(), s == current)
               for d in divisions for s, h in ((current, 2), (previous, 24 * 90))}
    return {
        "prediction_ledger": figures.ledger_figures(
            str(today), predictions=30, records=3, chains=1, problems=0, problems_elsewhere=0, torn_tails=0,
            freshness={"ingestion": now - dt.timedelta(hours=2), "features": now - dt.timedelta(hours=1),
                       "training": now - dt.timedelta(days=3), "predictions": now - dt.timedelta(minutes=30)}),
        "live_quality": figures.live_quality_figures(pd.DataFrame(rows), {(name, version): 1.0}),
        "drift_report": figures.drift_figures(week, name, version, drift),
        "source_season_files": figures.ingestion_figures(seasons),
        "raw_matches": figures.rejected_files_figures({key: None for key in seasons}),   # nothing rejected
        "dagster_runs": figures.dagster_runs_figures({"ingest_season_files": 0, "build_features": 0, "monitor": 0}),
    }


def push_monitoring_figures(gateway: str, home: Path, divisions: list[str], model: dict) -> None:
    """The figures of monitoring_registries through the real export (textfile and Pushgateway)."""
    from time2bet.monitoring import prometheus as figures

    for asset, registry in monitoring_registries(divisions, model).items():
        exported = figures.export(registry, asset=asset, home=home, pushgateway_url=gateway)
        assert exported.pushed, (asset, exported.push_error)


def exercise_the_service(url: str) -> tuple[list[str], dict]:
    """Real requests: a prediction, a batch, an async job, an invalid request. Returns the divisions of the
    upcoming fixtures and the model that answered."""
    with httpx.Client(base_url=url, timeout=30) as client:
        matches = client.get("/matches").json()["matches"]
        assert matches, "the session platform has no upcoming fixtures"
        bodies = [{"home_team": m["home_team"], "away_team": m["away_team"], "division": m["division"],
                   "kickoff_date": m["match_date"]} for m in matches[:20]]
        answer = client.post("/predict", json=bodies[0])
        assert answer.status_code == 200, answer.text
        batch = client.post("/predict/batch", json={"matches": bodies})
        assert batch.status_code == 200, batch.text
        job = client.post("/jobs", json={"matches": bodies[:5]})
        assert job.status_code == 202, job.text
        invalid = client.post("/predict", json={**bodies[0], "division": "XX9"})
        assert invalid.status_code == 422, invalid.text
    return sorted({m["division"] for m in matches}), answer.json()["model"]


def targets_health(prometheus: str) -> str:
    """Each target's health, last error and scrape duration: why a series may not have moved."""
    targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    return "; ".join(f"{t['labels']['job']}: {t['health']} {t.get('lastError', '')!r} "
                     f"{t.get('lastScrapeDuration', 0):.2f}s" for t in targets)


@pytest.mark.heavy
def test_every_panel_query_returns_data_from_a_real_prometheus(platform_env, start_bento_server, binary, tmp_path):
    from time2bet.background import free_port

    commands = {name: binary(name) for name in ("prometheus", "prometheus-pushgateway")}
    with contextlib.ExitStack() as stack:
        # a service of its own: late in a full run the session's shared service missed the second round of scrapes
        bento_server = start_bento_server(platform_env)
        stack.callback(bento_server.stop)
        ports = {"prometheus": free_port(), "pushgateway": free_port(), SERVICE_JOB: bento_server.port}
        prometheus = f"http://127.0.0.1:{ports['prometheus']}"
        gateway = f"http://127.0.0.1:{ports['pushgateway']}"
        started(stack, "pushgateway", [commands["prometheus-pushgateway"],
                                       f"--web.listen-address=127.0.0.1:{ports['pushgateway']}"],
                f"{gateway}/-/ready", tmp_path / "pushgateway.log", START_S)
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(ports)))
        started(stack, "prometheus", [
            commands["prometheus"], f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}"],
            f"{prometheus}/-/ready", tmp_path / "prometheus.log", START_S)

        # Prometheus takes its targets a few seconds after it starts: every job's target up first
        wait_until(lambda: {t["labels"]["job"] for t in httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()[
            "data"]["activeTargets"] if t["health"] == "up"} == set(ports), "every target up", DATA_S)
        divisions, model = exercise_the_service(bento_server.url)
        push_monitoring_figures(gateway, tmp_path / "home", divisions, model)
        batch = f'time2bet_requests_total{{job="{SERVICE_JOB}", route="/predict/batch"}}'
        wait_until(lambda: query(prometheus, batch)["result"], "the first requests scraped", DATA_S)
        exercise_the_service(bento_server.url)   # more of them, for the rates to see
        wait_until(lambda: query(prometheus, f"sum(increase({batch}[{WINDOW}])) > 0")["result"],
                   "the second requests scraped", DATA_S, explain=lambda: targets_health(prometheus))

        # every dashboard's every target, with its variables resolved, until all have data (bounded)
        deadline = time.monotonic() + EVAL_S
        while True:
            empty, chosen = [], {}
            for name, dashboard in dashboards().items():
                try:
                    values = chosen[name] = resolve_variables(prometheus, dashboard)
                except AssertionError as exc:
                    empty.append((name, "variables", str(exc)))
                    continue
                for panel in panels(dashboard):
                    for target in panel["targets"]:
                        expr = substitute(target["expr"], values)
                        result = query(prometheus, expr)["result"]
                        # data: a number (a rate over a window without requests, a quantile of no observations
                        # are NaN; the requests above make at least one series of each a number)
                        if not any(math.isfinite(float(r["value"][1])) for r in result):
                            empty.append((name, panel["title"], f"{expr} -> {result}"))
                        # the labels its legend shows are those of the series (unless only the 0 fallback answered)
                        labelled = [r["metric"] for r in result if r["metric"]]
                        missing = {label for label in LEGEND.findall(target.get("legendFormat", ""))
                                   if labelled and not any(label in m for m in labelled)}
                        if missing:
                            empty.append((name, panel["title"], f"legend labels {sorted(missing)} not in {result}"))
            if not empty or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert not empty, (f"queries without data (or labels) after {EVAL_S}s (variables {chosen}):\n"
                           + "\n".join(map(str, empty)))

        # the values chosen are the ones expected, and a few answers say what they should
        assert chosen["service.json"] == {"job": SERVICE_JOB, "instance": f"127.0.0.1:{bento_server.port}"}
        assert chosen["model.json"]["division"] in divisions and chosen["model.json"]["window"] == "rolling"
        assert chosen["data.json"]["division"] in divisions
        service = chosen["service.json"]
        routes = {r["metric"].get("route") for r in query(prometheus, substitute(
            'sum by (route) (rate(time2bet_requests_total{job="$job", instance=~"$instance"}[$__range]))',
            service))["result"]}
        assert {"/predict", "/predict/batch", "/jobs"} <= routes, routes
        per_division = query(prometheus, 'max by (division) (time2bet_live_log_loss{window="rolling"})')["result"]
        assert {r["metric"]["division"] for r in per_division} == {"ALL", *divisions}
