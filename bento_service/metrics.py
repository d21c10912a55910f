"""The service's Prometheus metrics (``time2bet_*``) and the middleware that observes every request.

BentoML's own HTTP metrics are off (see the service's /metrics route): they labelled requests by raw path
(unbounded) and cost ~30 us a request. Here requests are counted by route template, status class and the A/B
variant that answered. The hot path is kept cheap (docs/adr/0003-serving-hot-path.md): ``ObserveRequests`` is a
plain ASGI middleware (no task or memory streams per request), a metric's child is looked up once per label set
and cached (``labels()`` takes a lock and builds a key), and the handler reports its variant through the
``REQUEST_INFO`` context variable (a dict shared with the thread pool) instead of anything per request.
``time2bet_validation_errors_total`` is errors.py's (it counts the error answers; the 413 below is one).
``time2bet_requests_shed_total`` counts the requests shedding.py answered 503 overloaded (``count_shed``), which
also count in the route's ``time2bet_requests_total`` (5xx) and ``time2bet_request_seconds``.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram
from starlette.responses import Response

from bento_service.errors import error_response

if TYPE_CHECKING:
    from bento_service.scoring import Scored
    from bento_service.snapshot import Snapshot

MAX_BODY_BYTES = 4 * 1024 * 1024   # a full batch of MAX_BATCH matches is well under 2 MB
# an oversized body is read on (and dropped) up to this many bytes in all, for at most DRAIN_SECONDS, before the
# 413, so that a client that sends its whole body before reading gets the answer; beyond, the 413 closes the
# connection (Connection: close) and the rest is never read
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 5.0

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
# a new exported snapshot noticed by a worker: loaded and swapped in (success), or the old one kept (failure)
SNAPSHOT_SWAPS = Counter("time2bet_snapshot_swaps_total", "serving snapshot reloads after a new export, by outcome",
                         ["outcome"])
# requests answered 503 overloaded past TIME2BET_MAX_IN_FLIGHT (shedding.py); also in time2bet_requests_total
SHED = Counter("time2bet_requests_shed_total", "requests shed (answered 503 overloaded: too many in flight), by "
               "route template", ["route"])
# predictions handed to the prediction ledger (bento_service/ledger.py): appended, or dropped (its buffer full)
LEDGER = Counter("time2bet_ledger_predictions_total", "predictions handed to the prediction ledger, by outcome "
                 "(appended: written within the flush bound; dropped: the writer's buffer was full)", ["outcome"])
SNAPSHOT_AGE = "time2bet_snapshot_age_seconds"   # rendered by render() (it is the snapshot's, read at scrape time)

REQUEST_INFO: contextvars.ContextVar[dict] = contextvars.ContextVar("time2bet_request_info")
OBSERVED = "time2bet.observed"   # scope key: the request is observed already (fast path, then the app)
_ROUTE_METRICS: dict[tuple[str, str, str], tuple] = {}   # (route, status, variant) -> (REQUESTS, LATENCY) children
_PREDICTION_METRICS: dict[tuple[str, str], Counter] = {}   # (outcome, variant) -> its child of PREDICTIONS
_SHED_METRICS: dict[str, Counter] = {}   # route -> its child of SHED


def _route_template(scope) -> str:
    """The matched route's path template (bounded label set); routing records it in the shared scope."""
    return getattr(scope.get("route"), "path", None) or "other"


class BodyTooLarge(BaseException):
    """Raised by the counting ``receive`` once a body passes MAX_BODY_BYTES; ``ended``: the body ended with that
    message. A BaseException, as CancelledError is, so that no route answers it otherwise (FastAPI turns any
    Exception raised while it reads a body into a 400): it unwinds to ObserveRequests, which answers 413."""

    def __init__(self, ended: bool):
        super().__init__(f"request body over {MAX_BODY_BYTES} bytes")
        self.ended = ended


async def _drain(receive, received: int) -> bool:
    """Read and drop the rest of an oversized body while it stays within DRAIN_LIMIT_BYTES in all (``received``
    so far) and DRAIN_SECONDS; True if the body ended (the connection can then be kept), False if not."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while received <= DRAIN_LIMIT_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return False   # the client went away
                if not message.get("more_body", False):
                    return True
                received += len(message.get("body", b""))
    except TimeoutError:
        pass
    return False


def _too_large(ended: bool) -> Response:
    response = error_response(413, "body_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    if not ended:   # the rest of the body is not read: the server closes the connection after the answer
        response.headers["connection"] = "close"
    return response


class ObserveRequests:
    """Body-size limit and the per-route request count and latency, as a plain ASGI middleware (a
    ``@app.middleware("http")`` function runs every request through an extra task and memory streams).

    The limit holds however the body comes. A Content-Length over it is answered 413 before any of the body is
    read; one within it bounds the body already (the HTTP server reads no more than that, as uvicorn's parser
    does: extra bytes would be the next request), so such requests, nearly all of them, cost nothing more.
    Without a Content-Length (chunked), ``receive`` is wrapped to count the bytes as they arrive, and the message
    that passes the limit raises :class:`BodyTooLarge` out of whatever reads the body (the fast path, a
    FastAPI route), so at most MAX_BODY_BYTES and one message of it are ever held. Either way the 413 comes once
    a bounded part of the rest is drained (see DRAIN_LIMIT_BYTES), with Connection: close if the body goes on:
    uvicorn would otherwise read (and drop) all of it to keep the connection alive."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get(OBSERVED):   # PredictFront observes its declined requests too
            return await self.app(scope, receive, send)
        scope[OBSERVED] = True
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        upstream, received = receive, 0
        if length is not None:
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                ended = length.isdigit() and int(length) <= DRAIN_LIMIT_BYTES and await _drain(receive, 0)
                return await _too_large(ended)(scope, receive, send)
        else:   # chunked (or no body): count it as it arrives

            async def receive():
                nonlocal received
                message = await upstream()
                body = message.get("body")
                if body:
                    received += len(body)
                    if received > MAX_BODY_BYTES:
                        raise BodyTooLarge(not message.get("more_body", False))
                return message

        start = time.perf_counter()
        info = {"variant": "none", "status": "5xx"}
        REQUEST_INFO.set(info)   # the handler records the variant here (also from the thread pool: same dict)
        started = False

        async def send_observed(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                info["status"] = f"{message['status'] // 100}xx"
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except BodyTooLarge as exc:
            if not started:   # else the answer is under way (no route of ours answers before reading): cut off
                ended = exc.ended or await _drain(upstream, received)
                await _too_large(ended)(scope, upstream, send_observed)
        finally:
            _observe((_route_template(scope), info["status"], info["variant"]), time.perf_counter() - start)


def _observe(key: tuple[str, str, str], seconds: float) -> None:
    """One request of (route, status class, variant) taking ``seconds``: time2bet_requests_total and
    time2bet_request_seconds."""
    children = _ROUTE_METRICS.get(key)
    if children is None:   # labels() takes a lock and builds a key: once per label set
        children = _ROUTE_METRICS[key] = (REQUESTS.labels(route=key[0], status=key[1], variant=key[2]),
                                          LATENCY.labels(route=key[0], variant=key[2]))
    children[0].inc()
    children[1].observe(seconds)


def count_shed(route: str, seconds: float) -> None:
    """A request shed (shedding.ShedLoad answered 503 overloaded): time2bet_requests_shed_total, and the route's
    request count (status 5xx) and latency, as if the route had answered it."""
    child = _SHED_METRICS.get(route)
    if child is None:
        child = _SHED_METRICS[route] = SHED.labels(route=route)
    child.inc()
    _observe((route, "5xx", "none"), seconds)


def count_predictions(scored: Scored) -> Scored:
    """Predictions by outcome and variant, and the answering variant on the request's metrics."""
    variants = set()
    for key, n in scored.outcome_counts().items():
        child = _PREDICTION_METRICS.get(key)
        if child is None:
            child = _PREDICTION_METRICS[key] = PREDICTIONS.labels(outcome=key[0], variant=key[1])
        child.inc(n)
        variants.add(key[1])
    info = REQUEST_INFO.get(None)
    if info is not None and variants:
        info["variant"] = variants.pop() if len(variants) == 1 else "mixed"
    return scored


def render(snapshot: Snapshot | None) -> Response:
    """The Prometheus exposition: every ``time2bet_*`` metric of every worker (BentoML's multiprocess collector)
    and the serving snapshot's age."""
    from bentoml._internal.container import BentoMLContainer

    client = BentoMLContainer.metrics_client.get()
    text = client.generate_latest().decode()
    if snapshot is not None:
        text += (f"# HELP {SNAPSHOT_AGE} seconds since the serving snapshot was read from the warehouse\n"
                 f"# TYPE {SNAPSHOT_AGE} gauge\n{SNAPSHOT_AGE} {snapshot.age_seconds():.3f}\n")
    return Response(text, media_type=client.CONTENT_TYPE_LATEST)


__all__ = ["BATCH_SIZE", "DRAIN_LIMIT_BYTES", "LATENCY", "MAX_BODY_BYTES", "MODEL_INFO", "PREDICTIONS", "REQUESTS",
           "REQUEST_INFO", "SHED", "SWAPS", "BodyTooLarge", "ObserveRequests", "count_predictions", "count_shed",
           "render"]
