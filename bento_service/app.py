"""The FastAPI app the service's routes are declared on (service.py mounts it with ``bentoml.asgi_app``).

Its own module so that it is complete (error handlers, the request-observing middleware, the service lookup)
before service.py declares routes on it, and so that errors.py and metrics.py need not know about it. BentoML's
``@bentoml.api`` is POST-only and has no path parameters, hence a FastAPI app for GET routes,
``/predict/{match_id}`` and JSON error bodies.
"""

from __future__ import annotations

import bentoml
from fastapi import FastAPI

from bento_service import errors
from bento_service.metrics import ObserveRequests

# every route: what the middleware, validation and readiness can answer (routes add their own 400/404/409)
app = FastAPI(title="Time2Bet match-outcome forecasts", responses=errors.documented(**{
    "413": "request body over the size limit",
    "422": "invalid request: unknown team (with the closest names), unknown division, same team twice, "
           "malformed date, wrong types, extra fields, strings too long, empty or oversized batch",
    "503": "the model and the serving snapshot are still loading (or the jobs store is unavailable)"}))
errors.install(app)
app.add_middleware(ObserveRequests)


async def _current_service():
    """BentoML hands each route its service instance through a *sync* dependency, which FastAPI runs on the
    thread pool: a thread hop per request for reading a global. The same lookup, awaited on the event loop."""
    return bentoml.get_current_service()


app.dependency_overrides[bentoml.get_current_service] = _current_service

__all__ = ["app"]
