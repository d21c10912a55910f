"""Time2Bet match-outcome service (BentoML 1.4): ``bentoml serve bento_service.service:Time2BetService``.

The entry point: the service class, its lifecycle (models and snapshot loaded in the background, the registry's
aliases followed) and its routes, declared on the FastAPI app of app.py and mounted with ``bentoml.asgi_app``.
The routes are methods of the one service class and share plain helper methods. Around them: errors.py (error
bodies and handlers), metrics.py (``time2bet_*`` metrics, request observing) and fast_path.py (POST /predict
and /predict/batch answered ahead of BentoML's app, by calling the same route methods). BentoML itself serves
/livez and /readyz (false until the model and the snapshot are loaded); /metrics is ours.

Configuration is the platform's (``Settings.from_env()``): TIME2BET_WAREHOUSE_URL, MLFLOW_TRACKING_URI, ...
plus TIME2BET_MODEL_NAME (default match_outcome), TIME2BET_MODEL_POLL_S (default 30: how often the registry's
aliases are read; a moved alias is loaded in the background and swapped in atomically) and
TIME2BET_CHALLENGER_SHARE (default 0: the share of matches, chosen stably by match id, answered by the
``challenger`` when that alias exists).

Durable async batch jobs (``jobs.py``): POST /jobs queues {"matches": [...]} in Redis (TIME2BET_REDIS_URL,
TIME2BET_JOBS_PREFIX), a worker thread runs them like POST /predict/batch; GET /jobs/{id} and /jobs/{id}/result.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any, Literal

import bentoml
import pandas as pd
from fastapi import Body, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bento_service import scoring, traffic
from bento_service.app import app
from bento_service.errors import (
    MALFORMED_BODY,
    PREDICT_REFUSALS,
    NotReady,
    describe_validation_errors,
    documented,
    error_response,
    unknown_job,
)
from bento_service.fast_path import FAST_PATHS, PredictFront
from bento_service.jobs import FINISHED, JobInputError, JobStore, JobWorker
from bento_service.ledger import ServiceLedger
from bento_service.metrics import BATCH_SIZE, MODEL_INFO, SNAPSHOT_SWAPS, SWAPS, count_predictions, render
from bento_service.model import (
    ModelSet,
    ModelWatcher,
    ServedModel,
    assign_variant,
    prefixed,
    single_threaded_blas,
)
from bento_service.online_features import FeastFeatures
from bento_service.schemas import (
    DIVISION_SCHEMA,
    JOB_ID_SCHEMA,
    MATCH_ID_SCHEMA,
    MAX_BATCH,
    MAX_DIVISION,
    MAX_ID,
    BatchRequest,
    BatchResponse,
    IsoDate,
    JobAccepted,
    JobStatus,
    MatchColumns,
    MatchesResponse,
    ModelDetails,
    ModelInfo,
    Prediction,
    PredictRequest,
    QualityResponse,
    QualityRow,
    StoredPrediction,
    TeamsResponse,
)
from bento_service.shedding import ShedLoad

# ?division= of GET /matches and /teams: as MatchRequest.division (a code past 8 characters is string_too_long; one
# with no data is unknown_division)
DivisionQuery = Annotated[str, Query(max_length=MAX_DIVISION, json_schema_extra=DIVISION_SCHEMA)]
from bento_service.snapshot import RequestError, Snapshot
from time2bet.ml.goals_model import GOALS_MODEL_NAME
from time2bet.scoreboard_store import Scoreboard
from time2bet.serving_contract import CHAMPION, PREDICTIONS_TABLE
from time2bet.serving_snapshot_store import read_pointer
from time2bet.settings import Settings

logger = logging.getLogger("time2bet.serving")
traffic.install()   # BentoML's traffic timeout, its per-request timer cancelled (see bento_service/traffic.py)


def _batch_response(scored: scoring.Scored) -> bytes:
    """A BatchResponse body."""
    return b'{"predictions":' + scored.predictions_json() + b"}"


# Access logging (one formatted log line per request) is off unless TIME2BET_ACCESS_LOG=1; /metrics counts
# every request anyway. Tracing is off for every path unless TIME2BET_TRACING=1: with no exporter configured
# the OpenTelemetry middleware still built a (dropped) span per request.
_SETTINGS = Settings.from_env()   # read when the module loads: BentoML's decorator below needs its flags and workers


@bentoml.service(name="time2bet", workers=_SETTINGS.service_workers, traffic={"timeout": 60},
                 logging={"access": {"enabled": _SETTINGS.access_log}},
                 metrics={"enabled": False, "namespace": "bentoml_service"},   # /metrics is ours: see metrics()
                 **({} if _SETTINGS.tracing else {"tracing": {"excluded_urls": ".*"}}))
@bentoml.asgi_app(app, path="/")
class Time2BetService:
    """One worker state: the served models (champion, challenger) and the serving snapshot, loaded in the
    background; a watcher thread then follows the registry's aliases and swaps models in as they move."""

    def __init__(self) -> None:
        single_threaded_blas()
        self.settings = Settings.from_env()
        self.model_name = self.settings.model_name
        self.poll_s = self.settings.model_poll_s
        self.snapshot_poll_s = self.settings.snapshot_poll_s
        self.challenger_share = self.settings.challenger_share
        self.watcher = ModelWatcher(self.settings.mlflow_tracking_uri, self.model_name, on_change=self._changed,
                                    routes=dict(self.settings.routes))
        # the goals model's champion, for requests with markets: true (followed like the 1X2 champion; no A/B)
        self.goals = ModelWatcher(self.settings.mlflow_tracking_uri, GOALS_MODEL_NAME, variants=(CHAMPION,),
                                  on_change=prefixed(self._changed, GOALS_MODEL_NAME))
        self.goals_error: str | None = None
        self.snapshot: Snapshot | None = None
        self.online_features: FeastFeatures | None = None   # TIME2BET_FEATURES=feast: rows from Feast's online store
        self.load_error: str | None = None
        self._started = False   # swaps are counted once the first champion is served
        self._stop = threading.Event()
        self._loader = threading.Thread(target=self._run, name="time2bet-models", daemon=True)
        self._loader.start()
        # durable batch jobs (Redis); the worker takes jobs only once __is_ready__
        self.jobs = JobStore.from_settings(self.settings)
        self._jobs_worker = JobWorker(self.jobs, self._run_job, self.__is_ready__, self._stop).start()
        self.batcher = scoring.MicroBatcher()   # POST /predict: concurrent requests share model calls
        self.ledger = ServiceLedger.from_settings(self.settings)   # every answered prediction, sealed (ledger.py)
        self.scoreboard = Scoreboard(self.settings.monitoring_dir)   # GET /quality: live_quality's export

    @bentoml.on_shutdown
    def _shutdown(self) -> None:
        """SIGTERM (or a BentoML shutdown): stop the threads and write the ledger's buffered records."""
        self._stop.set()
        self.ledger.close()

    # --- lifecycle --------------------------------------------------------------------------------------

    @property
    def models(self) -> ModelSet:
        return self.watcher.models

    def _changed(self, variant: str, outcome: str, old: ServedModel | None, new: ServedModel | None) -> None:
        if old is not None and outcome != "failure":
            MODEL_INFO.labels(version=old.version, variant=variant).set(0)
        if new is not None:
            MODEL_INFO.labels(version=new.version, variant=variant).set(1)
        if self._started and outcome in ("success", "failure"):
            SWAPS.labels(outcome=outcome, variant=variant).inc()

    def _refresh_goals(self) -> None:
        """The goals model's champion (before the 1X2 one, so a ready worker has it when it is registered). None
        registered, or the registry unreachable: markets answer 503 no_goals_model; the 1X2 is not affected."""
        try:
            self.goals.refresh()
            self.goals_error = self.goals.last_error
        except Exception as exc:  # noqa: BLE001 - markets are optional; logged once per distinct error
            error = f"{type(exc).__name__}: {exc}"
            if error != self.goals_error:
                logger.warning("no goals model (%s): markets are unavailable", error)
            self.goals_error = error

    def _goals_model(self) -> ServedModel:
        """The goals champion for a request with markets: true, or a 503 no_goals_model."""
        champion = self.goals.models.champion
        if champion is None:
            raise RequestError("no_goals_model", f"markets need the goals model {GOALS_MODEL_NAME}, which has no "
                               f"champion loaded ({self.goals_error or 'not registered yet'}); ask without markets "
                               "for the 1X2", status=503)
        return champion

    def _refresh(self) -> None:
        self._refresh_goals()
        try:
            models = self.watcher.refresh()
        except Exception as exc:  # deliberately broad: registry unreachable: keep serving, try again next poll
            logger.exception("reading the registry aliases failed")
            if self.models.champion is None:
                self.load_error = f"{type(exc).__name__}: {exc}"
            return
        if models.champion is None:
            self.load_error = self.watcher.last_error or f"{self.model_name} has no champion yet"
        elif not self._started:
            self._started, self.load_error = True, None
            logger.info("serving %s v%s", models.champion.name, models.champion.version)

    def _run(self) -> None:
        # a worker started before the platform has features (a fresh deployment: `time2bet stack up`) tries again
        # every TIME2BET_SNAPSHOT_POLL_S until the first export (or the warehouse) gives it a snapshot
        while True:
            try:
                # the version Dagster exported (never the DuckDB file a run may be writing); the warehouse itself
                # only until a first export exists
                self.online_features = FeastFeatures.from_settings(self.settings)
                snapshot = Snapshot.load_export(self.settings.serving_snapshot_dir) \
                    or Snapshot.load(self.settings.warehouse_url)
                break
            except Exception as exc:  # deliberately broad: reported by /readyz and every route
                if self.load_error is None:
                    logger.exception("loading the serving snapshot failed; trying again every %.0f s",
                                     self.snapshot_poll_s)
                self.load_error = f"{type(exc).__name__}: {exc}"
                if self._stop.wait(self.snapshot_poll_s):
                    return
        snapshot.online = self.online_features
        self.snapshot = snapshot
        self.load_error = None
        logger.info("serving snapshot %s of %d teams", self.snapshot.version or "(warehouse)", len(self.snapshot.teams))
        threading.Thread(target=self._follow_snapshot, name="time2bet-snapshot", daemon=True).start()
        self._refresh()   # the first champion (and challenger); then follow the aliases
        scoring.settle_heap()
        while not self._stop.wait(self.poll_s):
            self._refresh()

    def _follow_snapshot(self) -> None:
        """Every TIME2BET_SNAPSHOT_POLL_S: a newly exported version is loaded here, off the request path, then
        swapped in with one assignment (a request keeps the snapshot it took, see _ready)."""
        while not self._stop.wait(self.snapshot_poll_s):
            self._refresh_snapshot()

    def _refresh_snapshot(self) -> bool:
        """Load the exported version if it is not the one served; True when a new snapshot was swapped in."""
        pointer = read_pointer(self.settings.serving_snapshot_dir)
        current = self.snapshot
        if pointer is None or (current is not None and pointer.get("version") == current.version):
            return False
        try:
            fresh = Snapshot.load_export(self.settings.serving_snapshot_dir)   # team table built and checked
        except Exception:  # deliberately broad: keep serving the snapshot we have; try again next poll
            logger.exception("loading the serving snapshot %s failed", pointer.get("version"))
            SNAPSHOT_SWAPS.labels(outcome="failure").inc()
            return False
        if fresh is None or (current is not None and fresh.version == current.version):
            return False
        fresh.online = self.online_features
        self.snapshot = fresh
        SNAPSHOT_SWAPS.labels(outcome="success").inc()
        logger.info("serving snapshot %s (features as of %s)", fresh.version, fresh.features_as_of)
        return True

    def __is_ready__(self) -> bool:
        return self.models.champion is not None and self.snapshot is not None

    @app.get("/metrics", include_in_schema=False)
    def metrics(self) -> Response:
        """Prometheus exposition of every ``time2bet_*`` metric (all workers: BentoML's multiprocess collector) and
        the snapshot age. BentoML's own HTTP metrics are off (``metrics.enabled: false``), which also drops its
        /metrics route, hence this one: they labelled requests by raw path, a new series for every match id and
        job id asked about (unbounded), and cost ~30 us per request; ``time2bet_requests_total`` and
        ``time2bet_request_seconds`` count the same by route template (metrics.py)."""
        return render(self.snapshot)

    def _ready(self) -> tuple[ModelSet, Snapshot]:
        """The models and the snapshot for one request: taken once, so a swap meanwhile does not affect it."""
        models, snapshot = self.models, self.snapshot
        if models.champion is None or snapshot is None:
            raise NotReady(self.load_error or "the model and the serving snapshot are still loading")
        return models, snapshot

    # --- shared helpers (never call one route from another) ---------------------------------------------

    def _score(self, requests: MatchColumns) -> scoring.Scored:
        """Requests scored in this thread (batch route, jobs). A/B by match id (md5 of division|date|home|away):
        the same match always gets the same variant. Raises RequestError (with the request's index in a batch)."""
        models, snapshot = self._ready()
        goals = self._goals_model() if requests.markets else None
        scored = scoring.score(models, snapshot, requests, self.challenger_share)
        return count_predictions(scored if goals is None else scoring.add_markets(scored, goals))

    def _run_job(self, body: Any) -> str:
        """A job's input through the same validation and scoring as POST /predict/batch; the response JSON."""
        try:
            batch = BatchRequest.model_validate(body)
        except ValidationError as exc:
            reason, message, _ = describe_validation_errors(exc.errors())
            raise JobInputError(f"{reason}: {message}") from None
        BATCH_SIZE.labels(source="job").observe(len(batch.matches))
        try:
            scored = self._score(MatchColumns.of(batch.matches, batch.markets))
        except RequestError as exc:
            where = f" (matches[{exc.detail['index']}])" if "index" in exc.detail else ""
            raise JobInputError(f"{exc.reason}{where}: {exc}") from None
        self.ledger.record(scored, "service:job")
        return _batch_response(scored).decode()

    @staticmethod
    def _stored(frame: pd.DataFrame) -> list[StoredPrediction]:
        frame = frame.astype(object).where(frame.notna(), None)
        return [StoredPrediction(**{k: v for k, v in row.items() if k in StoredPrediction.model_fields})
                for row in frame.to_dict("records")]

    # --- routes -----------------------------------------------------------------------------------------

    @app.post("/predict", response_model=Prediction, responses={**MALFORMED_BODY, **PREDICT_REFUSALS})
    async def predict(self, match: PredictRequest) -> Response:
        # Every valid JSON body reaches this method from fast_path.PredictFront, ahead of BentoML's app; FastAPI
        # calls it for the rest, and documents the route (no docstring: it would become the OpenAPI description).
        # On the event loop (resolving and the cached feature row take microseconds); the model call goes through
        # the micro-batcher, shared with the other requests waiting. The answer is the predictions list's one object.
        models, snapshot = self._ready()
        goals = self._goals_model() if match.markets else None
        scored = await scoring.score_batched(self.batcher, models, snapshot, [match], self.challenger_share)
        if goals is not None:
            scoring.add_markets(scored, goals)
        self.ledger.record(scored, "service:/predict")
        return Response(count_predictions(scored).predictions_json()[1:-1], media_type="application/json")

    @app.post("/predict/batch", response_model=BatchResponse, responses={**MALFORMED_BODY, **PREDICT_REFUSALS})
    def predict_batch(self, batch: BatchRequest) -> Response:
        # Up to 10,000 matches, one model call per variant (on a worker thread: it takes tens of ms). As for
        # predict, valid JSON bodies come from fast_path.PredictFront, already parsed into MatchColumns (no
        # pydantic object per match); FastAPI passes the BatchRequest it validated.
        matches = batch if isinstance(batch, MatchColumns) else MatchColumns.of(batch.matches, batch.markets)
        BATCH_SIZE.labels(source="request").observe(len(matches))
        scored = self._score(matches)
        self.ledger.record(scored, "service:/predict/batch")
        return Response(_batch_response(scored), media_type="application/json")

    @app.post("/jobs", status_code=202, response_model=None,
              responses={202: {"model": JobAccepted, "description": "queued"}, **MALFORMED_BODY,
                         429: {**documented(**{"429": "the jobs queue is full (jobs_queue_full): as many jobs "
                                               "waiting, or as many request bytes held for unfinished jobs, as "
                                               "configured; retry after Retry-After seconds"})[429],
                               "headers": {"Retry-After": {"description": "seconds to wait before submitting again",
                                                           "schema": {"type": "integer"}}}}})
    def submit_job(self, body: dict[str, Any] = Body(...)) -> JSONResponse:
        """Queue a batch job ({"matches": [...]} as for /predict/batch; validated when it runs). The queue is
        bounded (TIME2BET_JOBS_MAX_PENDING jobs waiting, TIME2BET_JOBS_MAX_PENDING_BYTES of requests): when full,
        429 with Retry-After."""
        try:
            record = self.jobs.submit(body)
        except JobStore.Full as full:
            response = error_response(429, "jobs_queue_full", str(full), limit=full.limit,
                                      retry_after_s=full.retry_after_s)
            response.headers["Retry-After"] = str(full.retry_after_s)
            return response
        return JSONResponse({"job_id": record["job_id"], "status": record["status"]}, status_code=202)

    @app.get("/jobs/{job_id}", response_model=None,
             responses={200: {"model": JobStatus, "description": "the job's state"},
                        **documented(**{"404": "no such job (or it has expired)"})})
    def job_status(self, job_id: str = Path(json_schema_extra=JOB_ID_SCHEMA)) -> JSONResponse:
        record = self.jobs.get(job_id)
        if record is None:
            return unknown_job(job_id)
        return JSONResponse(record)

    @app.get("/jobs/{job_id}/result", response_model=None,
             responses={200: {"model": BatchResponse, "description": "the predictions, as POST /predict/batch"},
                        **documented(**{"404": "no such job, or its result has expired",
                                         "409": "the job is not finished yet, or it failed"})})
    def job_result(self, job_id: str = Path(json_schema_extra=JOB_ID_SCHEMA)) -> Response:
        record = self.jobs.get(job_id)
        if record is None:
            return unknown_job(job_id)
        if record["status"] not in FINISHED:
            return JSONResponse({"error": "job_not_finished", "message": f"job {job_id} is {record['status']}; "
                                 "its result is available once it is completed", "job_id": job_id,
                                 "status": record["status"]}, status_code=409)
        if record["status"] == "failed":
            return JSONResponse({"error": "job_failed", "message": f"job {job_id} failed: {record['error']}",
                                 "job_id": job_id, "status": "failed"}, status_code=409)
        result = self.jobs.result(job_id)
        if result is None:
            return unknown_job(job_id, "its result has expired")
        return Response(result, media_type="application/json")

    @app.get("/predict/{match_id}", response_model=StoredPrediction,
             responses=documented(**{"404": "no stored prediction for this match id"}))
    def stored_prediction(self, match_id: str = Path(json_schema_extra=MATCH_ID_SCHEMA)):
        if match_id == "batch":   # GET /predict/batch: that path is POST /predict/batch's (OpenAPI: concrete first)
            raise StarletteHTTPException(405, headers={"Allow": "POST"})
        if len(match_id) > MAX_ID:
            return error_response(422, "match_id_too_long", f"match_id is at most {MAX_ID} characters")
        models, snapshot = self._ready()
        variant = assign_variant(match_id, self.challenger_share) if models.challenger is not None else CHAMPION
        found = snapshot.predictions[snapshot.predictions["match_id"] == match_id]
        if variant != CHAMPION and (found["variant"] == variant).any():
            found = found[found["variant"] == variant]
        else:   # the champion's row (also when the batch path stored none for the challenger)
            found = found[found["variant"] == CHAMPION]
        if found.empty:
            return error_response(404, "unknown_match_id", f"no champion prediction for match_id {match_id!r} in "
                          f"{PREDICTIONS_TABLE}", match_id=match_id)
        return self._stored(found.head(1))[0]

    @app.get("/matches", response_model=MatchesResponse, responses=documented(**{
        "422": "a division with no data (unknown_division), date_from after date_to (empty_date_range), or an "
               "invalid parameter (a date that is not YYYY-MM-DD, a division code too long)"}))
    def matches(self, division: DivisionQuery = None,
                date_from: Annotated[IsoDate, Query(description="YYYY-MM-DD: matches on or after it")] = None,
                date_to: Annotated[IsoDate, Query(description="YYYY-MM-DD: matches on or before it (not before "
                                                  "date_from: 422 empty_date_range)")] = None):
        _, snapshot = self._ready()
        if division is not None and division not in snapshot.divisions:
            raise RequestError("unknown_division", f"unknown division {division!r}",
                               known_divisions=sorted(snapshot.divisions))
        if date_from and date_to and date_from > date_to:
            raise RequestError("empty_date_range", f"date_from {date_from} is after date_to {date_to}")
        rows = snapshot.stored(CHAMPION)
        if division is not None:
            rows = rows[rows["division"] == division]
        if date_from is not None:
            rows = rows[rows["match_date"] >= date_from]
        if date_to is not None:
            rows = rows[rows["match_date"] <= date_to]
        return MatchesResponse(count=len(rows), matches=self._stored(rows))

    @app.get("/teams", response_model=TeamsResponse, responses=documented(**{
        "422": "a division with no data (unknown_division), or a division code too long"}))
    def teams(self, division: DivisionQuery = None) -> TeamsResponse:
        """The divisions with data; with ?division=, the team names POST /predict accepts for it (read-only)."""
        _, snapshot = self._ready()
        divisions = dict(sorted(snapshot.divisions.items()))
        if division is None:
            return TeamsResponse(divisions=divisions)
        if division not in snapshot.divisions:
            raise RequestError("unknown_division", f"unknown division {division!r}", known_divisions=list(divisions))
        country = snapshot.divisions[division]
        names = snapshot.teams.loc[snapshot.teams["country"] == country, "team"]
        return TeamsResponse(divisions=divisions, division=division, country=country, teams=sorted(set(names.dropna())))

    @app.get("/quality", response_model=QualityResponse, responses=documented(**{
        "404": "no live quality yet: the Dagster asset live_quality has not run (no_live_quality)",
        "422": "an invalid parameter (a date that is not YYYY-MM-DD, a division code or version too long)"}))
    def quality(self, model_version: Annotated[str | None, Query(max_length=MAX_ID, description="a model version")] = None,
                division: Annotated[str | None, Query(max_length=MAX_DIVISION, description="a division code, or ALL "
                                                      "for every division together")] = None,
                since: Annotated[IsoDate, Query(description="YYYY-MM-DD: kickoff weeks starting on or after it")] = None,
                window: Annotated[Literal["week", "rolling"], Query(description="a kickoff week's matches, or the "
                                                                    "rolling window of weeks ending with it")] = "week"):
        """The live-quality scoreboard: per kickoff week, model version, A/B variant and division, log-loss, RPS,
        Brier, accuracy and ECE of the predictions made before kickoff, beside the de-margined market and the
        version's Elo-only reference on the same matches (read from the live_quality asset's export)."""
        rows = self.scoreboard.query(model_version=model_version, division=division, since=since, window=window)
        if rows is None:
            raise RequestError("no_live_quality", "no live quality yet: the live_quality asset has not run",
                               status=404)
        frame = rows.reindex(columns=list(QualityRow.model_fields)).astype(object)
        frame = frame.where(frame.notna(), None)
        return QualityResponse(count=len(frame), rows=[QualityRow(**r) for r in frame.to_dict("records")])

    @app.get("/model/info", response_model=ModelInfo)
    def model_info(self) -> ModelInfo:
        models, snapshot = self._ready()
        details = [self._details(m) for m in (models.champion, models.challenger) if m is not None]
        routed = [self._details(m) for m in models.every_model()[len(details):]]
        goals = self.goals.models.champion
        return ModelInfo(**details[0].model_dump(), challenger=details[1] if len(details) > 1 else None,
                         challenger_share=self.challenger_share, models=details + routed,
                         goals_model=self._details(goals) if goals is not None else None,
                         routes=dict(sorted(models.route_of.items())),
                         features_as_of=snapshot.features_as_of, snapshot_version=snapshot.version,
                         snapshot_loaded_at=snapshot.loaded_at)

    @staticmethod
    def _details(model: ServedModel) -> ModelDetails:
        return ModelDetails(name=model.name, version=model.version, alias=model.alias, run_id=model.run_id,
                            metrics=model.metrics, data_version=model.data_version, family=model.family,
                            loaded_at=model.loaded_at, input_features=len(model.input_features))


if _SETTINGS.max_in_flight:   # load shedding, outside the fast path (see bento_service/shedding.py)
    Time2BetService.add_asgi_middleware(ShedLoad, max_in_flight=_SETTINGS.max_in_flight, routes=app.router,
                                        fixed={("POST", path): path for path in FAST_PATHS},
                                        max_running=_SETTINGS.max_running)
Time2BetService.add_asgi_middleware(PredictFront)

__all__ = ["MAX_BATCH", "Time2BetService", "app"]
