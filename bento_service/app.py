"""The FastAPI app the service's routes are declared on (service.py mounts it with ``bentoml.asgi_app``).

Its own module so that it is complete (error handlers, the request-observing middleware, the service lookup)
before service.py declares routes on it, and so that errors.py and metrics.py need not know about it. BentoML's
``@bentoml.api`` is POST-only and has no path parameters, hence a FastAPI app for GET routes,
``/predict/{match_id}`` and JSON error bodies.
"""

from __future__ import annotations

from pathlib import Path

import bentoml
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from bento_service import errors
from bento_service.metrics import ObserveRequests

# every route: what the middleware, validation and readiness can answer (routes add their own 400/404/409)
app = FastAPI(title="Time2Bet match-outcome forecasts", responses=errors.documented(**{
    "413": "request body over the size limit",
    "422": "invalid request: unknown team (with the closest names), unknown division, same team twice, "
           "malformed date, wrong types, extra fields, strings too long, empty or oversized batch",
    "503": "not_ready: the model and the serving snapshot are still loading; jobs_unavailable: the jobs store is "
           "unavailable; overloaded: the worker has TIME2BET_MAX_IN_FLIGHT requests in flight already (load "
           "shedding), retry after Retry-After seconds; no_goals_model: markets: true asked of POST /predict or "
           "/predict/batch while the goals model has no champion (ask without markets for the 1X2)"},
    headers={503: errors.RETRY_AFTER}),
    docs_url=None, redoc_url=None)   # FastAPI's pages load Swagger UI / ReDoc from a CDN: /docs is served below
errors.install(app)
app.add_middleware(ObserveRequests)

# /docs works offline and sends no visitor to a third party: Swagger UI's files (5.x, renders OpenAPI 3.1) as the
# installed BentoML ships them for its own index page, served from here. No /redoc (ReDoc is CDN-only).
SWAGGER_UI_DIR = Path(bentoml.__file__).parent / "_internal" / "server" / "static_content"
DOCS_ASSETS = "/docs/assets"
app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")


@app.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(openapi_url=root + app.openapi_url, title=f"{app.title} - API docs",
                               swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
                               swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
                               swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon-light-32x32.png")


async def _current_service():
    """BentoML hands each route its service instance through a *sync* dependency, which FastAPI runs on the
    thread pool: a thread hop per request for reading a global. The same lookup, awaited on the event loop."""
    return bentoml.get_current_service()


app.dependency_overrides[bentoml.get_current_service] = _current_service

__all__ = ["app"]
