"""The service's error mapping: every error answer is a JSON object ``{"error": reason, "message": ..., ...}``.

In one place so that the FastAPI routes, the exception handlers, the request-observing middleware (413) and the
fast path (which answers RequestError and NotReady itself) all give the same bodies, and so that the OpenAPI
schema documents them (``documented``: ErrorResponse). ``install(app)`` puts the handlers on the FastAPI app:
FastAPI's and Starlette's own errors (validation, undecodable body, no route, wrong method, an unhandled
exception) come out in the same shape instead of ``{"detail": ...}`` or ``text/plain``.

No route, wrong method: BentoML mounts our app at "/" with a *passive* mount (``_bentoml_impl.server.mount``),
which hands a request to our app only if one of our routes matches its path; any other path was answered by
BentoML's own Starlette app, whose 404 (and 405 for its /livez, /readyz, ...) is ``text/plain``. ``install``
therefore adds :class:`Unrouted`, a route of ours that claims every HTTP request none of BentoML's own routes
serves, and makes our router's no-route answer a JSON 404, or a JSON 405 (with ``Allow``) when the path is one of
BentoML's with another method.

The bottom of the package's serving modules (it imports none of them but schemas and snapshot), which is why the
rejected-requests counter, ``time2bet_validation_errors_total``, lives here and not with the other metrics.
"""

from __future__ import annotations

import json
import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, NoMatchFound

from bento_service.schemas import ErrorResponse
from bento_service.snapshot import RequestError

logger = logging.getLogger("time2bet.serving")

VALIDATION_ERRORS = Counter("time2bet_validation_errors_total", "rejected requests", ["reason"])
HTTP_REASONS = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed", 500: "internal_error"}


class NotReady(Exception):
    """The model or the serving snapshot is not loaded (yet, or it failed): 503."""


def documented(headers: dict[int, dict] | None = None, **codes: str) -> dict:
    """OpenAPI `responses` of error bodies (ErrorResponse), e.g. documented(**{"404": "unknown match id"});
    ``headers``: {status: OpenAPI headers} of some of them."""
    return {int(code): {"model": ErrorResponse, "description": why,
                        **({"headers": headers[int(code)]} if headers and int(code) in headers else {})}
            for code, why in codes.items()}


# a 503 overloaded (load shedding) and a 429 jobs_queue_full carry it
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again (503: only when overloaded)",
                               "schema": {"type": "integer"}}}


MALFORMED_BODY = documented(**{"400": "the body is not decodable (e.g. not UTF-8)"})
# POST /predict and /predict/batch: a well-formed request can still be refused for the data it asks about, which
# no schema can say (whether a name exists, whether two names are one team, whether a date is after a match)
PREDICT_REFUSALS = documented(**{
    "422": "a well-formed request about data the server does not have: unknown_team (with the closest names), "
           "unknown_division (with the divisions with data), same_team, kickoff_not_after_latest_match, "
           "markets_unavailable (markets: true for a division the goals model has no fit for) (with index: the "
           "offending match of a batch); or an invalid request: wrong types, extra fields, strings too long or "
           "blank, a date that is not YYYY-MM-DD, an empty or oversized batch, markets not a boolean"})


def error_response(status: int, reason: str, message: str, **extra) -> JSONResponse:
    """A rejected request's answer (counted by reason)."""
    VALIDATION_ERRORS.labels(reason=reason).inc()
    return JSONResponse({"error": reason, "message": message, **extra}, status_code=status)


def unknown_job(job_id: str, why: str = "no such job (or it has expired)") -> JSONResponse:
    return JSONResponse({"error": "unknown_job", "message": f"job {job_id[:64]!r}: {why}", "job_id": job_id[:64]},
                        status_code=404)


def describe_validation_errors(raw_errors) -> tuple[str, str, list[dict]]:
    """(reason, message, errors) of pydantic/FastAPI validation errors, never echoing the input (it may be huge):
    location, type and message say what is wrong."""
    errors = [{"loc": list(e.get("loc", ())), "type": e.get("type"), "msg": e.get("msg")} for e in raw_errors]
    reason = errors[0]["type"] if errors else "invalid"
    message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
    return str(reason), message, errors


# --- exception handlers (the fast path awaits on_request_error and on_not_ready itself) ----------------------

async def on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    reason, message, errors = describe_validation_errors(exc.errors())
    return error_response(422, reason, message, errors=errors[:20])


async def on_jobs_unavailable(_: Request, exc: redis.RedisError) -> JSONResponse:
    logger.error("jobs store unavailable: %s", exc)
    return JSONResponse({"error": "jobs_unavailable", "message": f"the jobs store (Redis) is unavailable: "
                         f"{type(exc).__name__}"}, status_code=503)


async def on_request_error(_: Request | None, exc: RequestError) -> JSONResponse:
    VALIDATION_ERRORS.labels(reason=exc.reason).inc()
    return JSONResponse(exc.detail, status_code=exc.status)


async def on_not_ready(_: Request | None, exc: NotReady) -> JSONResponse:
    return JSONResponse({"error": "not_ready", "message": str(exc)}, status_code=503)


def overloaded_body(limit: int, retry_after_s: int) -> bytes:
    """The body of a shed request's 503 (shedding.ShedLoad sends it prebuilt, with Retry-After)."""
    return json.dumps({"error": "overloaded", "message": f"the service is at capacity ({limit} requests in flight in "
                       f"this worker); retry after {retry_after_s} s", "retry_after_s": retry_after_s},
                      separators=(",", ":")).encode()


async def on_http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own errors (an undecodable body, no such route, wrong method) in our error shape
    instead of {"detail": ...}; headers such as Allow are kept."""
    reason = HTTP_REASONS.get(exc.status_code, "http_error")
    if exc.status_code == 400:
        VALIDATION_ERRORS.labels(reason=reason).inc()
    return JSONResponse({"error": reason, "message": str(exc.detail)}, status_code=exc.status_code,
                        headers=exc.headers)


async def on_internal_error(_: Request, exc: Exception) -> JSONResponse:
    """An unhandled exception: a JSON 500 instead of Starlette's text/plain one (the exception is still raised on
    to the server, which logs it)."""
    return JSONResponse({"error": "internal_error", "message": f"internal error ({type(exc).__name__}); see the "
                         "server log"}, status_code=500)


# --- every path answered by our app (see the module docstring) --------------------------------------------------

def _others(scope, app: FastAPI):
    """The routes of the router that routed the request first (BentoML's app: ``scope["router"]``, which a
    mounted router leaves as it is), but for the one mounting ``app``; none when ``app`` is the outermost app."""
    router = scope.get("router")
    if router is None or router is app.router:
        return ()
    return [r for r in router.routes if app not in (getattr(r, "_base_app", None), getattr(r, "app", None))]


class Unrouted(BaseRoute):
    """Claims, for our app, the HTTP requests that no route of the app mounting it (BentoML's) serves, so that
    BentoML's passive mount hands them to our app; inside our app it matches nothing (our routes, their 405s, the
    trailing-slash redirects and the router's ``default`` decide). Where it sits among our routes does not
    matter: the mount takes the first route that claims a request, and this one claims only what no route of
    BentoML's app would serve (its /docs.json, index page and static files keep theirs)."""

    def __init__(self, app: FastAPI):
        self.owner = app

    def matches(self, scope):
        if scope["type"] != "http" or scope.get("app") is self.owner:
            return Match.NONE, {}
        others = _others(scope, self.owner)
        if any(route.matches(scope)[0] is Match.FULL for route in others):
            return Match.NONE, {}
        path = scope["path"]
        if path != "/" and path.endswith("/"):   # BentoML's app redirects /livez/ to /livez: leave it that
            stripped = {**scope, "path": path.rstrip("/")}
            if any(route.matches(stripped)[0] is not Match.NONE for route in others):
                return Match.NONE, {}
        return Match.FULL, {}

    def url_path_for(self, name: str, /, **path_params):
        raise NoMatchFound(name, path_params)

    async def handle(self, scope, receive, send):   # never chosen by our router (it matches nothing there)
        raise StarletteHTTPException(404)


def no_route(app: FastAPI):
    """Our router's answer when no route of ours matches: 405 (with ``Allow``) if the path is one of BentoML's
    own routes with another method, else 404; raised, so that ``on_http_error`` answers it in our shape."""
    not_found = app.router.not_found

    async def default(scope, receive, send):
        if scope["type"] == "http":
            allowed = set()
            for route in _others(scope, app):
                if route.matches(scope)[0] is Match.PARTIAL:
                    allowed |= getattr(route, "methods", None) or set()
            if allowed:
                raise StarletteHTTPException(405, headers={"Allow": ", ".join(sorted(allowed))})
        await not_found(scope, receive, send)   # raises a 404 HTTPException (a websocket is closed)

    return default


def install(app: FastAPI) -> None:
    """The handlers above, on ``app``; every request BentoML's app does not serve itself is routed to ``app``."""
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(redis.RedisError, on_jobs_unavailable)
    app.add_exception_handler(RequestError, on_request_error)
    app.add_exception_handler(NotReady, on_not_ready)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_internal_error)
    app.router.routes.append(Unrouted(app))
    app.router.default = no_route(app)


__all__ = ["MALFORMED_BODY", "PREDICT_REFUSALS", "RETRY_AFTER", "VALIDATION_ERRORS", "NotReady", "Unrouted",
           "describe_validation_errors", "documented", "error_response", "install", "on_not_ready", "on_request_error",
           "overloaded_body", "unknown_job"]
