"""Time2Bet match-outcome service (BentoML 1.4): ``bentoml serve bento_service.service:Time2BetService``.

Routes are a FastAPI app mounted on the service (BentoML's ``@bentoml.api`` is POST-only and has no path
parameters), so GET routes, ``/predict/{match_id}`` and JSON error bodies are ours; the handlers are methods of
the one service class and share plain helper methods. BentoML itself serves /livez and /readyz (false until the
model and the snapshot are loaded); /metrics (the ``time2bet_*`` metrics below) is ours.

Configuration is the platform's (``Settings.from_env()``): TIME2BET_WAREHOUSE_URL, MLFLOW_TRACKING_URI, ...
plus TIME2BET_MODEL_NAME (default match_outcome), TIME2BET_MODEL_POLL_S (default 30: how often the registry's
aliases are read; a moved alias is loaded in the background and swapped in atomically) and
TIME2BET_CHALLENGER_SHARE (default 0: the share of matches, chosen stably by match id, answered by the
``challenger`` when that alias exists).

Durable async batch jobs (``jobs.py``): POST /jobs queues {"matches": [...]} in Redis (TIME2BET_REDIS_URL,
TIME2BET_JOBS_PREFIX), a worker thread runs them like POST /predict/batch; GET /jobs/{id} and /jobs/{id}/result.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time

import bentoml
from bentoml import get_current_service   # bound once: ``bentoml.<name>`` goes through a lazy module __getattr__
import pandas as pd
from typing import Any

import redis
from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from bento_service import scoring, traffic
from bento_service.jobs import FINISHED, JobInputError, JobStore, JobWorker

from bento_service.model import (
    ModelSet, ModelWatcher, ServedModel, assign_variant,
)
from bento_service.schemas import (
    MAX_BATCH, BatchRequest, BatchResponse, MatchColumns, MatchesResponse, MatchRequest, ModelDetails, ModelInfo,
    Prediction, StoredPrediction, TeamsResponse,
)
from bento_service.schemas import ErrorResponse, IsoDate, JobAccepted, JobStatus
from bento_service.snapshot import RequestError, Snapshot
from time2bet.serving_contract import CHAMPION, PREDICTIONS_TABLE
from time2bet.settings import Settings

logger = logging.getLogger("time2bet.serving")
traffic.install()   # BentoML's traffic timeout, its per-request timer cancelled (see bento_service/traffic.py)

MAX_BODY_BYTES = 4 * 1024 * 1024   # a full batch of MAX_BATCH matches is well under 2 MB
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024   # beyond this an oversized upload is cut off instead of drained

# variant: the A/B arm that answered ("champion", "challenger"; "mixed" for a batch spanning both; "none" for
# routes that predict nothing or requests rejected before scoring)
REQUESTS = Counter("time2bet_requests_total", "requests served, by route template, status class and variant",
                   ["route", "status", "variant"])
LATENCY = Histogram("time2bet_request_seconds", "request latency, by route template and variant", ["route", "variant"])
BATCH_SIZE = Histogram("time2bet_batch_size", "matches per batch request (POST /predict/batch and async jobs)",
                       ["source"], buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000))
PREDICTIONS = Counter("time2bet_predictions_total", "predictions served, by most likely outcome and variant",
                      ["outcome", "variant"])
MODEL_INFO = Gauge("time2bet_model_info", "1 for each served model version (0 once replaced)", ["version", "variant"],
                   multiprocess_mode="livemax")
SWAPS = Counter("time2bet_model_swaps_total", "model loads after an alias moved, by outcome and variant",
                ["outcome", "variant"])
VALIDATION_ERRORS = Counter("time2bet_validation_errors_total", "rejected requests", ["reason"])
SNAPSHOT_AGE = "time2bet_snapshot_age_seconds"


def _documented(**codes: str) -> dict:
    """OpenAPI `responses` of error bodies (ErrorResponse), e.g. _documented(**{"404": "unknown match id"})."""
    return {int(code): {"model": ErrorResponse, "description": why} for code, why in codes.items()}


# every route: what the middleware, validation and readiness can answer (routes add their own 400/404/409)
app = FastAPI(title="Time2Bet match-outcome forecasts", responses=_documented(**{
    "413": "request body over the size limit",
    "422": "invalid request: unknown team (with the closest names), unknown division, same team twice, "
           "malformed date, wrong types, extra fields, strings too long, empty or oversized batch",
    "503": "the model and the serving snapshot are still loading (or the jobs store is unavailable)"}))
MALFORMED_BODY = _documented(**{"400": "the body is not decodable (e.g. not UTF-8)"})


def _error(status: int, reason: str, message: str, **extra) -> JSONResponse:
    VALIDATION_ERRORS.labels(reason=reason).inc()
    return JSONResponse({"error": reason, "message": message, **extra}, status_code=status)


def _describe(raw_errors) -> tuple[str, str, list[dict]]:
    """(reason, message, errors) of pydantic/FastAPI validation errors, never echoing the input (it may be huge):
    location, type and message say what is wrong."""
    errors = [{"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in raw_errors]
    reason = errors[0]["type"] if errors else "invalid"
    message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
    return str(reason), message, errors


@app.exception_handler(RequestValidationError)
async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    reason, message, errors = _describe(exc.errors())
    return _error(422, reason, message, errors=errors[:20])


@app.exception_handler(redis.RedisError)
async def _jobs_unavailable(_: Request, exc: redis.RedisError) -> JSONResponse:
    logger.error("jobs store unavailable: %s", exc)
    return JSONResponse({"error": "jobs_unavailable", "message": f"the jobs store (Redis) is unavailable: "
                         f"{type(exc).__name__}"}, status_code=503)


@app.exception_handler(RequestError)
async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
    VALIDATION_ERRORS.labels(reason=exc.reason).inc()
    return JSONResponse(exc.detail, status_code=exc.status)


def _unknown_job(job_id: str, why: str = "no such job (or it has expired)") -> JSONResponse:
    return JSONResponse({"error": "unknown_job", "message": f"job {job_id[:64]!r}: {why}", "job_id": job_id[:64]},
                        status_code=404)


def _batch_response(scored: scoring.Scored) -> bytes:
    """A BatchResponse body."""
    return b'{"predictions":' + scored.predictions_json() + b"}"


class NotReady(Exception):
    pass


@app.exception_handler(NotReady)
async def _not_ready(_: Request, exc: NotReady) -> JSONResponse:
    return JSONResponse({"error": "not_ready", "message": str(exc)}, status_code=503)


HTTP_REASONS = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}


@app.exception_handler(StarletteHTTPException)
async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own errors (an undecodable body, no such route, wrong method) in our error shape
    instead of {"detail": ...}; headers such as Allow are kept."""
    reason = HTTP_REASONS.get(exc.status_code, "http_error")
    if exc.status_code == 400:
        VALIDATION_ERRORS.labels(reason=reason).inc()
    return JSONResponse({"error": reason, "message": str(exc.detail)}, status_code=exc.status_code,
                        headers=exc.headers)


def _route_template(scope) -> str:
    """The matched route's path template (bounded label set); routing records it in the shared scope."""
    return getattr(scope.get("route"), "path", None) or "other"


class _Observe:
    """Body-size limit and the per-route request count and latency, as a plain ASGI middleware (a
    ``@app.middleware("http")`` function runs every request through an extra task and memory streams)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get(_OBSERVED):   # PredictFront observes its declined requests too
            return await self.app(scope, receive, send)
        scope[_OBSERVED] = True
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            if length.isdigit() and int(length) <= DRAIN_LIMIT_BYTES:
                # read (and drop) the body first, so the client gets the 413 rather than a reset mid-upload
                while (await receive()).get("more_body", False):
                    pass
            response = _error(413, "body_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
            return await response(scope, receive, send)
        start = time.perf_counter()
        info = {"variant": "none", "status": "5xx"}
        _REQUEST_INFO.set(info)   # the handler records the variant here (also from the thread pool: same dict)

        async def send_observed(message):
            if message["type"] == "http.response.start":
                info["status"] = f"{message['status'] // 100}xx"
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            key = (_route_template(scope), info["status"], info["variant"])
            children = _ROUTE_METRICS.get(key)
            if children is None:   # labels() takes a lock and builds a key: once per label set
                children = _ROUTE_METRICS[key] = (REQUESTS.labels(route=key[0], status=key[1], variant=key[2]),
                                                  LATENCY.labels(route=key[0], variant=key[2]))
            children[0].inc()
            children[1].observe(time.perf_counter() - start)


_REQUEST_INFO: contextvars.ContextVar[dict] = contextvars.ContextVar("time2bet_request_info")
_OBSERVED = "time2bet.observed"
_ROUTE_METRICS: dict[tuple[str, str, str], tuple] = {}
_PREDICTION_METRICS: dict[tuple[str, str], Counter] = {}   # (outcome, variant) -> its child of PREDICTIONS
app.add_middleware(_Observe)


async def _current_service():
    """BentoML hands each route its service instance through a *sync* dependency, which FastAPI runs on the
    thread pool: a thread hop per request for reading a global. The same lookup, awaited on the event loop."""
    return bentoml.get_current_service()


app.dependency_overrides[bentoml.get_current_service] = _current_service

# Access logging (one formatted log line per request) is off unless TIME2BET_ACCESS_LOG=1; /metrics counts
# every request anyway. Tracing is off for every path unless TIME2BET_TRACING=1: with no exporter configured
# the OpenTelemetry middleware still built a (dropped) span per request.
_SETTINGS = Settings.from_env()   # read when the module loads: BentoML's decorator below needs two flags


@bentoml.service(name="time2bet", workers=1, traffic={"timeout": 60},
                 logging={"access": {"enabled": _SETTINGS.access_log}},
                 metrics={"enabled": False, "namespace": "bentoml_service"},   # /metrics is ours: see metrics()
                 **({} if _SETTINGS.tracing else {"tracing": {"excluded_urls": ".*"}}))
@bentoml.asgi_app(app, path="/")
class Time2BetService:
    """One worker state: the served models (champion, challenger) and the serving snapshot, loaded in the
    background; a watcher thread then follows the registry's aliases and swaps models in as they move."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.model_name = self.settings.model_name
        self.poll_s = self.settings.model_poll_s
        self.challenger_share = self.settings.challenger_share
        self.watcher = ModelWatcher(self.settings.mlflow_tracking_uri, self.model_name, on_change=self._changed)
        self.snapshot: Snapshot | None = None
        self.load_error: str | None = None
        self._started = False   # swaps are counted once the first champion is served
        self._stop = threading.Event()
        self._loader = threading.Thread(target=self._run, name="time2bet-models", daemon=True)
        self._loader.start()
        # durable batch jobs (Redis); the worker takes jobs only once __is_ready__
        self.jobs = JobStore.from_settings(self.settings)
        self._jobs_worker = JobWorker(self.jobs, self._run_job, self.__is_ready__, self._stop).start()
        self.batcher = scoring.MicroBatcher()   # POST /predict: concurrent requests share model calls

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

    def _refresh(self) -> None:
        try:
            models = self.watcher.refresh()
        except Exception as exc:  # noqa: BLE001 - registry unreachable: keep serving, try again next poll
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
        try:
            self.snapshot = Snapshot.load(self.settings.warehouse_url)
            logger.info("serving snapshot of %d teams", len(self.snapshot.teams))
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and every route
            logger.exception("loading the serving snapshot failed")
            self.load_error = f"{type(exc).__name__}: {exc}"
            return
        self._refresh()   # the first champion (and challenger); then follow the aliases
        scoring.settle_heap()
        while not self._stop.wait(self.poll_s):
            self._refresh()

    def __is_ready__(self) -> bool:
        return self.models.champion is not None and self.snapshot is not None

    @app.get("/metrics", include_in_schema=False)
    def metrics(self) -> Response:
        """Prometheus exposition of every ``time2bet_*`` metric (all workers: BentoML's multiprocess collector) and
        the snapshot age. BentoML's own HTTP metrics are off (``metrics.enabled: false``), which also drops its
        /metrics route, hence this one: they labelled requests by raw path, a new series for every match id and
        job id asked about (unbounded), and cost ~30 us per request; ``time2bet_requests_total`` and
        ``time2bet_request_seconds`` count the same by route template."""
        from bentoml._internal.container import BentoMLContainer

        client = BentoMLContainer.metrics_client.get()
        text = client.generate_latest().decode()
        if self.snapshot is not None:
            text += (f"# HELP {SNAPSHOT_AGE} seconds since the serving snapshot was read from the warehouse\n"
                     f"# TYPE {SNAPSHOT_AGE} gauge\n{SNAPSHOT_AGE} {self.snapshot.age_seconds():.3f}\n")
        return Response(text, media_type=client.CONTENT_TYPE_LATEST)

    def _ready(self) -> tuple[ModelSet, Snapshot]:
        """The models and the snapshot for one request: taken once, so a swap meanwhile does not affect it."""
        models, snapshot = self.models, self.snapshot
        if models.champion is None or snapshot is None:
            raise NotReady(self.load_error or "the model and the serving snapshot are still loading")
        return models, snapshot

    # --- shared helpers (never call one route from another) ---------------------------------------------

    def _count(self, scored: scoring.Scored) -> scoring.Scored:
        """Predictions by outcome and variant, and the answering variant on the request's metrics."""
        variants = set()
        for key, n in scored.outcome_counts().items():
            child = _PREDICTION_METRICS.get(key)
            if child is None:
                child = _PREDICTION_METRICS[key] = PREDICTIONS.labels(outcome=key[0], variant=key[1])
            child.inc(n)
            variants.add(key[1])
        info = _REQUEST_INFO.get(None)
        if info is not None and variants:
            info["variant"] = variants.pop() if len(variants) == 1 else "mixed"
        return scored

    def _score(self, requests: MatchColumns) -> scoring.Scored:
        """Requests scored in this thread (batch route, jobs). A/B by match id (md5 of division|date|home|away):
        the same match always gets the same variant. Raises RequestError (with the request's index in a batch)."""
        models, snapshot = self._ready()
        return self._count(scoring.score(models, snapshot, requests, self.challenger_share))

    def _run_job(self, body: Any) -> str:
        """A job's input through the same validation and scoring as POST /predict/batch; the response JSON."""
        try:
            batch = BatchRequest.model_validate(body)
        except ValidationError as exc:
            reason, message, _ = _describe(exc.errors())
            raise JobInputError(f"{reason}: {message}") from None
        BATCH_SIZE.labels(source="job").observe(len(batch.matches))
        try:
            scored = self._score(MatchColumns.of(batch.matches))
        except RequestError as exc:
            where = f" (matches[{exc.detail['index']}])" if "index" in exc.detail else ""
            raise JobInputError(f"{exc.reason}{where}: {exc}") from None
        return _batch_response(scored).decode()

    @staticmethod
    def _stored(frame: pd.DataFrame) -> list[StoredPrediction]:
        frame = frame.astype(object).where(frame.notna(), None)
        return [StoredPrediction(**{k: v for k, v in row.items() if k in StoredPrediction.model_fields})
                for row in frame.to_dict("records")]

    # --- routes -----------------------------------------------------------------------------------------

    @app.post("/predict", response_model=Prediction, responses=MALFORMED_BODY)
    async def predict(self, match: MatchRequest) -> Response:
        # valid JSON bodies are answered by _FastPath before this route, which serves the rest (errors) and
        # documents the route (no docstring: it would become the OpenAPI description)
        return await self._predict_one(match)

    async def _predict_one(self, match: MatchRequest) -> Response:
        """On the event loop (resolving and the cached feature row take microseconds); the model call goes
        through the micro-batcher, shared with the other requests waiting."""
        models, snapshot = self._ready()
        scored = await scoring.score_batched(self.batcher, models, snapshot, [match], self.challenger_share)
        return Response(self._count(scored).predictions_json()[1:-1], media_type="application/json")   # one object

    @app.post("/predict/batch", response_model=BatchResponse, responses=MALFORMED_BODY)
    def predict_batch(self, batch: BatchRequest) -> Response:
        # as predict: _FastPath answers valid JSON bodies first
        return self._predict_many(MatchColumns.of(batch.matches))

    def _predict_many(self, matches: MatchColumns) -> Response:
        """Up to 10,000 matches, one model call per variant (on a worker thread: it takes tens of ms)."""
        BATCH_SIZE.labels(source="request").observe(len(matches))
        return Response(_batch_response(self._score(matches)), media_type="application/json")

    @app.post("/jobs", status_code=202, response_model=None,
              responses={202: {"model": JobAccepted, "description": "queued"}, **MALFORMED_BODY})
    def submit_job(self, body: dict[str, Any] = Body(...)) -> JSONResponse:
        """Queue a batch job ({"matches": [...]} as for /predict/batch; validated when it runs)."""
        record = self.jobs.submit(body)
        return JSONResponse({"job_id": record["job_id"], "status": record["status"]}, status_code=202)

    @app.get("/jobs/{job_id}", response_model=None,
             responses={200: {"model": JobStatus, "description": "the job's state"},
                        **_documented(**{"404": "no such job (or it has expired)"})})
    def job_status(self, job_id: str) -> JSONResponse:
        record = self.jobs.get(job_id)
        if record is None:
            return _unknown_job(job_id)
        return JSONResponse(record)

    @app.get("/jobs/{job_id}/result", response_model=None,
             responses={200: {"model": BatchResponse, "description": "the predictions, as POST /predict/batch"},
                        **_documented(**{"404": "no such job, or its result has expired",
                                         "409": "the job is not finished yet, or it failed"})})
    def job_result(self, job_id: str) -> Response:
        record = self.jobs.get(job_id)
        if record is None:
            return _unknown_job(job_id)
        if record["status"] not in FINISHED:
            return JSONResponse({"error": "job_not_finished", "message": f"job {job_id} is {record['status']}; "
                                 "its result is available once it is completed", "job_id": job_id,
                                 "status": record["status"]}, status_code=409)
        if record["status"] == "failed":
            return JSONResponse({"error": "job_failed", "message": f"job {job_id} failed: {record['error']}",
                                 "job_id": job_id, "status": "failed"}, status_code=409)
        result = self.jobs.result(job_id)
        if result is None:
            return _unknown_job(job_id, "its result has expired")
        return Response(result, media_type="application/json")

    @app.get("/predict/{match_id}", response_model=StoredPrediction,
             responses=_documented(**{"404": "no stored prediction for this match id"}))
    def stored_prediction(self, match_id: str):
        if len(match_id) > 64:
            return _error(422, "match_id_too_long", "match_id is at most 64 characters")
        models, snapshot = self._ready()
        variant = assign_variant(match_id, self.challenger_share) if models.challenger is not None else CHAMPION
        found = snapshot.predictions[snapshot.predictions["match_id"] == match_id]
        if variant != CHAMPION and (found["variant"] == variant).any():
            found = found[found["variant"] == variant]
        else:   # the champion's row (also when the batch path stored none for the challenger)
            found = found[found["variant"] == CHAMPION]
        if found.empty:
            return _error(404, "unknown_match_id", f"no champion prediction for match_id {match_id!r} in "
                          f"{PREDICTIONS_TABLE}", match_id=match_id)
        return self._stored(found.head(1))[0]

    @app.get("/matches", response_model=MatchesResponse)
    def matches(self, division: str | None = Query(None, max_length=8), date_from: IsoDate | None = None,
                date_to: IsoDate | None = None):
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

    @app.get("/teams", response_model=TeamsResponse)
    def teams(self, division: str | None = Query(None, max_length=8)) -> TeamsResponse:
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

    @app.get("/model/info", response_model=ModelInfo)
    def model_info(self) -> ModelInfo:
        models, _ = self._ready()
        details = [self._details(m) for m in (models.champion, models.challenger) if m is not None]
        return ModelInfo(**details[0].model_dump(), challenger=details[1] if len(details) > 1 else None,
                         challenger_share=self.challenger_share, models=details)

    @staticmethod
    def _details(model: ServedModel) -> ModelDetails:
        return ModelDetails(name=model.name, version=model.version, alias=model.alias, run_id=model.run_id,
                            metrics=model.metrics, data_version=model.data_version, loaded_at=model.loaded_at,
                            input_features=len(model.input_features))


class _FastPath:
    """POST /predict or /predict/batch for a well-formed request: read the body, parse and validate it in one
    pass (``parse``: the handler's argument, or None to decline), score, answer. Any other body (not JSON,
    invalid, anything the parser refuses) goes on, replayed, to ``app``: the FastAPI route, so errors are exactly
    the documented ones, and the OpenAPI schema is the FastAPI routes'. RequestError and NotReady get the app's
    own handlers' answers. A batch is parsed and scored on the thread pool."""

    def __init__(self, path: str, parse, handler: str, threaded: bool):
        self.path, self.parse, self.handler, self.threaded = path, parse, handler, threaded

    async def __call__(self, scope, receive, send, app):
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return   # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"application/json")
        response = None
        if content_type.split(b";")[0].strip().lower() == b"application/json":
            handler = getattr(get_current_service(), self.handler)
            try:
                if self.threaded:
                    response = await run_in_threadpool(self._parsed_sync, handler, body)
                else:
                    request = self.parse(body)
                    response = None if request is None else await handler(request)
            except RequestError as exc:
                response = await _request_error(None, exc)
            except NotReady as exc:
                response = await _not_ready(None, exc)
        if response is None:
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            return await app(scope, replay, send)
        await response(scope, receive, send)

    def _parsed_sync(self, handler, body: bytes):
        request = self.parse(body)
        return None if request is None else handler(request)


def _validated(schema):
    """A fast path's parser: the body validated by pydantic in one pass, or None."""
    def parse(body: bytes):
        try:
            return schema.model_validate_json(body)
        except ValidationError:
            return None
    return parse


def _batch_columns(body: bytes) -> MatchColumns | None:
    """A valid POST /predict/batch body as columns: without pydantic objects when it can (see
    MatchColumns.from_batch_json), else through BatchRequest (e.g. names to strip)."""
    columns = MatchColumns.from_batch_json(body)
    if columns is None:
        batch = _validate_batch(body)
        columns = None if batch is None else MatchColumns.of(batch.matches)
    return columns


_validate_batch = _validated(BatchRequest)
FAST_PATHS = {p.path: p for p in (_FastPath("/predict", _validated(MatchRequest), "_predict_one", threaded=False),
                                  _FastPath("/predict/batch", _batch_columns, "_predict_many", threaded=True))}


class PredictFront:
    """The two prediction routes, served as early as BentoML lets us: an ASGI middleware of the service
    (``add_asgi_middleware``), which BentoML runs inside its traffic-timeout and tracing middlewares but ahead of
    its request-context middleware, its own app (error middlewares, router, the mount of our app) and our
    FastAPI app's layers (error middlewares, router). Measured in-process at 64 requests in flight
    (bench/profile_request.py): those layers cost ~80 us of a ~270 us POST /predict, against ~140 us for the
    whole request in a bare Starlette app. The request count, latency and body-size limit are the same
    :class:`_Observe` as every other route's; everything else goes on to BentoML untouched."""

    def __init__(self, app):
        self.app = app
        self.paths = {path: _Observe(functools.partial(fast, app=app)) for path, fast in FAST_PATHS.items()}

    async def __call__(self, scope, receive, send):
        observed = self.paths.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if observed is None:
            return await self.app(scope, receive, send)
        scope["route"] = FAST_PATHS[scope["path"]]   # the metrics' route label (its .path)
        await observed(scope, receive, send)


Time2BetService.add_asgi_middleware(PredictFront)

__all__ = ["MAX_BATCH", "Time2BetService", "app"]
