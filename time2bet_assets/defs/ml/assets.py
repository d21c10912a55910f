"""ML assets: versioned training dataset -> candidate model (walk-forward CV, MLflow run) -> registered
challenger and promotion gate -> batch predictions of upcoming fixtures by champion and challenger."""

import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster_mlflow.resources import MlFlow

from time2bet.serving_contract import DEFAULT_FAMILY, ID_COLUMNS, MARKET_COLUMNS, MODEL_FEATURES, OUTCOME_COLUMNS
from time2bet_assets.defs.ml.resources import (
    CandidateHyperparameters,
    DatasetStoreResource,
    GatePolicy,
    ModelRegistryResource,
    end_mlflow_run_unless_hooked,
)
from time2bet_assets.lib.ledger import LedgerResource, platform_clock
from time2bet_assets.lib.warehouse import WarehouseResource

# upstream: the dbt marts of the features area, named by key (areas do not import each other)
FCT_MATCH_FEATURES = dg.AssetKey(["fct_match_features"])
UPCOMING_MATCH_FEATURES = dg.AssetKey(["upcoming_match_features"])

# Model inputs: the dbt marts, which join form, head-to-head and the Python ratings; training, batch predictions,
# the serving test and the quality benchmark all read these two queries.
PLAYED_MATCHES_SQL = "SELECT * FROM analytics.fct_match_features ORDER BY match_date, match_id"
UPCOMING_FIXTURES_SQL = "SELECT * FROM analytics.upcoming_match_features ORDER BY match_date, match_id"

# Why a training run was started, as a run tag (the retraining sensor's "automatic: <trigger>: ..."; none when
# started by hand): registered_model writes it into the registry's audit trail and its metadata.
TRAINING_REASON_TAG = "time2bet/training_reason"


def _dataset_version(frame: pd.DataFrame) -> str:
    """Content hash of the dataset (row order fixed by match_date, match_id): the data version."""
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).values.tobytes()).hexdigest()


@dg.asset(deps=[FCT_MATCH_FEATURES], group_name="ml", kinds={"pandas", "parquet"})
def training_dataset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, datasets: DatasetStoreResource
) -> dg.Output[str]:
    """Every played match with its pre-match features and ratings, frozen as a Parquet snapshot named by its
    content hash, so a model can always be traced to (and retrained on) exactly the data it saw."""
    frame = warehouse.open().read_sql(PLAYED_MATCHES_SQL)
    frame = frame[[*ID_COLUMNS, *MODEL_FEATURES, *MARKET_COLUMNS, *OUTCOME_COLUMNS]]
    from time2bet.ml.training import season_order

    version = _dataset_version(frame)
    path = datasets.path("training_dataset", version)
    if not path.exists():
        frame.to_parquet(path, index=False)
    seasons = frame.groupby("season").size()
    context.log.info(f"{len(frame)} matches, {len(seasons)} seasons, version {version[:12]}")
    return dg.Output(
        str(path),
        data_version=dg.DataVersion(version),
        metadata={
            "dagster/row_count": len(frame),
            "data_version": version,
            "path": dg.MetadataValue.path(str(path)),
            "seasons": f"{seasons.index.min()} .. {seasons.index.max()} ({len(seasons)})",
            "latest_season": season_order(seasons.index)[-1],   # read by the retraining sensor
            "divisions": ", ".join(sorted(frame["division"].unique())),
            "features": len(MODEL_FEATURES),
        },
    )


class TrainingConfig(dg.Config):
    """Which model family to train (time2bet.ml.families): unset, the configured one (``model.family``, whose best
    holds ``champion``); another is registered and gated within its own family (``time2bet train --family``)."""

    family: str | None = None


def _train_and_log(context: dg.AssetExecutionContext, frame: pd.DataFrame, data_version: str,
                   registry: ModelRegistryResource, gate: GatePolicy, hyperparameters: CandidateHyperparameters,
                   model_name: str | None = None, *, in_active_run: bool = False, family: str = DEFAULT_FAMILY):
    """Walk-forward validation of the candidates (or only ``model_name``) of ``family`` on every season but the
    latest, the chosen one refitted on them and logged to MLflow: the ``TrainingResult`` and its ``LoggedRun``. The
    run is the Dagster run's own (dagster-mlflow's, active) with ``in_active_run``, else a child of it. ``frame``
    carries the family's columns (time2bet.ml.families.with_platform_columns)."""
    from time2bet.ml.families import platform_features
    from time2bet.ml.tracking import log_training_run
    from time2bet.ml.training import held_out_split, train_candidate

    train, _, held_out = held_out_split(frame)
    # each fold trains on >= 2 seasons (fit + a later calibration season) and validates on the next one
    n_folds = min(gate.n_folds, train["season"].nunique() - 2)
    if n_folds < 1:
        raise dg.Failure(description=f"walk-forward validation needs at least 4 seasons (3 to train, 1 held "
                                     f"out); the dataset has {frame['season'].nunique()}")
    result = train_candidate(train, platform_features(family), model_name, n_folds=n_folds,
                             hyperparameters=hyperparameters.values, family=family)
    # dagster_run_id is dagster-mlflow's tag of the Dagster run's own MLflow run (how it finds it again): never on
    # a child run
    logged = log_training_run(result, train, tracking_uri=registry.tracking_uri, data_version=data_version,
                              experiment=registry.experiment, artifact_location=registry.artifact_location,
                              tags={"held_out_season": held_out}, in_active_run=in_active_run)
    return result, logged


@dg.asset(group_name="ml", kinds={"mlflow", "xgboost", "sklearn"})
def candidate_model(
    context: dg.AssetExecutionContext, training_dataset: str, mlflow: dg.ResourceParam[MlFlow],
    registry: ModelRegistryResource, gate: GatePolicy, hyperparameters: CandidateHyperparameters,
    config: TrainingConfig,
) -> dg.Output[dict]:
    """Logistic regression and XGBoost compared by walk-forward validation by season inside the training
    window (the latest season is held out for the promotion gate); the better one, calibrated on a later
    split than it was fitted on, is logged to MLflow with its metrics, references and plots. Of the configured
    model family unless the run's config names another (TrainingConfig)."""
    from time2bet.ml.families import with_platform_columns
    from time2bet.ml.training import held_out_split
    from time2bet.serving_contract import check_family

    family = check_family(config.family or registry.family)
    frame = with_platform_columns(pd.read_parquet(training_dataset), family)
    version = Path(training_dataset).stem  # the snapshot is named by its content hash (the data version)
    result, logged = _train_and_log(context, frame, version, registry, gate, hyperparameters, in_active_run=True,
                                    family=family)
    end_mlflow_run_unless_hooked(context)
    held_out = held_out_split(frame)[2]
    folds = result.cv.folds
    summary = {k: float(v) for k, v in folds.filter(like="log_loss").mean().items()}
    context.log.info(f"chose {result.model_name} ({family} family): {summary}")
    return dg.Output(
        {"run_id": logged.run_id, "model_uri": logged.model_uri, "model_name": result.model_name,
         "data_version": version, "held_out_season": held_out, "dataset": training_dataset, "family": family},
        metadata={
            "mlflow_run_id": logged.run_id,
            "model_uri": logged.model_uri,
            "model": result.model_name,
            "family": family,
            "candidates_log_loss": dg.MetadataValue.json(result.candidate_log_loss),
            "walk_forward": dg.MetadataValue.md(folds.round(4).to_markdown(index=False)),
            "data_version": version,
        },
    )


@dg.asset(group_name="ml", kinds={"mlflow"})
def registered_model(context: dg.AssetExecutionContext, candidate_model: dict, mlflow: dg.ResourceParam[MlFlow],
                     registry: ModelRegistryResource, gate: GatePolicy,
                     hyperparameters: CandidateHyperparameters) -> dg.Output[dict]:
    """The candidate becomes a new registry version with alias ``challenger``; the promotion gate compares
    it with the champion on the held-out latest season and moves ``champion`` only if it passes. If the
    logistic-regression baseline or the Elo-only model beats it there, the better of them is trained and logged like
    a candidate and gated as a further version (``time2bet.ml.promotion_gate.gate_with_baseline_fallback``), so no
    champion is worse than the simplest model. Decisions and numbers are written to the versions' tags and
    descriptions."""
    from time2bet.ml.families import platform_features, with_platform_columns
    from time2bet.ml.promotion_gate import gate_with_baseline_fallback
    from time2bet.ml.tracking import LoggedRun
    from time2bet.ml.training import (
        BASELINE_MODEL,
        ELO_ONLY_MODEL,
        baseline_log_loss,
        elo_only_log_loss,
        held_out_split,
    )

    family = candidate_model.get("family", DEFAULT_FAMILY)
    frame = with_platform_columns(pd.read_parquet(candidate_model["dataset"]), family)
    features = platform_features(family)
    data_version = candidate_model["data_version"]
    training_reason = context.run.tags.get(TRAINING_REASON_TAG)
    train, evaluation, _ = held_out_split(frame)
    outcome = gate_with_baseline_fallback(
        registry.model_name, LoggedRun(candidate_model["run_id"], candidate_model["model_uri"]),
        candidate_model["model_name"], evaluation, features,
        baseline_logloss=baseline_log_loss(train, evaluation, features, hyperparameters=hyperparameters.values),
        train_baseline=lambda: _train_and_log(context, frame, data_version, registry, gate, hyperparameters,
                                              BASELINE_MODEL, family=family)[1],
        elo_only_logloss=elo_only_log_loss(train, evaluation, features),
        train_elo_only=lambda: _train_and_log(context, frame, data_version, registry, gate, hyperparameters,
                                              ELO_ONLY_MODEL, family=family)[1],
        tags={"data_version": data_version}, tolerance=gate.tolerance, max_ece=gate.max_ece,
        tracking_uri=registry.tracking_uri, training_reason=training_reason, family=family,
        champion_family=registry.family)
    decision, rejected = outcome.decision, outcome.rejected
    context.log.info(outcome.describe())
    end_mlflow_run_unless_hooked(context)
    return dg.Output(
        {"version": outcome.version, "promoted": decision.promoted,
         "rejected_version": rejected.challenger_version if rejected else None, "family": family},
        metadata={
            "model_version": outcome.version,
            "family": family,
            "decision": (f"promoted to {decision.champion_alias}" if decision.promoted else "rejected (stays challenger)")
                        + (f"; {outcome.fallback_model} fallback of rejected v{rejected.challenger_version}"
                           if rejected else ""),
            "rejected_version": rejected.challenger_version if rejected else "none",
            "training_reason": training_reason or "started by hand",
            "gate": dg.MetadataValue.md(outcome.describe().replace("\n", "\n\n")),
            "challenger_log_loss": decision.challenger_log_loss,
            "champion_log_loss": decision.champion_log_loss if decision.champion_log_loss is not None else "none",
            "baseline_log_loss": decision.baseline_log_loss,
            "elo_only_log_loss": decision.elo_only_log_loss if decision.elo_only_log_loss is not None else "none",
            "interval_vs_champion": str(decision.interval) if decision.interval is not None else "none",
            "ece": decision.challenger_ece,
        },
    )


def _with_market_ratings(warehouse, fixtures: pd.DataFrame) -> pd.DataFrame:
    """``fixtures`` with the market-implied ratings of their teams as every played match's de-margined odds left
    them (the fixtures' own odds are not read)."""
    from time2bet.features.market_ratings import market_rating_state, next_match_market_ratings
    from time2bet.serving_snapshot_store import MARKET_HISTORY_SQL

    played = warehouse.read_sql(MARKET_HISTORY_SQL)
    return pd.concat([fixtures, next_match_market_ratings(market_rating_state(played), fixtures)], axis=1)



@dg.asset(deps=[registered_model, UPCOMING_MATCH_FEATURES], group_name="ml", kinds={"mlflow", "duckdb", "postgres"})
def batch_predictions(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                      registry: ModelRegistryResource, ledger: LedgerResource) -> dg.MaterializeResult:
    """H/D/A probabilities of every upcoming fixture from ``champion`` (and ``challenger`` when there is one),
    in ``predictions.upcoming_matches`` for the serving layer; model and data version on every row. Every
    prediction is also sealed in the prediction ledger (one record per model, the run's own hash chain, its model
    family named), written and fsynced before the table is replaced, so no prediction is served that the ledger
    lacks. A market-aware model's fixtures get their teams' market-implied ratings as the played matches left them
    (time2bet.features.market_ratings.next_match_market_ratings: never a fixture's own odds)."""
    import mlflow as mlf

    from time2bet.features.market_ratings import MARKET_RATING_FEATURES
    from time2bet.ledger import LedgerRecord, match_key, new_prediction_id, utc_now
    from time2bet.mlflow_store import registry_client
    from time2bet.serving_contract import FAMILY_TAG, model_input

    client = registry_client(registry.tracking_uri)
    wh = warehouse.open()
    fixtures = wh.read_sql(UPCOMING_FIXTURES_SQL)
    aliases = client.get_registered_model(registry.model_name).aliases
    frames = []
    created_at = utc_now()
    as_of = platform_clock(context, created_at)
    writer = ledger.writer(context.run_id)
    features_as_of = pd.to_datetime(wh.read_sql(
        "SELECT max(match_date) AS d FROM analytics.stg_matches")["d"]).dt.date.iloc[0]
    for alias in ("champion", "challenger"):
        if alias not in aliases:
            continue
        mv = client.get_model_version_by_alias(registry.model_name, alias)
        model = mlf.pyfunc.load_model(f"models:/{registry.model_name}@{alias}")
        columns = model.metadata.get_input_schema().input_names()
        if set(MARKET_RATING_FEATURES) & set(columns) and not set(MARKET_RATING_FEATURES) <= set(fixtures.columns):
            fixtures = _with_market_ratings(wh, fixtures)
        probs = pd.DataFrame(model.predict(model_input(fixtures, columns))).to_numpy() if len(fixtures) else []
        out = fixtures[["match_id", "division", "season", "match_date", "home_team", "away_team"]].copy()
        out[["p_home", "p_draw", "p_away"]] = probs if len(fixtures) else pd.DataFrame(columns=range(3))
        out["variant"], out["model_name"], out["model_version"] = alias, registry.model_name, str(mv.version)
        out["data_version"] = mv.tags.get("data_version", "")
        out["predicted_at"] = pd.Timestamp(created_at).tz_localize(None)
        frames.append(out)
        if len(out):
            writer.append(LedgerRecord(
                prediction_id=new_prediction_id(), created_at=created_at, as_of=as_of,
                source="dagster:batch_predictions", request_id=context.run_id, model_name=registry.model_name,
                model_version=str(mv.version), model_alias=alias, variant=alias,
                model_family=mv.tags.get(FAMILY_TAG) or DEFAULT_FAMILY,
                data_version=out["data_version"].iloc[0] or None, features_as_of=features_as_of,
                match_key=[match_key(*k) for k in zip(out["division"], pd.to_datetime(out["match_date"]).dt.date,
                                                      out["home_team"], out["away_team"])],
                match_id=out["match_id"].tolist(), kickoff_date=pd.to_datetime(out["match_date"]).dt.date.tolist(),
                p_home=out["p_home"].tolist(), p_draw=out["p_draw"].tolist(), p_away=out["p_away"].tolist()))
    if not frames:
        raise dg.Failure(description=f"no champion for {registry.model_name} yet: nothing to predict with")
    predictions = pd.concat(frames, ignore_index=True)
    writer.close()
    if writer.dropped or writer.failed_flushes:
        raise dg.Failure(description=f"the prediction ledger did not take this run's predictions "
                                     f"({writer.dropped} records dropped: {writer.last_error})")
    wh.replace_table("predictions.upcoming_matches", predictions)
    preview = predictions[predictions["variant"] == "champion"].head(10)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(predictions),
        "fixtures": len(fixtures),
        "variants": ", ".join(sorted(predictions["variant"].unique())),
        "ledger_writer": writer.writer_id,
        "ledger_records": writer.written,
        "as_of": as_of.isoformat(),
        "preview": dg.MetadataValue.md(preview[["match_date", "home_team", "away_team", "p_home", "p_draw", "p_away",
                                                "model_version"]].round(3).to_markdown(index=False)),
    })
