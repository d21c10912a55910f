"""Time2Bet match-outcome service (BentoML 1.4): ``bentoml serve bento_service.service:Time2BetService``.

Routes are a FastAPI app mounted on the service (BentoML's ``@bentoml.api`` is POST-only and has no path
parameters), so GET routes, ``/predict/{match_id}`` and JSON error bodies are ours; the handlers are methods of
the one service class and share plain helper methods. BentoML itself serves /livez, /readyz (false until the
model and the snapshot are loaded) and /metrics (its own metrics plus the ``time2bet_*`` ones below).

Configuration is the platform's (``Settings.from_env()``): TIME2BET_WAREHOUSE_URL, MLFLOW_TRACKING_URI, ...
plus TIME2BET_MODEL_NAME (default match_outcome), TIME2BET_MODEL_POLL_S (default 30: how often the registry's
aliases are read; a moved alias is loaded in the background and swapped in atomically) and
TIME2BET_CHALLENGER_SHARE (default 0: the share of matches, chosen stably by match id, answered by the
``challenger`` when that alias exists).

Durable async batch jobs (``jobs.py``): POST /jobs queues {"matches": [...]} in Redis (TIME2BET_REDIS_URL,
TIME2BET_JOBS_PREFIX), a worker thread runs them like POST /predict/batch; GET /jobs/{id} and /jobs/{id}/result.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time

import bentoml
import pandas as pd
from typing import Any

import redis
from fastapi import Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from bento_service.jobs import FINISHED, JobInputError, JobStore, JobWorker

from bento_service.model import (
    CHAMPION, DEFAULT_MODEL_NAME, OUTCOMES, ModelSet, ModelWatcher, ServedModel, assign_variant, parse_share,
)
from bento_service.schemas import (
    MAX_BATCH, BatchRequest, BatchResponse, MatchesResponse, MatchRequest, ModelDetails, ModelInfo, Prediction,
    StoredPrediction,
)
from bento_service.snapshot import RequestError, Snapshot
from time2bet.settings import Settings

logger = logging.getLogger("time2bet.serving")

MAX_BODY_BYTES = 4 * 1024 * 1024   # a full batch of MAX_BATCH matches is well under 2 MB
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024   # beyond this an oversized upload is cut off instead of drained

REQUESTS = Counter("time2bet_requests_total", "requests served", ["route"])
LATENCY = Histogram("time2bet_request_seconds", "request latency", ["route"])
PREDICTIONS = Counter("time2bet_predictions_total", "predictions served, by most likely outcome and variant",
                      ["outcome", "variant"])
MODEL_INFO = Gauge("time2bet_model_info", "1 for each served model version (0 once replaced)", ["version", "variant"],
                   multiprocess_mode="livemax")
SWAPS = Counter("time2bet_model_swaps_total", "model loads after an alias moved, by outcome and variant",
                ["outcome", "variant"])
DEFAULT_POLL_S = 30.0
VALIDATION_ERRORS = Counter("time2bet_validation_errors_total", "rejected requests", ["reason"])
SNAPSHOT_AGE = "time2bet_snapshot_age_seconds"

app = FastAPI(title="Time2Bet match-outcome forecasts")


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


class NotReady(Exception):
    pass


@app.exception_handler(NotReady)
async def _not_ready(_: Request, exc: NotReady) -> JSONResponse:
    return JSONResponse({"error": "not_ready", "message": str(exc)}, status_code=503)


def _route_template(scope) -> str:
    """The matched route's path template (bounded label set); routing records it in the shared scope."""
    return getattr(scope.get("route"), "path", None) or "other"


@app.middleware("http")
async def _observe(request: Request, call_next):
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        if length.isdigit() and int(length) <= DRAIN_LIMIT_BYTES:
            # read (and drop) the body first, so the client gets the 413 rather than a reset mid-upload
            async for _ in request.stream():
                pass
        return _error(413, "body_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    start = time.perf_counter()
    try:
        return await call_next(request)
    finally:
        route = _route_template(request.scope)
        REQUESTS.labels(route=route).inc()
        LATENCY.labels(route=route).observe(time.perf_counter() - start)


@bentoml.service(name="time2bet", workers=1, traffic={"timeout": 60})
@bentoml.asgi_app(app, path="/")
class Time2BetService:
    """One worker state: the served models (champion, challenger) and the serving snapshot, loaded in the
    background; a watcher thread then follows the registry's aliases and swaps models in as they move."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.model_name = os.environ.get("TIME2BET_MODEL_NAME", DEFAULT_MODEL_NAME)
        self.poll_s = max(0.1, float(os.environ.get("TIME2BET_MODEL_POLL_S") or DEFAULT_POLL_S))
        self.challenger_share = parse_share(os.environ.get("TIME2BET_CHALLENGER_SHARE"))
        self.watcher = ModelWatcher(self.settings.mlflow_tracking_uri, self.model_name, on_change=self._changed)
        self.snapshot: Snapshot | None = None
        self.load_error: str | None = None
        self._started = False   # swaps are counted once the first champion is served
        self._stop = threading.Event()
        self._loader = threading.Thread(target=self._run, name="time2bet-models", daemon=True)
        self._loader.start()
        # durable batch jobs (Redis); the worker takes jobs only once __is_ready__
        self.jobs = JobStore.from_env()
        self._jobs_worker = JobWorker(self.jobs, self._run_job, self.__is_ready__, self._stop).start()

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
        while not self._stop.wait(self.poll_s):
            self._refresh()

    def __is_ready__(self) -> bool:
        return self.models.champion is not None and self.snapshot is not None

    def __metrics__(self, text: str) -> str:
        if self.snapshot is None:
            return text
        return (f"{text}# HELP {SNAPSHOT_AGE} seconds since the serving snapshot was read from the warehouse\n"
                f"# TYPE {SNAPSHOT_AGE} gauge\n{SNAPSHOT_AGE} {self.snapshot.age_seconds():.3f}\n")

    def _ready(self) -> tuple[ModelSet, Snapshot]:
        """The models and the snapshot for one request: taken once, so a swap meanwhile does not affect it."""
        models, snapshot = self.models, self.snapshot
        if models.champion is None or snapshot is None:
            raise NotReady(self.load_error or "the model and the serving snapshot are still loading")
        return models, snapshot

    # --- shared helpers (never call one route from another) ---------------------------------------------

    def _score(self, requests: list[MatchRequest]) -> list[Prediction]:
        models, snapshot = self._ready()
        rows = []
        for i, r in enumerate(requests):
            try:
                rows.append(snapshot.resolve(r.home_team, r.away_team, r.division, r.kickoff_date))
            except RequestError as exc:
                if len(requests) > 1:
                    exc.detail["index"] = i
                raise
        features = snapshot.features(pd.DataFrame(rows))
        # A/B by match id (md5 of division|date|home|away): the same match always gets the same variant
        picks = [models.pick(row["match_id"], self.challenger_share) for row in rows]
        probs = [None] * len(rows)
        for variant in {v for v, _ in picks}:
            idx = [i for i, (v, _) in enumerate(picks) if v == variant]
            model = next(m for v, m in picks if v == variant)
            for i, p in zip(idx, model.predict(features.iloc[idx]), strict=True):
                probs[i] = p
        out = []
        for row, p, (variant, model) in zip(rows, probs, picks, strict=True):
            PREDICTIONS.labels(outcome=OUTCOMES[int(p.argmax())], variant=variant).inc()
            ref = {"name": model.name, "version": model.version, "alias": model.alias,
                   "data_version": model.data_version}
            out.append(Prediction(
                variant=variant, home_team=row["home_team"], away_team=row["away_team"], division=row["division"],
                kickoff_date=row["match_date"], probabilities=dict(zip(OUTCOMES, map(float, p), strict=True)),
                model=ref, features_as_of=snapshot.features_as_of, snapshot_loaded_at=snapshot.loaded_at,
            ))
        return out

    def _run_job(self, body: Any) -> str:
        """A job's input through the same validation and scoring as POST /predict/batch; the response JSON."""
        try:
            batch = BatchRequest.model_validate(body)
        except ValidationError as exc:
            reason, message, _ = _describe(exc.errors())
            raise JobInputError(f"{reason}: {message}") from None
        try:
            predictions = self._score(batch.matches)
        except RequestError as exc:
            where = f" (matches[{exc.detail['index']}])" if "index" in exc.detail else ""
            raise JobInputError(f"{exc.reason}{where}: {exc}") from None
        return BatchResponse(predictions=predictions).model_dump_json()

    @staticmethod
    def _stored(frame: pd.DataFrame) -> list[StoredPrediction]:
        frame = frame.astype(object).where(frame.notna(), None)
        return [StoredPrediction(**{k: v for k, v in row.items() if k in StoredPrediction.model_fields})
                for row in frame.to_dict("records")]

    # --- routes -----------------------------------------------------------------------------------------

    @app.post("/predict", response_model=Prediction)
    def predict(self, match: MatchRequest) -> Prediction:
        return self._score([match])[0]

    @app.post("/predict/batch", response_model=BatchResponse)
    def predict_batch(self, batch: BatchRequest) -> BatchResponse:
        return BatchResponse(predictions=self._score(batch.matches))

    @app.post("/jobs", status_code=202)
    def submit_job(self, body: dict[str, Any] = Body(...)) -> JSONResponse:
        """Queue a batch job ({"matches": [...]} as for /predict/batch; validated when it runs)."""
        record = self.jobs.submit(body)
        return JSONResponse({"job_id": record["job_id"], "status": record["status"]}, status_code=202)

    @app.get("/jobs/{job_id}")
    def job_status(self, job_id: str) -> JSONResponse:
        record = self.jobs.get(job_id)
        if record is None:
            return _unknown_job(job_id)
        return JSONResponse(record)

    @app.get("/jobs/{job_id}/result")
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

    @app.get("/predict/{match_id}", response_model=StoredPrediction)
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
                          "predictions.upcoming_matches", match_id=match_id)
        return self._stored(found.head(1))[0]

    @app.get("/matches", response_model=MatchesResponse)
    def matches(self, division: str | None = Query(None, max_length=8), date_from: dt.date | None = None,
                date_to: dt.date | None = None):
        _, snapshot = self._ready()
        if division is not None and division not in snapshot.divisions:
            raise RequestError("unknown_division", f"unknown division {division!r}",
                               known_divisions=sorted(snapshot.divisions))
        if date_from and date_to and date_from > date_to:
            raise RequestError("empty_date_range", f"date_from {date_from} is after date_to {date_to}")
        rows = snapshot.stored("champion")
        if division is not None:
            rows = rows[rows["division"] == division]
        if date_from is not None:
            rows = rows[rows["match_date"] >= date_from]
        if date_to is not None:
            rows = rows[rows["match_date"] <= date_to]
        return MatchesResponse(count=len(rows), matches=self._stored(rows))

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


__all__ = ["MAX_BATCH", "Time2BetService", "app"]
