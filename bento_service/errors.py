"""The service's error mapping: every error answer is a JSON object ``{"error": reason, "message": ..., ...}``.

In one place so that the FastAPI routes, the exception handlers, the request-observing middleware (413) and the
fast path (which answers RequestError and NotReady itself) all give the same bodies, and so that the OpenAPI
schema documents them (``documented``: ErrorResponse). ``install(app)`` puts the handlers on the FastAPI app:
FastAPI's and Starlette's own errors (validation, undecodable body, no route, wrong method) come out in the same
shape instead of ``{"detail": ...}``.

The bottom of the package's serving modules (it imports none of them but schemas and snapshot), which is why the
rejected-requests counter, ``time2bet_validation_errors_total``, lives here and not with the other metrics.
"""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from starlette.exceptions import HTTPException as StarletteHTTPException

from bento_service.schemas import ErrorResponse
from bento_service.snapshot import RequestError

logger = logging.getLogger("time2bet.serving")

VALIDATION_ERRORS = Counter("time2bet_validation_errors_total", "rejected requests", ["reason"])
HTTP_REASONS = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}


class NotReady(Exception):
    """The model or the serving snapshot is not loaded (yet, or it failed): 503."""


def documented(**codes: str) -> dict:
    """OpenAPI `responses` of error bodies (ErrorResponse), e.g. documented(**{"404": "unknown match id"})."""
    return {int(code): {"model": ErrorResponse, "description": why} for code, why in codes.items()}


MALFORMED_BODY = documented(**{"400": "the body is not decodable (e.g. not UTF-8)"})


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


async def on_http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own errors (an undecodable body, no such route, wrong method) in our error shape
    instead of {"detail": ...}; headers such as Allow are kept."""
    reason = HTTP_REASONS.get(exc.status_code, "http_error")
    if exc.status_code == 400:
        VALIDATION_ERRORS.labels(reason=reason).inc()
    return JSONResponse({"error": reason, "message": str(exc.detail)}, status_code=exc.status_code,
                        headers=exc.headers)


def install(app: FastAPI) -> None:
    """The handlers above, on ``app``."""
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(redis.RedisError, on_jobs_unavailable)
    app.add_exception_handler(RequestError, on_request_error)
    app.add_exception_handler(NotReady, on_not_ready)
    app.add_exception_handler(StarletteHTTPException, on_http_error)


__all__ = ["MALFORMED_BODY", "VALIDATION_ERRORS", "NotReady", "describe_validation_errors", "documented",
           "error_response", "install", "on_not_ready", "on_request_error", "unknown_job"]
