"""The monitoring figures as Prometheus gauges: live quality, drift, the ledger and the freshness of every stage.

Batch jobs do not live long enough to be scraped, so each monitoring asset builds its figures in a registry of its
own (:func:`ledger_figures`, :func:`live_quality_figures`, :func:`drift_figures`) and :func:`export` writes them

- always to a textfile in node-exporter's textfile format: ``<home>/monitoring/prometheus/<asset>.prom`` (written
  with ``prometheus_client.write_to_textfile``, atomically), and all assets' files together as
  ``<home>/monitoring/metrics.prom``, the file to point node-exporter's textfile collector (or any scraper of a
  file) at; every asset owns its metric families, so the combined file is valid exposition;
- and to a Pushgateway when one is configured (TIME2BET_PUSHGATEWAY_URL): job ``time2bet_monitoring``, grouped by
  asset, so each asset's push replaces its own figures only. A failed push is reported, not raised: the textfile
  has the figures either way.

Metric names: ``time2bet_live_*``, ``time2bet_drift_*``, ``time2bet_ledger_*``, ``time2bet_freshness_seconds``
(and ``time2bet_freshness_last_update_timestamp_seconds``, which stays right between exports:
``time() - time2bet_freshness_last_update_timestamp_seconds`` is the age now). Partitioned figures carry their
partition (``week``, ``day``) as a label.

The pipeline's own figures (:func:`ingestion_figures`, :func:`rejected_files_figures`, :func:`dagster_runs_figures`)
are exported the same way, by the Dagster sensors of the monitoring area: ``time2bet_ingestion_*`` per season file
(``division``, ``season``) and ``time2bet_dagster_runs_failed_total`` per job (``job_name``). Each export carries
the whole current state (a push replaces the asset's group), never a change.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

from time2bet import settings

JOB = "time2bet_monitoring"
TEXTFILE = "metrics.prom"
PARTS = "prometheus"
STAGES = ("ingestion", "features", "training", "predictions")
_LIVE = ("week", "window", "model", "model_version", "variant", "division")


monitoring_dir = settings.monitoring_dir   # one definition of the folder, which the service reads too


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


# --- the figures ------------------------------------------------------------------------------------------------

def ledger_figures(day: str, *, predictions: int, records: int, chains: int, problems: int, problems_elsewhere: int,
                   torn_tails: int, freshness: Mapping[str, dt.datetime | None],
                   now: dt.datetime | None = None) -> CollectorRegistry:
    """The prediction_ledger asset's figures: the day's rows, records, chains and problems, and the freshness of
    ingestion, features, training and predictions (``freshness``: stage -> when it was last updated)."""
    registry = CollectorRegistry()
    now = now or dt.datetime.now(dt.UTC)
    gauges = {
        "predictions": ("time2bet_ledger_predictions", "predictions (rows) in the day's ledger segments, loaded"),
        "records": ("time2bet_ledger_records", "records in the day's ledger segments"),
        "chains": ("time2bet_ledger_chains", "writers (hash chains) with a segment that day"),
        "torn_tails": ("time2bet_ledger_torn_tails", "records cut short by a crash at the end of the day's segments"),
    }
    values = {"predictions": predictions, "records": records, "chains": chains, "torn_tails": torn_tails}
    for key, (name, text) in gauges.items():
        Gauge(name, text, ["day"], registry=registry).labels(day=day).set(values[key])
    found = Gauge("time2bet_ledger_problems", "verification problems (edited, removed, reordered, truncated records, "
                  "anchor mismatches) in the chains of the day, or elsewhere in the ledger", ["day", "scope"],
                  registry=registry)
    found.labels(day=day, scope="day").set(problems)
    found.labels(day=day, scope="elsewhere").set(problems_elsewhere)
    Gauge("time2bet_ledger_verified", "1 when the day's chains verified against every anchor and were loaded",
          ["day"], registry=registry).labels(day=day).set(1 if problems == 0 else 0)
    age = Gauge("time2bet_freshness_seconds", "seconds since the stage last produced (at export time)", ["stage"],
                registry=registry)
    stamp = Gauge("time2bet_freshness_last_update_timestamp_seconds", "when the stage last produced (Unix time)",
                  ["stage"], registry=registry)
    for stage, when in freshness.items():
        if when is not None:
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
            age.labels(stage=stage).set(max(0.0, (now - when).total_seconds()))
            stamp.labels(stage=stage).set(when.timestamp())
    return registry


def live_quality_figures(table: pd.DataFrame, estimates: Mapping[tuple[str, str], float | None]) -> CollectorRegistry:
    """The live_quality asset's figures, from its rows (store.LIVE_QUALITY columns; ``week`` as the label)."""
    registry = CollectorRegistry()
    labels = [*_LIVE, "source"]
    matches = Gauge("time2bet_live_matches", "played matches predicted before kickoff, scored (source model: all; "
                    "market: with odds; elo: with pre-match ratings)", labels, registry=registry)
    scores = {name: Gauge(f"time2bet_live_{name}", f"live {name.replace('_', '-')} of the model and its references "
                          "(market, Elo-only) on the matches each is scored on", labels, registry=registry)
              for name in ("log_loss", "rps", "brier", "accuracy")}
    ece = Gauge("time2bet_live_ece", "live class-wise expected calibration error (10 bins)", [*_LIVE, "outcome"],
                registry=registry)
    gap = Gauge("time2bet_live_log_loss_gap", "model log-loss minus the reference's on the same matches (> 0: the "
                "reference is better)", [*_LIVE, "reference"], registry=registry)
    estimate = Gauge("time2bet_live_promotion_estimate_log_loss", "the version's log-loss when the promotion gate "
                     "judged it (gate.challenger_log_loss)", ["model", "model_version"], registry=registry)
    for row in table.to_dict("records"):
        base = {"week": str(pd.Timestamp(row["week"]).date()), "window": row["window"], "model": row["model_name"],
                "model_version": str(row["model_version"]), "variant": row["variant"], "division": row["division"]}
        for source, count in (("model", "n"), ("market", "n_with_odds"), ("elo", "n_elo")):
            matches.labels(**base, source=source).set(row[count])
            for name, gauge in scores.items():
                value = row[name] if source == "model" else row.get(f"{source}_{name}")
                if _finite(value):
                    gauge.labels(**base, source=source).set(value)
        for outcome in ("home", "draw", "away"):
            if _finite(row.get(f"ece_{outcome}")):
                ece.labels(**base, outcome=outcome).set(row[f"ece_{outcome}"])
        if _finite(row.get("ece")):
            ece.labels(**base, outcome="mean").set(row["ece"])
        for reference, on in (("market", "odds"), ("elo", "elo")):
            model, other = row.get(f"model_log_loss_on_{on}"), row.get(f"{reference}_log_loss")
            if _finite(model) and _finite(other):
                gap.labels(**base, reference=reference).set(float(model) - float(other))
    for (name, version), value in estimates.items():
        if _finite(value):
            estimate.labels(model=name, model_version=str(version)).set(value)
    return registry


def drift_figures(week: str, model_name: str, model_version: str | None, result) -> CollectorRegistry:
    """The drift_report asset's figures from a :class:`time2bet.monitoring.drift.DriftResult`."""
    registry = CollectorRegistry()
    base = {"week": week, "model": model_name, "model_version": model_version or ""}
    names = list(base)
    Gauge("time2bet_drift_share_of_drifted_features", "share of the model's features that drifted from the "
          "champion's training window", names, registry=registry).labels(**base).set(result.share_drifted)
    Gauge("time2bet_drift_features_drifted", "features that drifted", names,
          registry=registry).labels(**base).set(result.features_drifted)
    Gauge("time2bet_drift_features_tested", "features tested", names,
          registry=registry).labels(**base).set(result.features_tested)
    Gauge("time2bet_drift_dataset_drift", "1 when the share of drifted features reached the drift share", names,
          registry=registry).labels(**base).set(1 if result.dataset_drift else 0)
    for name, value, text in (("prediction_drift", result.prediction_drift, "1 when a predicted probability drifted"),
                              ("target_drift", result.target_drift,
                               "1 when the outcome shares or goals per match drifted (only once results are in)")):
        if value is not None:
            Gauge(f"time2bet_drift_{name}", text, names, registry=registry).labels(**base).set(1 if value else 0)
    matches = Gauge("time2bet_drift_matches", "matches compared: the reference window, the period's predicted "
                    "matches, and those of them played", [*names, "set"], registry=registry)
    for key, value in (("reference", result.n_reference), ("current", result.n_current),
                       ("current_played", result.n_current_played)):
        matches.labels(**base, set=key).set(value)
    p_value = Gauge("time2bet_drift_p_value", "p-value of the two-sample test of a column (KS; chi-square for the "
                    "outcome): below 0.05 it drifted", [*names, "kind", "column"], registry=registry)
    drifted = Gauge("time2bet_drift_column_drifted", "1 when the column drifted", [*names, "kind", "column"],
                    registry=registry)
    for row in result.columns.to_dict("records"):
        labels = {**base, "kind": row["kind"], "column": row["column_name"]}
        if _finite(row["statistic"]):
            p_value.labels(**labels).set(row["statistic"])
        drifted.labels(**labels).set(1 if row["drifted"] else 0)
    return registry


# --- the pipeline's own figures ---------------------------------------------------------------------------------

REJECTION_REASONS = ("invalid", "quarantined")   # a file that fails parsing or validation; one cut short or
                                                  # dropping or changing loaded matches (time2bet.ingestion)


def ingestion_figures(partitions: Mapping[tuple[str, str], tuple[float | None, bool]]) -> CollectorRegistry:
    """The ingestion's freshness, per season file: ``partitions`` maps (division, season) to (when its file was
    last fetched successfully from the source, Unix time, None if not known; whether its season is being played).
    Exported as asset ``source_season_files``."""
    registry = CollectorRegistry()
    success = Gauge("time2bet_ingestion_last_success_timestamp_seconds", "when the season file was last fetched "
                    "successfully from the source (found unchanged since loaded, or loaded), Unix time",
                    ["division", "season"], registry=registry)
    playing = Gauge("time2bet_ingestion_season_in_progress", "1 while the season of the file is being played (the "
                    "current season), 0 for the previous one", ["division", "season"], registry=registry)
    for (division, season), (when, in_progress) in sorted(partitions.items()):
        if _finite(when):
            success.labels(division=division, season=season).set(float(when))
        playing.labels(division=division, season=season).set(1 if in_progress else 0)
    return registry


def rejected_files_figures(states: Mapping[tuple[str, str], str | None]) -> CollectorRegistry:
    """The season files not loaded: ``states`` maps (division, season) to why the latest version of its file was
    not loaded (one of :data:`REJECTION_REASONS`), or None/"" when it was (or needed no loading). Every partition
    has one series per reason, 1 or 0. Exported as asset ``raw_matches``."""
    registry = CollectorRegistry()
    rejected = Gauge("time2bet_ingestion_files_rejected", "season files whose latest version was not loaded (the "
                     "partition keeps its last good data), by reason: invalid (parsing or validation failed), "
                     "quarantined (cut short, or drops or changes loaded matches)", ["division", "season", "reason"],
                     registry=registry)
    for (division, season), state in sorted(states.items()):
        if state and state not in REJECTION_REASONS:
            raise ValueError(f"{division}|{season}: unknown rejection reason {state!r}")
        for reason in REJECTION_REASONS:
            rejected.labels(division=division, season=season, reason=reason).set(1 if state == reason else 0)
    return registry


def dagster_runs_figures(failed: Mapping[str, int]) -> CollectorRegistry:
    """Runs in FAILURE status in Dagster's run storage, per job (``failed``: job name -> count; every job of the
    code location, those without a failure at 0, so that ``increase()`` sees the first one). A gauge that only
    grows while runs are kept: deleting failed runs lowers it. Exported as asset ``dagster_runs``."""
    registry = CollectorRegistry()
    runs = Gauge("time2bet_dagster_runs_failed_total", "runs of the Dagster job in FAILURE status in the run "
                 "storage (grows by one with each failed run)", ["job_name"], registry=registry)
    for job_name, count in sorted(failed.items()):
        runs.labels(job_name=job_name).set(count)
    return registry


# --- where they go ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Exported:
    part: Path          # this asset's own file
    textfile: Path      # every asset's figures
    pushed: bool
    push_error: str | None


def export(registry: CollectorRegistry, *, asset: str, home: Path | str, pushgateway_url: str | None = None,
           timeout_s: float = 10.0) -> Exported:
    """Write ``registry`` as ``asset``'s part of the textfile (and the combined textfile), then push it to the
    Pushgateway when ``pushgateway_url`` is set (job :data:`JOB`, grouping key ``asset``)."""
    folder = monitoring_dir(home)
    parts = folder / PARTS
    parts.mkdir(parents=True, exist_ok=True)
    part, combined = parts / f"{asset}.prom", folder / TEXTFILE
    with open(folder / ".metrics.lock", "w") as lock:   # one writer of the combined file at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        write_to_textfile(str(part), registry)
        text = "".join(p.read_text() for p in sorted(parts.glob("*.prom")))
        temporary = combined.with_name(f".{combined.name}.{os.getpid()}")
        temporary.write_text(text)
        os.replace(temporary, combined)
    pushed, error = False, None
    if pushgateway_url:
        try:
            push_to_gateway(pushgateway_url, job=JOB, registry=registry, grouping_key={"asset": asset},
                            timeout=timeout_s)
            pushed = True
        except OSError as exc:   # URLError, connection refused, timeouts, HTTP errors
            error = f"{type(exc).__name__}: {exc}"
    return Exported(part=part, textfile=combined, pushed=pushed, push_error=error)
