"""Time2Bet match-outcome service (BentoML 1.4): ``bentoml serve bento_service.service:Time2BetService``.

Routes are a FastAPI app mounted on the service (BentoML's ``@bentoml.api`` is POST-only and has no path
parameters), so GET routes, ``/predict/{match_id}`` and JSON error bodies are ours; the handlers are methods of
the one service class and share plain helper methods. BentoML itself serves /livez, /readyz (false until the
model and the snapshot are loaded) and /metrics (its own metrics plus the ``time2bet_*`` ones below).

Configuration is the platform's (``Settings.from_env()``): TIME2BET_WAREHOUSE_URL, MLFLOW_TRACKING_URI, ...
plus TIME2BET_MODEL_NAME (default match_outcome).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time

import bentoml
import pandas as pd
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge, Histogram

from bento_service.model import DEFAULT_MODEL_NAME, OUTCOMES, ServedModel
from bento_service.schemas import (
    MAX_BATCH, BatchRequest, BatchResponse, MatchesResponse, MatchRequest, ModelInfo, Prediction, StoredPrediction,
)
from bento_service.snapshot import RequestError, Snapshot
from time2bet.settings import Settings

logger = logging.getLogger("time2bet.serving")

MAX_BODY_BYTES = 4 * 1024 * 1024   # a full batch of MAX_BATCH matches is well under 2 MB
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024   # beyond this an oversized upload is cut off instead of drained

REQUESTS = Counter("time2bet_requests_total", "requests served", ["route"])
LATENCY = Histogram("time2bet_request_seconds", "request latency", ["route"])
PREDICTIONS = Counter("time2bet_predictions_total", "predictions served, by most likely outcome", ["outcome"])
MODEL_INFO = Gauge("time2bet_model_info", "1 for the served model version", ["version"], multiprocess_mode="livemax")
VALIDATION_ERRORS = Counter("time2bet_validation_errors_total", "rejected requests", ["reason"])
SNAPSHOT_AGE = "time2bet_snapshot_age_seconds"

app = FastAPI(title="Time2Bet match-outcome forecasts")


def _error(status: int, reason: str, message: str, **extra) -> JSONResponse:
    VALIDATION_ERRORS.labels(reason=reason).inc()
    return JSONResponse({"error": reason, "message": message, **extra}, status_code=status)


@app.exception_handler(RequestValidationError)
async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    # never echo the input back (it may be huge); location, type and message say what is wrong
    errors = [{"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in exc.errors()]
    reason = errors[0]["type"] if errors else "invalid"
    message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
    return _error(422, str(reason), message, errors=errors[:20])


@app.exception_handler(RequestError)
async def _request_error(_: Request, exc: RequestError) -> JSONResponse:
    VALIDATION_ERRORS.labels(reason=exc.reason).inc()
    return JSONResponse(exc.detail, status_code=exc.status)


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
    """One worker state: the champion model and the serving snapshot, both loaded in the background."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self.model_name = os.environ.get("TIME2BET_MODEL_NAME", DEFAULT_MODEL_NAME)
        self.model: ServedModel | None = None
        self.snapshot: Snapshot | None = None
        self.load_error: str | None = None
        self._loader = threading.Thread(target=self._load, name="time2bet-load", daemon=True)
        self._loader.start()

    # --- lifecycle --------------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            self.snapshot = Snapshot.load(self.settings.warehouse_url)
            model = ServedModel.load(self.settings.mlflow_tracking_uri, self.model_name)
            MODEL_INFO.labels(version=model.version).set(1)
            self.model = model
            logger.info("serving %s v%s on a snapshot of %d teams", model.name, model.version,
                        len(self.snapshot.teams))
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and every route
            logger.exception("loading the model or the snapshot failed")
            self.load_error = f"{type(exc).__name__}: {exc}"

    def __is_ready__(self) -> bool:
        return self.model is not None and self.snapshot is not None

    def __metrics__(self, text: str) -> str:
        if self.snapshot is None:
            return text
        return (f"{text}# HELP {SNAPSHOT_AGE} seconds since the serving snapshot was read from the warehouse\n"
                f"# TYPE {SNAPSHOT_AGE} gauge\n{SNAPSHOT_AGE} {self.snapshot.age_seconds():.3f}\n")

    def _ready(self) -> tuple[ServedModel, Snapshot]:
        if self.model is None or self.snapshot is None:
            raise NotReady(self.load_error or "the model and the serving snapshot are still loading")
        return self.model, self.snapshot

    # --- shared helpers (never call one route from another) ---------------------------------------------

    def _score(self, requests: list[MatchRequest]) -> list[Prediction]:
        model, snapshot = self._ready()
        rows = []
        for i, r in enumerate(requests):
            try:
                rows.append(snapshot.resolve(r.home_team, r.away_team, r.division, r.kickoff_date))
            except RequestError as exc:
                if len(requests) > 1:
                    exc.detail["index"] = i
                raise
        features = snapshot.features(pd.DataFrame(rows))
        probs = model.predict(features)
        ref = {"name": model.name, "version": model.version, "alias": model.alias, "data_version": model.data_version}
        out = []
        for row, p in zip(rows, probs, strict=True):
            PREDICTIONS.labels(outcome=OUTCOMES[int(p.argmax())]).inc()
            out.append(Prediction(
                home_team=row["home_team"], away_team=row["away_team"], division=row["division"],
                kickoff_date=row["match_date"], probabilities=dict(zip(OUTCOMES, map(float, p), strict=True)),
                model=ref, features_as_of=snapshot.features_as_of, snapshot_loaded_at=snapshot.loaded_at,
            ))
        return out

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

    @app.get("/predict/{match_id}", response_model=StoredPrediction)
    def stored_prediction(self, match_id: str):
        _, snapshot = self._ready()
        if len(match_id) > 64:
            return _error(422, "match_id_too_long", "match_id is at most 64 characters")
        found = snapshot.stored("champion")
        found = found[found["match_id"] == match_id]
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
        model, _ = self._ready()
        return ModelInfo(name=model.name, version=model.version, alias=model.alias, run_id=model.run_id,
                         metrics=model.metrics, data_version=model.data_version, loaded_at=model.loaded_at,
                         input_features=len(model.input_features))


__all__ = ["MAX_BATCH", "Time2BetService", "app"]
