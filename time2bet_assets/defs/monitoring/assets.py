"""Monitoring assets: the prediction ledger loaded and anchored, live quality of what was predicted before kickoff,
and drift of what is being predicted (the core is time2bet.monitoring; this is the orchestration around it).

    prediction_ledger [UTC day]  ──▶ monitoring.ledger_predictions ──▶ live_quality [kickoff week] (+ 2 checks)
                                                                  └──▶ drift_report [kickoff week]

Every asset writes its figures for Prometheus (time2bet.monitoring.prometheus): ``<home>/monitoring/metrics.prom``
and, when TIME2BET_PUSHGATEWAY_URL is set, the Pushgateway.
"""

import base64
import datetime as dt
import io

import dagster as dg
import pandas as pd
from mlflow.exceptions import MlflowException

from time2bet.ledger import anchors_from_mapping, anchors_to_mapping, merge_anchors, read_records
from time2bet.monitoring import prometheus, store
from time2bet.monitoring.ledger_days import newest_record_time, verify_day
from time2bet.scoreboard_store import write_scoreboard
from time2bet.serving_contract import CHAMPION, MODEL_FEATURES
from time2bet_assets.defs.monitoring.partitions import kickoff_weeks, ledger_days
from time2bet_assets.defs.monitoring.resources import MonitoringResource
from time2bet_assets.lib.ledger import LedgerResource
from time2bet_assets.lib.warehouse import WarehouseResource

# upstream, named by key (areas do not import each other)
STG_MATCHES = dg.AssetKey(["stg_matches"])
FCT_MATCH_FEATURES = dg.AssetKey(["fct_match_features"])
UPCOMING_MATCH_FEATURES = dg.AssetKey(["upcoming_match_features"])
# the stages whose freshness is exported (their last materialization); "predictions" is also moved on by the
# ledger's newest record (the service's answers), "batch_predictions" is the fixtures' batch alone (BatchPredictionsStale)
FRESHNESS = {"ingestion": dg.AssetKey(["raw_matches"]), "features": FCT_MATCH_FEATURES,
             "training": dg.AssetKey(["registered_model"]), "predictions": dg.AssetKey(["batch_predictions"]),
             "batch_predictions": dg.AssetKey(["batch_predictions"])}

ESTIMATE_CHECK = "live_logloss_vs_promotion_estimate"
REFERENCE_CHECK = "live_logloss_vs_elo_reference"

# Declarative automation (the code location's default automation sensor runs it once switched on in the UI): the
# ledger every 6 hours, today's partition and yesterday's (whose last records came after the previous load);
# quality and drift on Tuesdays, for the week that ended on Sunday (results are in by then).
LEDGER_AUTOMATION = (
    dg.AutomationCondition.in_latest_time_window(lookback_delta=dt.timedelta(days=2))
    & dg.AutomationCondition.cron_tick_passed("15 */6 * * *", "UTC").since_last_handled()
).with_label("every 6 hours: today and yesterday")
WEEKLY_AUTOMATION = (
    dg.AutomationCondition.in_latest_time_window()
    & dg.AutomationCondition.cron_tick_passed("0 7 * * 2", "UTC").since_last_handled()
).with_label("Tuesdays 07:00 UTC: the week that ended on Sunday")


def _md(frame: pd.DataFrame, limit: int = 40) -> dg.MetadataValue:
    if frame is None or not len(frame):
        return dg.MetadataValue.md("_none_")
    text = frame.head(limit).to_markdown(index=False)
    return dg.MetadataValue.md(text + (f"\n\n... and {len(frame) - limit} more" if len(frame) > limit else ""))


def _exported(result: prometheus.Exported) -> dict:
    out = {"prometheus_textfile": dg.MetadataValue.path(str(result.textfile)), "pushed_to_pushgateway": result.pushed}
    if result.push_error:
        out["push_error"] = result.push_error
    return out


# --- the ledger -------------------------------------------------------------------------------------------------

def recorded_anchors(instance: dg.DagsterInstance, key: dg.AssetKey):
    """Every chain head recorded so far in this asset's materializations (metadata ``anchors``), merged: the
    anchors the ledger is verified against, kept outside the ledger files."""
    found, cursor = [], None
    while True:
        page = instance.fetch_materializations(key, limit=1000, cursor=cursor)
        for record in page.records:
            materialization = record.asset_materialization
            value = materialization.metadata.get("anchors") if materialization else None
            if value is not None and isinstance(value.value, dict):
                found.append(anchors_from_mapping(value.value))
        if not page.has_more:
            break
        cursor = page.cursor
    return merge_anchors(*found)


def _last_update(instance: dg.DagsterInstance, key: dg.AssetKey) -> dt.datetime | None:
    event = instance.get_latest_materialization_event(key)
    return dt.datetime.fromtimestamp(event.timestamp, dt.UTC) if event is not None else None


@dg.asset(partitions_def=ledger_days, group_name="monitoring", kinds={"python", "duckdb", "postgres"},
          automation_condition=LEDGER_AUTOMATION)
def prediction_ledger(context: dg.AssetExecutionContext, warehouse: WarehouseResource, ledger: LedgerResource,
                      monitoring: MonitoringResource) -> dg.MaterializeResult:
    """One UTC day of the prediction ledger (every served and batch prediction), verified and loaded.

    The whole ledger is re-hashed and checked against every chain head earlier materializations recorded; a
    problem in a chain of this day (an edited, removed or reordered record, a truncated chain, a rewritten one)
    fails the run and loads nothing. Otherwise the day's rows replace its partition of
    ``monitoring.ledger_predictions``, and the day's chain heads are recorded in this materialization's metadata
    (``anchors``): the anchors the next verification holds the ledger to."""
    day = context.partition_key
    anchors = recorded_anchors(context.instance, context.asset_key)
    try:   # read before verifying: every row loaded was among the records verified (writers may append meanwhile)
        records = read_records(ledger.ledger_dir, day)
    except ValueError:   # an unreadable line: verify() says which
        records = None
    checked = verify_day(ledger.ledger_dir, day, anchors)
    if not checked.ok:
        records = None
    elif records is None:   # verified meanwhile: read again (an unreadable line now raises, naming it)
        records = read_records(ledger.ledger_dir, day)
    freshness = {stage: _last_update(context.instance, key) for stage, key in FRESHNESS.items()}
    newest = newest_record_time(ledger.ledger_dir)
    if newest is not None and (freshness["predictions"] is None or newest > freshness["predictions"]):
        freshness["predictions"] = newest
    figures = prometheus.ledger_figures(
        day, predictions=len(records) if records is not None else 0,
        records=int(records["seq"].groupby(records["writer"]).nunique().sum()) if records is not None else 0,
        chains=len(checked.writers), problems=len(checked.problems), problems_elsewhere=len(checked.problems_elsewhere),
        torn_tails=len(checked.torn_tails), freshness=freshness)
    exported = prometheus.export(figures, asset="prediction_ledger", home=monitoring.home,
                                 pushgateway_url=monitoring.pushgateway_url)
    if not checked.ok:
        context.log.error(f"ledger day {day} failed verification:\n{checked.listing()}")
        raise dg.Failure(
            description=f"the prediction ledger does not verify for {day}: {len(checked.problems)} problem(s) in "
                        f"its chains ({checked.report.summary()}); nothing was loaded and no anchor recorded",
            metadata={"problems": dg.MetadataValue.md("```\n" + checked.listing() + "\n```"),
                      "anchors_checked": sum(len(v) for v in anchors.values())})
    rows = store.replace_partition(warehouse.open(), store.LEDGER_TABLE, store.ledger_rows_for_table(records),
                                   key="day", value=dt.date.fromisoformat(day))
    context.log.info(f"ledger {day}: {rows} predictions from {len(checked.writers)} chain(s); "
                     f"{checked.report.summary()}")
    elsewhere = "\n".join(str(p) for p in checked.problems_elsewhere)
    if elsewhere:
        context.log.warning(f"problems in chains without a segment on {day}:\n{elsewhere}")
    per_source = records.groupby(["source", "variant", "model_version"]).size().rename("predictions").reset_index() \
        if len(records) else pd.DataFrame()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "anchors": dg.MetadataValue.json(anchors_to_mapping(checked.heads)),
        "records": int(records[["writer", "seq"]].drop_duplicates().shape[0]) if len(records) else 0,
        "chains": len(checked.writers),
        "anchors_checked": sum(len(v) for v in anchors.values()),
        "verification": checked.report.summary(),
        "torn_tails": len(checked.torn_tails),
        "problems_elsewhere": dg.MetadataValue.md("```\n" + elsewhere + "\n```") if elsewhere else "none",
        "predictions": _md(per_source),
        **_exported(exported),
    })


# --- live quality -----------------------------------------------------------------------------------------------

def _window(context: dg.AssetExecutionContext, weeks: int) -> tuple[dt.date, dt.date, dt.date]:
    """(week start, rolling window start, end exclusive) of the partition."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return start, start - dt.timedelta(weeks=max(1, weeks) - 1), end


def _ledger_rows(warehouse, start: dt.date, end: dt.date) -> pd.DataFrame:
    from time2bet.ledger import COLUMNS

    if not store.table_exists(warehouse, store.LEDGER_TABLE):
        return pd.DataFrame(columns=COLUMNS)
    table = warehouse.read_sql(f"SELECT * FROM {store.LEDGER_TABLE} "
                               f"WHERE kickoff_date >= DATE '{start}' AND kickoff_date < DATE '{end}'")
    return store.ledger_rows_from_table(table)


def _played(warehouse, start: dt.date, end: dt.date) -> pd.DataFrame:
    return warehouse.read_sql(
        "SELECT match_id, division, season, match_date, home_team, away_team, result, home_goals, away_goals, "
        "market_odds_home, market_odds_draw, market_odds_away FROM analytics.stg_matches "
        f"WHERE match_date >= DATE '{start}' AND match_date < DATE '{end}'")


def _features(warehouse, table: str, ids: list[str], columns: list[str]) -> pd.DataFrame:
    quoted = ", ".join(f"'{i}'" for i in ids if str(i).isalnum())   # match ids are md5 hex digests
    if not quoted:
        return pd.DataFrame(columns=["match_id", *columns])
    present = set(warehouse.read_sql(f"SELECT * FROM {table} WHERE 1 = 0").columns)
    wanted = ", ".join(c for c in ["match_id", *columns] if c in present)
    return warehouse.read_sql(f"SELECT {wanted} FROM {table} WHERE match_id IN ({quoted})")


def _figure_md(fig, path) -> dg.MetadataValue:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return dg.MetadataValue.md(f"![cumulative log-loss](data:image/png;base64,"
                               f"{base64.b64encode(buffer.getvalue()).decode()})")


def _check_result(name: str, verdicts, severity: dg.AssetCheckSeverity) -> dg.AssetCheckResult:
    judged = [v for v in verdicts if not v.note.startswith("not judged")]
    failed = [v for v in verdicts if not v.passed]
    if not verdicts:
        text = "no version predicted a played match in the window"
    elif failed:
        text = "; ".join(f"v{v.model_version} {v.variant}: {v.note}" for v in failed)
    elif judged:
        text = f"{len(judged)} version/variant(s) judged, all within bounds"
    else:
        text = "; ".join(f"v{v.model_version} {v.variant}: {v.note}" for v in verdicts)
    return dg.AssetCheckResult(
        check_name=name, passed=not failed, severity=severity, description=text,
        metadata={"verdicts": _md(pd.DataFrame([v.row() for v in verdicts])), "judged": len(judged),
                  "failed": len(failed)})


@dg.asset(
    partitions_def=kickoff_weeks,
    deps=[dg.AssetDep("prediction_ledger", partition_mapping=dg.AllPartitionMapping()), STG_MATCHES,
          FCT_MATCH_FEATURES],
    group_name="monitoring", kinds={"python", "duckdb", "postgres"}, automation_condition=WEEKLY_AUTOMATION,
    check_specs=[
        dg.AssetCheckSpec(ESTIMATE_CHECK, asset="live_quality",
                          description="warns when a version's rolling live log-loss exceeds its promotion-time "
                                      "estimate (gate.challenger_log_loss) by more than the margin"),
        dg.AssetCheckSpec(REFERENCE_CHECK, asset="live_quality",
                          description="fails when a version's rolling live log-loss is worse than its Elo-only "
                                      "reference's on the same matches"),
    ],
)
def live_quality(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 monitoring: MonitoringResource) -> dg.MaterializeResult:
    """How the models did on the matches of a kickoff week, and over the rolling window of weeks ending with it: for
    every model version, A/B variant and division (and ALL), log-loss, RPS, Brier, accuracy and class-wise ECE of
    the last prediction each made before kickoff (``as_of`` <= 00:00 UTC of the match day), beside the de-margined
    market and the version's own Elo-only reference on exactly the same matches. Rows in ``monitoring.live_quality``;
    the checks judge the rolling window."""
    from time2bet.mlflow_store import registry_client
    from time2bet.monitoring.live_quality import (
        ALL_DIVISIONS,
        REFERENCE_INPUTS,
        add_reference,
        check_against_estimate,
        check_against_reference,
        cumulative_figure,
        join_predictions,
        quality_table,
    )
    from time2bet.monitoring.versions import elo_reference, training_window, version_facts

    week, start, end = _window(context, monitoring.window_weeks)
    wh = warehouse.open()
    joined = join_predictions(_ledger_rows(wh, start, end), _played(wh, start, end))
    frame = joined.frame
    client = registry_client(monitoring.tracking_uri)
    facts, references, sources = {}, {}, {}
    for name, version in frame[["model_name", "model_version"]].drop_duplicates().itertuples(index=False):
        key = (name, str(version))
        try:
            facts[key] = version_facts(client, name, str(version))
        except MlflowException as exc:   # a version the registry does not know (deleted, another store)
            context.log.warning(f"{name} v{version}: not in the registry ({type(exc).__name__}); no estimate, no "
                                "Elo-only reference")
            references[key], sources[key] = None, "none"
            continue
        references[key], sources[key] = elo_reference(
            client, facts[key], lambda f=facts[key]: training_window(f, wh, monitoring.dataset_dir))
        if sources[key] == "refitted":
            context.log.warning(f"{name} v{version}: its training run logged no Elo-only reference; refitted on its "
                                "training window")
    inputs = _features(wh, "analytics.fct_match_features", sorted(frame["match_id"].unique()),
                       list(REFERENCE_INPUTS))
    frame = add_reference(frame, inputs, references)
    estimates = {key: f.promotion_log_loss for key, f in facts.items()}

    now = dt.datetime.now(dt.UTC)
    tables = []
    for window, rows, first in (("week", frame[pd.to_datetime(frame["match_date"]).dt.date >= week], week),
                                ("rolling", frame, start)):
        table = quality_table(rows)
        if len(table):
            table.insert(0, "week", week)
            table.insert(1, "window", window)
            table.insert(2, "window_start", first)
            table.insert(3, "window_end", end - dt.timedelta(days=1))
            keys = list(zip(table["model_name"], table["model_version"].astype(str)))
            table["elo_reference"] = [sources.get(k, "none") for k in keys]
            table["promotion_log_loss"] = [estimates.get(k) for k in keys]
            table["computed_at"] = now
            tables.append(table)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(store.LIVE_QUALITY))
    rows = store.replace_partition(wh, store.LIVE_QUALITY_TABLE, table, key="week", value=week)
    # the service's GET /quality reads this export, never the warehouse (time2bet.scoreboard_store)
    write_scoreboard(wh.read_sql(f"SELECT * FROM {store.LIVE_QUALITY_TABLE}"), monitoring.folder)

    overall = table[(table["window"] == "rolling") & (table["division"] == ALL_DIVISIONS)]
    verdicts_estimate = check_against_estimate(overall, estimates, margin=monitoring.logloss_margin,
                                               min_matches=monitoring.min_matches)
    verdicts_reference = check_against_reference(overall, min_matches=monitoring.min_matches)
    exported = prometheus.export(prometheus.live_quality_figures(table, estimates), asset="live_quality",
                                 home=monitoring.home, pushgateway_url=monitoring.pushgateway_url)
    plot = monitoring.folder / "live_quality" / f"{week}.png"
    picture = _figure_md(cumulative_figure(frame, f"cumulative log-loss, kickoffs {start}..{end - dt.timedelta(days=1)}"),
                         plot)
    shown = ["window", "model_version", "variant", "division", "n", "log_loss", "rps", "brier", "accuracy", "ece",
             "market_log_loss", "model_log_loss_on_odds", "elo_log_loss", "model_log_loss_on_elo",
             "promotion_log_loss"]
    scoreboard = table[shown].round(4) if len(table) else table
    context.log.info(f"live quality {week}: {len(frame)} predictions of played matches scored "
                     f"({joined.after_kickoff} made after kickoff left out, {joined.superseded} superseded)")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "window": f"{start}..{end - dt.timedelta(days=1)} (rolling {monitoring.window_weeks} weeks)",
            "scored": len(frame),
            "ledger_predictions": joined.predictions,
            "of_played_matches": joined.of_played,
            "after_kickoff_excluded": joined.after_kickoff,
            "superseded": joined.superseded,
            "elo_reference": dg.MetadataValue.json({f"{n} v{v}": s for (n, v), s in sources.items()}),
            "scoreboard": _md(scoreboard),
            "cumulative_log_loss": picture,
            "plot": dg.MetadataValue.path(str(plot)),
            **_exported(exported),
        },
        check_results=[_check_result(ESTIMATE_CHECK, verdicts_estimate, dg.AssetCheckSeverity.WARN),
                       _check_result(REFERENCE_CHECK, verdicts_reference, dg.AssetCheckSeverity.ERROR)],
    )


# --- drift ------------------------------------------------------------------------------------------------------

def _period_version(ledger: pd.DataFrame, client, model_name: str) -> tuple[str, str | None]:
    """The version to hold the period against: the one that answered as champion most often in it, else the
    registry's champion now."""
    from time2bet.monitoring.versions import alias_version

    answered = ledger[ledger["variant"] == CHAMPION]
    if len(answered):
        name, version = answered.groupby(["model_name", "model_version"]).size().idxmax()
        return str(name), str(version)
    return model_name, alias_version(client, model_name)


@dg.asset(
    partitions_def=kickoff_weeks,
    deps=[dg.AssetDep("prediction_ledger", partition_mapping=dg.AllPartitionMapping()), STG_MATCHES,
          FCT_MATCH_FEATURES, UPCOMING_MATCH_FEATURES],
    group_name="monitoring", kinds={"evidently", "python"}, automation_condition=WEEKLY_AUTOMATION,
)
def drift_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                 monitoring: MonitoringResource) -> dg.MaterializeResult:
    """Evidently report of the matches predicted for a kickoff week against the champion's training window: drift of
    the model's features, of the predicted probabilities (against the champion's on its training window) and, once
    results are in, of the outcome shares and goals per match. The HTML is kept under
    ``<home>/monitoring/drift/<week>.html``; every test's p-value in ``monitoring.drift``."""
    from time2bet.mlflow_store import registry_client
    from time2bet.monitoring.drift import PREDICTIONS, reference_sample
    from time2bet.monitoring.drift import drift_report as run_drift
    from time2bet.monitoring.live_quality import resolve_match_ids
    from time2bet.monitoring.versions import predict, training_window, version_facts

    week, _, end = _window(context, 1)
    wh = warehouse.open()
    results = _played(wh, week, end)
    fixtures = wh.read_sql("SELECT match_id, division, match_date, home_team, away_team "
                           "FROM analytics.upcoming_match_features")
    known = pd.concat([results[list(fixtures.columns)], fixtures], ignore_index=True).drop_duplicates("match_id")
    ledger = resolve_match_ids(_ledger_rows(wh, week, end), known)   # a row without a match id: by its key
    client = registry_client(monitoring.tracking_uri)
    name, version = _period_version(ledger, client, monitoring.model_name)
    ids = sorted(ledger["match_id"].dropna().unique())
    if not ids or version is None:
        reason = "no prediction in the ledger for this week" if not ids else f"no champion of {name} to compare with"
        store.replace_partition(wh, store.DRIFT_TABLE, pd.DataFrame(columns=list(store.DRIFT)), key="week",
                                value=week)
        context.log.info(f"drift {week}: {reason}")
        return dg.MaterializeResult(metadata={"dagster/row_count": 0, "skipped": reason})

    facts = version_facts(client, name, version)
    reference = reference_sample(training_window(facts, wh, monitoring.dataset_dir)).copy()
    reference[list(PREDICTIONS)] = predict(monitoring.tracking_uri, name, version, reference)   # the rows compared
    played = _features(wh, "analytics.fct_match_features", ids, list(MODEL_FEATURES))
    upcoming = _features(wh, "analytics.upcoming_match_features", [i for i in ids if i not in set(played["match_id"])],
                         list(MODEL_FEATURES))
    features = pd.concat([f for f in (played, upcoming) if len(f)], ignore_index=True) if len(played) or len(upcoming) \
        else pd.DataFrame(columns=["match_id", *MODEL_FEATURES])
    mine = ledger[(ledger["model_name"] == name) & (ledger["model_version"] == version)]
    predicted = (mine.sort_values(["as_of", "created_at"], kind="stable").drop_duplicates("match_id", keep="last")
                 [["match_id", *PREDICTIONS]])
    outcomes = results[["match_id", "result", "home_goals", "away_goals"]]
    current = (pd.DataFrame({"match_id": ids}).merge(features, on="match_id", how="left")
               .merge(predicted, on="match_id", how="left").merge(outcomes, on="match_id", how="left"))
    html = monitoring.folder / "drift" / f"{week}.html"
    result = run_drift(reference, current, features=list(MODEL_FEATURES), html_path=html)

    now = dt.datetime.now(dt.UTC)
    dataset_row = pd.DataFrame([{"kind": "dataset", "column_name": "features", "method": "share of drifted features",
                                 "statistic": result.share_drifted, "threshold": result.drift_share,
                                 "drifted": result.dataset_drift}])
    table = pd.concat([dataset_row, result.columns], ignore_index=True).assign(
        week=week, model_name=name, model_version=version, n_reference=result.n_reference,
        n_current=result.n_current, report_path=str(result.html) if result.html else None, computed_at=now)
    rows = store.replace_partition(wh, store.DRIFT_TABLE, table, key="week", value=week)
    exported = prometheus.export(prometheus.drift_figures(str(week), name, version, result), asset="drift_report",
                                 home=monitoring.home, pushgateway_url=monitoring.pushgateway_url)
    features_table = result.columns[result.columns["kind"] == "feature"].sort_values("statistic")
    context.log.info(f"drift {week} against v{version}'s training window: {result.features_drifted} of "
                     f"{result.features_tested} features drifted; predictions {result.prediction_drift}; "
                     f"target {result.target_drift}")
    return dg.MaterializeResult(metadata={
        "dagster/row_count": rows,
        "report": dg.MetadataValue.path(str(result.html)) if result.html else "none",
        "reference": f"{name} v{version}: training window ({result.n_reference} matches"
                     + (f", seasons {facts.train_seasons[0]}..{facts.train_seasons[1]})" if facts.train_seasons else ")"),
        "current_matches": result.n_current,
        "current_played": result.n_current_played,
        "share_of_drifted_features": round(result.share_drifted, 4),
        "features_drifted": result.features_drifted,
        "features_tested": result.features_tested,
        "dataset_drift": result.dataset_drift,
        "prediction_drift": "n/a" if result.prediction_drift is None else result.prediction_drift,
        "target_drift": "no results yet" if result.target_drift is None else result.target_drift,
        "p_values": dg.MetadataValue.json({"prediction": result.p_values("prediction"),
                                           "target": result.p_values("target")}),
        "most_drifted_features": _md(features_table[["column_name", "statistic", "drifted"]].round(5), limit=15),
        "skipped_columns": ", ".join(result.skipped) or "none",
        **_exported(exported),
    })
