"""Time2Bet's Grafana dashboards as code: Service, Model and Data, written as Grafana dashboard JSON (schemaVersion
39) to deploy/grafana/dashboards/, which provisioning/dashboards/time2bet.yml loads.

    python deploy/grafana/generate.py           # rewrite the JSON files
    python deploy/grafana/generate.py --check   # exit 1 if a JSON file differs from what this writes

Standard library only. Every query uses metrics that are really exported:

- the service's /metrics (bento_service/metrics.py, errors.py, jobs.py; job ``time2bet-service``): requests,
  latency histogram, shed requests, predictions by variant, batch sizes, the job queue and its bounds, the ledger
  hand-off, served model versions, the serving snapshot's age;
- the monitoring figures pushed to the Pushgateway (time2bet/monitoring/prometheus.py; job ``time2bet_monitoring``,
  one group per asset): live quality, drift, the ledger's verification, the freshness of every stage, the season
  files' ingestion and rejections, failed Dagster runs;
- the recording rules of deploy/prometheus/rules/service.yml where one fits (the job queue's fill ratio).

Series that appear only after a rare event (a shed request, a dropped ledger record, a failed run) are queried as
``... or on () vector(0)``: the panel shows 0, not "No data", while nothing happened. Pushed figures are not selected by
job (with node-exporter's textfile collector instead of the Pushgateway they keep their names, not the job).
tests/deploy/test_dashboards.py checks the files and evaluates every query against a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "time2bet-prometheus"}   # provisioning/datasources/prometheus.yml
SCHEMA_VERSION = 39
RATE = "$__rate_interval"

# the service's series, narrowed by the dashboard's variables
SVC = 'job="$job", instance=~"$instance"'


# --- building blocks ----------------------------------------------------------------------------------------------

def target(expr: str, legend: str = "__auto", *, instant: bool = False, ref: str = "A") -> dict:
    t = {"datasource": DATASOURCE, "refId": ref, "expr": expr, "legendFormat": legend, "editorMode": "code",
         "range": not instant, "instant": instant}
    if instant:
        t["format"] = "table"
    return t


def panel(kind: str, title: str, targets: list[dict], *, unit: str = "short", description: str = "",
          width: int = 12, height: int = 8, **options) -> dict:
    for i, t in enumerate(targets):
        t["refId"] = chr(ord("A") + i)
    p = {"type": kind, "title": title, "description": description, "datasource": DATASOURCE, "targets": targets,
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}, "gridPos": {"w": width,
                                                                                                    "h": height}}
    if kind == "timeseries":
        p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                                                  "showPoints": "never", "spanNulls": True}
        p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                        "tooltip": {"mode": "multi", "sort": "desc"}}
    elif kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "value", "graphMode": "area", "textMode": "auto"}
    elif kind == "table":
        p["options"] = {"showHeader": True, "cellHeight": "sm"}
        p["transformations"] = [{"id": "merge", "options": {}},
                                {"id": "organize", "options": {"excludeByName": {"Time": True}}}]
    thresholds = options.pop("thresholds", None)
    if thresholds:
        p["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": [
            {"color": color, "value": value} for value, color in thresholds]}
        p["fieldConfig"]["defaults"]["color"] = {"mode": "thresholds"}
    for key in ("min", "max", "decimals"):
        if key in options:
            p["fieldConfig"]["defaults"][key] = options.pop(key)
    assert not options, options
    return p


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "gridPos": {"w": 24, "h": 1}}


def query_variable(name: str, label: str, metric: str, *, include_all: bool = False, description: str = "") -> dict:
    definition = f"label_values({metric}, {label})"
    v = {"type": "query", "name": name, "label": name, "description": description, "datasource": DATASOURCE,
         "definition": definition, "query": {"qryType": 1, "query": definition, "refId": "PrometheusVariableQuery"},
         "refresh": 2, "sort": 1, "regex": "", "multi": False, "includeAll": include_all, "hide": 0,
         "current": {}, "options": []}
    if include_all:
        v["allValue"] = ".*"
    return v


def custom_variable(name: str, values: list[str], *, description: str = "") -> dict:
    return {"type": "custom", "name": name, "label": name, "description": description, "query": ",".join(values),
            "multi": False, "includeAll": False, "hide": 0,
            "current": {"selected": True, "text": values[0], "value": values[0]},
            "options": [{"selected": i == 0, "text": v, "value": v} for i, v in enumerate(values)]}


def dashboard(uid: str, title: str, description: str, variables: list[dict], panels: list[dict], *,
              tags: list[str], time_from: str = "now-6h") -> dict:
    x = y = line = 0
    for i, p in enumerate(panels, start=1):   # left to right, top to bottom
        p["id"] = i
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > 24:
            x, y = 0, y + line
            line = 0
        p["gridPos"].update(x=x, y=y)
        x, line = x + w, max(line, h)
        if p["type"] == "row":
            x, y, line = 0, y + h, 0
    return {"uid": uid, "title": title, "description": description, "tags": ["time2bet", *tags],
            "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": False, "graphTooltip": 1,
            "timezone": "utc", "refresh": "30s", "time": {"from": time_from, "to": "now"},
            "timepicker": {}, "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
            "links": [{"type": "dashboards", "tags": ["time2bet"], "asDropdown": True, "title": "Time2Bet",
                       "includeVars": False, "keepTime": True}],
            "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                      "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                      "name": "Annotations & Alerts", "type": "dashboard"}]},
            "templating": {"list": variables}, "panels": panels}


# --- Service ----------------------------------------------------------------------------------------------------

def service() -> dict:
    requests = f'time2bet_requests_total{{{SVC}, route!="/metrics"}}'
    shed = f"sum(rate(time2bet_requests_shed_total{{{SVC}}}[{RATE}]))"

    def quantile(q: float, metric: str, by: str, filters: str = "") -> str:
        return (f"histogram_quantile({q}, sum by ({by}, le) "
                f"(rate({metric}_bucket{{{SVC}{filters}}}[{RATE}])))")

    panels = [
        row("Traffic"),
        panel("stat", "Up", [target(f'up{{{SVC}}}', "{{instance}}")], width=4, height=4,
              description="1 while Prometheus scrapes the instance's /metrics (ServiceDown fires after 1 m at 0)",
              thresholds=[(None, "red"), (1, "green")]),
        panel("stat", "Requests / s", [target(f"sum(rate({requests}[{RATE}]))", "requests/s")],
              unit="reqps", width=5, height=4, description="every route but /metrics"),
        panel("stat", "Error ratio (5xx, shed excluded)", [target(
            f'((sum(rate(time2bet_requests_total{{{SVC}, route!="/metrics", status="5xx"}}[{RATE}]))'
            " or on () vector(0))"
            f" - ({shed} or on () vector(0))) / sum(rate({requests}[{RATE}]))", "5xx ratio")],
              unit="percentunit", width=5, height=4, decimals=2, thresholds=[(None, "green"), (0.01, "red")],
              description="as the ServiceErrorRatioHigh alert: 5xx answers that were not load shedding, over all"),
        panel("stat", "Served models", [target(f"max by (variant, version) (time2bet_model_info{{{SVC}}} == 1)",
                                               "{{variant}} v{{version}}", instant=True)],
              width=10, height=4, description="the model version each variant serves (time2bet_model_info == 1)"),
        panel("timeseries", "Requests by route", [target(f"sum by (route) (rate({requests}[{RATE}]))", "{{route}}")],
              unit="reqps"),
        panel("timeseries", "Requests by status class", [
            target(f"sum by (status) (rate({requests}[{RATE}]))", "{{status}}")], unit="reqps"),
        row("Latency and errors"),
        panel("timeseries", "Latency p50 / p99 by route", [
            target(quantile(0.5, "time2bet_request_seconds", "route", ', route!="/metrics"'), "p50 {{route}}"),
            target(quantile(0.99, "time2bet_request_seconds", "route", ', route!="/metrics"'), "p99 {{route}}")],
              unit="s", description="from the time2bet_request_seconds histogram (ServiceLatencyP99High: p99)"),
        panel("timeseries", "Error ratio by class", [
            target(f'(sum(rate(time2bet_requests_total{{{SVC}, route!="/metrics", status="5xx"}}[{RATE}])) '
                   f"or vector(0)) / sum(rate({requests}[{RATE}]))", "5xx (incl. shed)"),
            target(f'(sum(rate(time2bet_requests_total{{{SVC}, route!="/metrics", status="4xx"}}[{RATE}])) '
                   f"or vector(0)) / sum(rate({requests}[{RATE}]))", "4xx")],
              unit="percentunit"),
        panel("timeseries", "Rejected requests by reason", [
            target(f"sum by (reason) (rate(time2bet_validation_errors_total{{{SVC}}}[{RATE}])) or on () vector(0)",
                   "{{reason}}")], unit="reqps",
              description="error answers by reason (errors.py): unknown_team, body_too_large, jobs_queue_full, ..."),
        panel("timeseries", "Shed requests (503 overloaded)", [
            target(f"sum by (route) (rate(time2bet_requests_shed_total{{{SVC}}}[{RATE}])) or on () vector(0)",
                   "{{route}}")],
              unit="reqps", description="answered 503 past TIME2BET_MAX_IN_FLIGHT (shedding.py); 0 while none"),
        row("A/B split and batches"),
        panel("timeseries", "Predictions by variant", [
            target(f"sum by (variant) (rate(time2bet_predictions_total{{{SVC}}}[{RATE}]))", "{{variant}}")],
              unit="short", description="predictions served per second, by the A/B arm that answered"),
        panel("stat", "A/B split (share of predictions)", [
            target(f"sum by (variant) (increase(time2bet_predictions_total{{{SVC}}}[$__range])) / ignoring (variant)"
                   f" group_left sum(increase(time2bet_predictions_total{{{SVC}}}[$__range]))", "{{variant}}")],
              unit="percentunit", description="over the dashboard's time range"),
        panel("timeseries", "Predicted outcome by variant", [
            target(f"sum by (variant, outcome) (rate(time2bet_predictions_total{{{SVC}}}[{RATE}]))",
                   "{{variant}} {{outcome}}")], unit="short"),
        panel("timeseries", "Batch size p50 / p99 / mean", [
            target(quantile(0.5, "time2bet_batch_size", "source"), "p50 {{source}}"),
            target(quantile(0.99, "time2bet_batch_size", "source"), "p99 {{source}}"),
            target(f"sum by (source) (rate(time2bet_batch_size_sum{{{SVC}}}[{RATE}])) / sum by (source) "
                   f"(rate(time2bet_batch_size_count{{{SVC}}}[{RATE}]))", "mean {{source}}")],
              description="matches per POST /predict/batch and per async job"),
        row("Async jobs"),
        panel("timeseries", "Job queue depth vs its bound", [
            target(f"max(time2bet_jobs_queue_depth{{{SVC}}})", "pending jobs"),
            target(f"min(time2bet_jobs_queue_max_pending{{{SVC}}})", "bound (TIME2BET_JOBS_MAX_PENDING)")],
              description="at the bound POST /jobs answers 429"),
        panel("timeseries", "Job queue bytes vs its bound", [
            target(f"max(time2bet_jobs_queue_bytes{{{SVC}}})", "request bytes held"),
            target(f"min(time2bet_jobs_queue_max_bytes{{{SVC}}})", "bound (TIME2BET_JOBS_MAX_PENDING_BYTES)")],
              unit="bytes"),
        panel("stat", "Job queue fill", [target('job_bound:time2bet_jobs_queue_fill:ratio{job="$job"}', "{{bound}}")],
              unit="percentunit", width=8, thresholds=[(None, "green"), (0.8, "orange"), (1, "red")],
              description="recording rule of rules/service.yml; JobsQueueNearBound fires above 80%"),
        panel("timeseries", "Jobs by state", [
            target(f"sum by (state) (rate(time2bet_jobs_total{{{SVC}}}[{RATE}])) or on () vector(0)", "{{state}}")],
              width=16, description="batch jobs entering each state per second (pending = submitted)"),
        row("Prediction ledger and model"),
        panel("timeseries", "Ledger: predictions appended / dropped", [
            target(f'sum(rate(time2bet_ledger_predictions_total{{{SVC}, outcome="appended"}}[{RATE}]))'
                   " or on () vector(0)",
                   "appended"),
            target(f'sum(rate(time2bet_ledger_predictions_total{{{SVC}, outcome="dropped"}}[{RATE}]))'
                   " or on () vector(0)",
                   "dropped")],
              description="dropped: the ledger writer's buffer was full (LedgerPredictionsDropped)"),
        panel("stat", "Ledger drops in range", [
            target(f'sum(increase(time2bet_ledger_predictions_total{{{SVC}, outcome="dropped"}}[$__range])) '
                   "or on () vector(0)", "dropped")], width=4, thresholds=[(None, "green"), (1, "red")]),
        panel("stat", "Model swaps in range", [
            target(f"sum by (outcome) (increase(time2bet_model_swaps_total{{{SVC}}}[$__range])) or on () vector(0)",
                   "{{outcome}}"),
            target(f"sum by (outcome) (increase(time2bet_snapshot_swaps_total{{{SVC}}}[$__range])) or on () vector(0)",
                   "snapshot {{outcome}}")], width=4,
              description="model loads after an alias moved, and serving-snapshot reloads"),
        panel("stat", "Serving snapshot age", [
            target(f"max(time2bet_snapshot_age_seconds{{{SVC}}})", "age")], unit="s", width=4),
    ]
    variables = [
        query_variable("job", "job", "time2bet_requests_total", description="the service's scrape job"),
        query_variable("instance", "instance", 'time2bet_requests_total{job="$job"}', include_all=True),
    ]
    return dashboard("time2bet-service", "Time2Bet / Service",
                     "The forecast service: traffic, latency, errors, load shedding, the A/B split, batches, the "
                     "async job queue and the prediction ledger (bento_service/metrics.py).",
                     variables, panels, tags=["service"], time_from="now-3h")


# --- Model --------------------------------------------------------------------------------------------------------

def model() -> dict:
    live = 'window="$window", division="$division"'

    def score(name: str, title: str, unit: str = "short", description: str = "") -> dict:
        return panel("timeseries", title, [
            target(f"max by (variant, source) (time2bet_live_{name}{{{live}}})", "{{variant}} {{source}}")],
            unit=unit, width=8, description=description)

    panels = [
        row("Live log-loss"),
        panel("timeseries", "Live log-loss: model vs market vs Elo-only vs promotion estimate", [
            target(f"max by (model, model_version, variant, source) (time2bet_live_log_loss{{{live}}})",
                   "{{source}} ({{variant}} v{{model_version}})"),
            target("max by (model, model_version) (time2bet_live_promotion_estimate_log_loss)",
                   "promotion estimate v{{model_version}}")],
              width=24, height=9, description="each source on the matches it is scored on (market: with odds; elo: "
              "with pre-match ratings); the estimate is the log-loss the promotion gate judged the version on"),
        panel("timeseries", "Log-loss minus promotion estimate", [
            target(f'max by (model, model_version, variant) (time2bet_live_log_loss{{{live}, source="model"}} '
                   "- ignoring (week, window, variant, division, source) group_left "
                   "time2bet_live_promotion_estimate_log_loss)", "{{variant}} v{{model_version}}")],
              thresholds=[(None, "green"), (0.02, "red")],
              description="LiveLogLossAboveEstimate: above 0.02 on the rolling window, all divisions, >= 100 matches"),
        panel("timeseries", "Log-loss gap to the references (model - reference, same matches)", [
            target(f"max by (variant, reference) (time2bet_live_log_loss_gap{{{live}}})",
                   "{{variant}} vs {{reference}}")],
              thresholds=[(None, "green"), (0, "red")],
              description="> 0: the reference is better (LiveLogLossWorseThanEloReference for elo)"),
        panel("timeseries", "Matches scored", [
            target(f"max by (variant, source) (time2bet_live_matches{{{live}}})", "{{variant}} {{source}}")],
              width=8, description="model: every played match predicted before kickoff; market: with odds; "
              "elo: with ratings"),
        panel("timeseries", "Calibration: expected calibration error", [
            target(f"max by (variant, outcome) (time2bet_live_ece{{{live}}})", "{{variant}} {{outcome}}")],
              width=8, description="class-wise ECE (10 bins) per outcome, and their mean"),
        panel("table", "Log-loss per division (latest export)", [
            target('max by (division, variant, source) (time2bet_live_log_loss{window="$window"})',
                   "", instant=True)], width=8, decimals=4),
        row("Other scores"),
        score("accuracy", "Accuracy", "percentunit"),
        score("rps", "Ranked probability score", description="lower is better"),
        score("brier", "Brier score", description="lower is better (multi-class, sum over outcomes)"),
        panel("stat", "Live figures last exported", [
            target('time() - max(push_time_seconds{asset="live_quality"})', "age")], unit="s", width=24, height=4,
              description="since the live_quality asset last pushed its figures (weekly)"),
    ]
    variables = [
        query_variable("division", "division", "time2bet_live_log_loss",
                       description="ALL: every division together (what the alerts judge)"),
        custom_variable("window", ["rolling", "week"], description="rolling: the weeks ending with the latest; "
                        "week: the latest kickoff week only"),
    ]
    return dashboard("time2bet-model", "Time2Bet / Model",
                     "The model in production: live quality against the market, the Elo-only reference and the "
                     "promotion estimate, calibration, per division (the live_quality asset's figures).",
                     variables, panels, tags=["model"], time_from="now-30d")


# --- Data ---------------------------------------------------------------------------------------------------------

def data() -> dict:
    files = 'division=~"$division"'
    panels = [
        row("Freshness"),
        panel("stat", "Age of each stage", [
            target("max by (stage) (time() - time2bet_freshness_last_update_timestamp_seconds)", "{{stage}}")],
              unit="s", width=12, height=5, thresholds=[(None, "green"), (86400 * 2, "orange"), (86400 * 8, "red")],
              description="since ingestion, features, training, predictions (the ledger's newest too) and the batch "
                          "predictions last produced (FeaturesStale, BatchPredictionsStale)"),
        panel("stat", "Serving snapshot and monitoring pushes", [
            target("max(time2bet_snapshot_age_seconds)", "serving snapshot"),
            target('time() - max by (asset) (push_time_seconds{job="time2bet_monitoring"})', "push {{asset}}")],
              unit="s", width=12, height=5),
        panel("timeseries", "Stage age", [
            target("max by (stage) (time() - time2bet_freshness_last_update_timestamp_seconds)", "{{stage}}")],
              unit="s"),
        panel("timeseries", "Season files: time since last successful fetch (in season)", [
            target(f"time() - max by (division, season) (time2bet_ingestion_last_success_timestamp_seconds{{{files}}})"
                   f" and on (division, season) (max by (division, season) "
                   f"(time2bet_ingestion_season_in_progress{{{files}}}) == 1)", "{{division}} {{season}}")],
              unit="s", description="IngestionStaleInSeason: the files of the seasons being played"),
        panel("table", "Season files", [
            target(f"time() - max by (division, season) (time2bet_ingestion_last_success_timestamp_seconds"
                   f"{{{files}}})", "", instant=True),
            target(f"max by (division, season) (time2bet_ingestion_season_in_progress{{{files}}})", "",
                   instant=True)], width=24, description="Value #A: seconds since the last successful fetch; "
              "Value #B: 1 while the season is played"),
        row("Rejected files"),
        panel("stat", "Rejected season files", [
            target(f"sum(max by (division, season, reason) (time2bet_ingestion_files_rejected{{{files}}})) "
                   "or on () vector(0)", "rejected")], width=6, thresholds=[(None, "green"), (1, "red")],
              description="files whose latest version was not loaded (SourceFileRejected)"),
        panel("timeseries", "Rejected files by reason", [
            target(f"sum by (reason) (time2bet_ingestion_files_rejected{{{files}}}) or on () vector(0)", "{{reason}}")],
              width=9),
        panel("table", "Rejected files", [
            target(f"max by (division, season, reason) (time2bet_ingestion_files_rejected{{{files}}}) > 0 "
                   "or on () vector(0)", "", instant=True)], width=9,
              description="invalid: parsing or validation failed; quarantined: cut short, or drops or changes loaded "
              "matches; a single 0 row while none"),
        row("Drift"),
        panel("timeseries", "Share of drifted features", [
            target("max by (model, model_version) (time2bet_drift_share_of_drifted_features)",
                   "{{model}} v{{model_version}}")],
              unit="percentunit", width=8, thresholds=[(None, "green"), (0.5, "red")],
              description="dataset drift (FeatureDrift) from 50%"),
        panel("timeseries", "Drift flags", [
            target("max(time2bet_drift_dataset_drift) or on () vector(0)", "dataset"),
            target("max(time2bet_drift_prediction_drift) or on () vector(0)", "prediction"),
            target("max(time2bet_drift_target_drift) or on () vector(0)", "target")],
              width=8, max=1, min=0, description="1 when drifted; prediction and target only once testable"),
        panel("timeseries", "Features drifted / tested", [
            target("max(time2bet_drift_features_drifted)", "drifted"),
            target("max(time2bet_drift_features_tested)", "tested")], width=8),
        panel("table", "Drift p-values by column (latest week)", [
            target("min by (kind, column) (time2bet_drift_p_value)", "", instant=True)], width=12, decimals=4,
              description="two-sample test per column (KS; chi-square for the outcome): below 0.05 it drifted"),
        panel("timeseries", "Smallest p-value by kind", [
            target("min by (kind) (time2bet_drift_p_value)", "{{kind}}")], width=12,
              thresholds=[(None, "red"), (0.05, "green")]),
        row("Pipeline runs and ledger"),
        panel("stat", "Failed Dagster runs in range", [
            target("sum(increase(time2bet_dagster_runs_failed_total[$__range])) or on () vector(0)", "failed runs")],
              width=6, thresholds=[(None, "green"), (1, "red")]),
        panel("timeseries", "Failed Dagster runs by job", [
            target(f"sum by (job_name) (increase(time2bet_dagster_runs_failed_total[{RATE}])) > 0 or on () vector(0)",
                   "{{job_name}}")], width=9, description="DagsterRunFailed; 0 while none failed"),
        panel("timeseries", "Prediction ledger verification", [
            target("max by (scope) (time2bet_ledger_problems)", "problems ({{scope}})"),
            target("min(time2bet_ledger_verified)", "verified"),
            target("max(time2bet_ledger_torn_tails)", "torn tails")], width=9,
              description="LedgerChainProblems; from the prediction_ledger asset (daily)"),
    ]
    variables = [
        query_variable("division", "division", "time2bet_ingestion_last_success_timestamp_seconds",
                       include_all=True),
    ]
    return dashboard("time2bet-data", "Time2Bet / Data",
                     "The data pipeline: freshness of ingestion, features, training and predictions, rejected "
                     "source files, drift, failed Dagster runs and the prediction ledger's verification.",
                     variables, panels, tags=["data"], time_from="now-7d")


BUILDERS = {"service.json": service, "model.json": model, "data.json": data}


def render() -> dict[str, str]:
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in BUILDERS.items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, text in render().items():
        path = DASHBOARDS / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"out of date (run python {Path(__file__).name}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
