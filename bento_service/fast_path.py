"""POST /predict and /predict/batch answered ahead of BentoML's app (``PredictFront``), for speed.

Measured in-process at 64 requests in flight (bench/profile_request.py), the layers between BentoML's
middlewares and our route (its request-context middleware, its app's error middlewares and router, the mount of
our FastAPI app, that app's own layers) cost ~80 us of a ~270 us POST /predict, against ~140 us for the whole
request in a bare Starlette app (docs/adr/0003-serving-hot-path.md). So a well-formed body is parsed here and
handed straight to the route method itself (``Time2BetService.predict`` / ``predict_batch``, taken from the
current service: no import of the service module); anything else goes on to the FastAPI route unchanged.
"""

from __future__ import annotations

import functools

from bentoml import get_current_service  # bound once: ``bentoml.<name>`` goes through a lazy module __getattr__
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from bento_service.errors import NotReady, on_not_ready, on_request_error
from bento_service.metrics import ObserveRequests
from bento_service.schemas import BatchRequest, MatchColumns, PredictRequest
from bento_service.snapshot import RequestError


class _FastPath:
    """POST /predict or /predict/batch for a well-formed request: read the body, parse and validate it in one
    pass (``parse``: the route method's argument, or None to decline), call the service's route method
    (``handler``: its name), answer. Any other body (not JSON, invalid, anything the parser refuses) goes on,
    replayed, to ``app``: the FastAPI route, so errors are exactly the documented ones, and the OpenAPI schema is
    the FastAPI routes'. RequestError and NotReady get the app's own handlers' answers. A batch is parsed and
    scored on the thread pool. The body is read through ObserveRequests' ``receive``, which stops a body without
    a Content-Length at MAX_BODY_BYTES (``BodyTooLarge`` unwinds from the read below to its 413), so no more than
    the limit of it is ever held here."""

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
                response = await on_request_error(None, exc)
            except NotReady as exc:
                response = await on_not_ready(None, exc)
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
# the route methods of Time2BetService they call (predict is async, on the event loop; predict_batch is sync)
FAST_PATHS = {p.path: p for p in (_FastPath("/predict", _validated(PredictRequest), "predict", threaded=False),
                                  _FastPath("/predict/batch", _batch_columns, "predict_batch", threaded=True))}


class PredictFront:
    """The two prediction routes, served as early as BentoML lets us: an ASGI middleware of the service
    (``add_asgi_middleware``), which BentoML runs inside its traffic-timeout and tracing middlewares but ahead of
    its request-context middleware, its own app (error middlewares, router, the mount of our app) and our
    FastAPI app's layers (error middlewares, router). The request count, latency and body-size limit are the same
    :class:`~bento_service.metrics.ObserveRequests` as every other route's; everything else goes on to BentoML
    untouched."""

    def __init__(self, app):
        self.app = app
        self.paths = {path: ObserveRequests(functools.partial(fast, app=app)) for path, fast in FAST_PATHS.items()}

    async def __call__(self, scope, receive, send):
        observed = self.paths.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if observed is None:
            return await self.app(scope, receive, send)
        scope["route"] = FAST_PATHS[scope["path"]]   # the metrics' route label (its .path)
        await observed(scope, receive, send)


__all__ = ["FAST_PATHS", "PredictFront"]
