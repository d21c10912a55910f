"""Load shedding: past TIME2BET_MAX_IN_FLIGHT requests in flight, a request is answered 503 at once (``ShedLoad``).

Without it, past capacity every request is taken and queued: each waits behind all the others, so at 512
connections answers took 130-240 ms and clients timed out (``bench/serve.py``'s overload phase). With a bound on
the requests in flight, the accepted ones stay within the latency the service has at that concurrency and the rest
are told at once to come back (503 ``{"error": "overloaded", ...}`` with ``Retry-After``), which a client, a load
balancer or a retrying proxy can act on, instead of a time-out.

Why a middleware of our own rather than what BentoML or uvicorn offer (checked in BentoML 1.4.40, uvicorn 0.54):

- BentoML's ``traffic.max_concurrency`` (``bentoml._internal.server.http.traffic.MaxConcurrencyMiddleware``)
  answers **429** ``{"error": "Too many requests"}``: not the service's error shape, no ``Retry-After``, and ahead
  of our middlewares, so the answer is counted by no metric of ours; a 429 also tells the client *it* sent too
  much, where the service is the one out of capacity (503). Replacing that class (as traffic.py does for the
  timeout) would tie the answer to a private module for no gain: this middleware sits at the same place in the
  chain (right inside BentoML's traffic-timeout and tracing middlewares), through the documented
  ``add_asgi_middleware``. (Shedding ahead of all of BentoML's middlewares, tried by wrapping its app, made a
  shed answer cheaper, but clients that retry at once then only retried faster: no better for the accepted.)
- uvicorn's ``limit_concurrency`` counts *connections* as well as tasks, so 512 idle keep-alive connections would
  trip it with nothing in flight; it answers ``text/plain`` with ``Connection: close``, and BentoML passes no
  such option to the uvicorn it runs.

What counts: every HTTP request of the worker (prediction routes, GET routes, jobs, docs) from the moment it
enters this middleware until the app returns, except the probes and the scrape, /livez, /healthz, /readyz and
/metrics, which are never counted nor shed, so that orchestration and Prometheus keep working under overload (the
paths BentoML's own limiter exempts). The count is per worker process (one event loop, so a plain integer).
A shed request costs a dictionary look-up, the prebuilt answer and its metrics: ``time2bet_requests_shed_total``
{route} and the route's ``time2bet_requests_total`` (status 5xx) and ``time2bet_request_seconds``, with the
route's template as label (the prediction routes by path; any other by matching the FastAPI app's routes, only
when shedding). Its body is never read (uvicorn drops it and keeps the connection).

The default limit, 64 (TIME2BET_MAX_IN_FLIGHT, time2bet/settings.py), measured with bench/serve.py: one worker
reaches its full throughput well below 64 requests in flight, so more in flight only adds waiting (Little's
law); and 64 clients, the benchmark's saturation load, never exceed it, since a keep-alive client has one request
in flight at most. Shedding bounds latency for clients that wait out ``Retry-After``; a client that sends again
at once turns each 503 into another request, and a shed answer costs about half a served one (~0.1 ms: uvicorn,
BentoML's middlewares, the answer), so against hundreds of such clients the worker's time goes to answering
503s and no limit keeps the answers fast.

What the count sees. A single POST /predict runs from this middleware to its answer without yielding to the event
loop, so it is "in flight" here only while it runs: requests that uvicorn has read in the same pass of the loop
wait behind it uncounted, and the count alone rarely reached the limit at 512 connections. So the requests taken
on in the current pass count too: at most ``max_in_flight`` of them per pass, the rest are shed. A closed-loop
client has one request per pass at most, so 64 clients are never shed by it. Measured on the full dev mirror
(bench/serve.py --workload real, with and without it on the same day): overload accepted p99 59 ms (61 without),
shed p99 39 ms (41), the 512-clients-at-once burst's accepted p99 54 ms (77); saturation throughput with it 1.08x
the one without (ABBA rounds, same run: noise): a small gain at no cost. What remains is the pass itself: a shed
answer waits for the pass under way.

``max_running`` (TIME2BET_MAX_RUNNING, default 0: off) shortens the passes. With ``max_running`` = k > 0, at most k
admitted requests run at once and the others wait in this middleware, in order, counted in flight: each pass runs at
most k requests, so a new request is read, and shed, within a few ms. The price is throughput: the loop makes more,
smaller passes (more system calls and wake-ups per request, on the client too). Measured on the full dev mirror
(bench/serve.py --workload real, k against off in the same run, ABBA): k = 8: shed p99 9-10 ms, accepted p99 60-81
ms, 28% fewer requests/s at 64 connections; k = 16: shed p99 13 ms, 17% fewer; k = 64 costs nothing and changes
nothing. So it is off by default (throughput first); a latency-first deployment sets k and a lower
TIME2BET_MAX_IN_FLIGHT (accepted latency is about max_in_flight times a request's cost).
"""

from __future__ import annotations

import asyncio
import time

from starlette.routing import Match

from bento_service.errors import overloaded_body
from bento_service.metrics import count_shed

# never counted nor shed: liveness, readiness, the Prometheus scrape (BentoML's MaxConcurrencyMiddleware.BYPASS_PATHS)
EXEMPT_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})
RETRY_AFTER_S = 1   # a second: at capacity an accepted request takes tens of ms, so the backlog is gone by then


class ShedLoad:
    """ASGI middleware: at most ``max_in_flight`` requests in flight in this worker, and taken on in one pass of its
    event loop (0: no limit); past it, a 503 ``overloaded`` JSON answer with ``Retry-After`` (see the module
    docstring). ``routes``: the FastAPI app whose route templates label shed requests in the metrics; ``fixed``:
    {(method, path): template} looked up before them (the prediction routes); ``max_running``: at most that many
    admitted requests run at once, the others wait their turn in order (0: every admitted request runs when the
    loop reaches it)."""

    def __init__(self, app, max_in_flight: int, routes=None, fixed: dict[tuple[str, str], str] | None = None,
                 retry_after_s: int = RETRY_AFTER_S, max_running: int = 0):
        self.app = app
        self.limit = max_in_flight
        self.in_flight = 0
        self.this_pass = 0          # requests taken on in the event loop's current pass (see the module docstring)
        self.pass_marked = False    # a callback that starts the next pass's count is scheduled
        self.running = asyncio.Semaphore(max_running) if max_running > 0 else None   # FIFO: 3.11 wakes in order
        self.routes = routes
        self.fixed = fixed or {}
        self.body = overloaded_body(max_in_flight, retry_after_s)
        self.headers = ((b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode()),
                        (b"retry-after", str(retry_after_s).encode()))

    async def __call__(self, scope, receive, send):
        if self.limit <= 0 or scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            return await self.app(scope, receive, send)
        if self.in_flight >= self.limit or self.this_pass >= self.limit:
            return await self.shed(scope, send)
        if not self.pass_marked:   # runs after everything already queued in this pass: the next pass counts anew
            self.pass_marked = True
            asyncio.get_running_loop().call_soon(self._next_pass)
        self.this_pass += 1
        self.in_flight += 1
        try:
            if self.running is None:
                await self.app(scope, receive, send)
            else:
                async with self.running:
                    await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _next_pass(self) -> None:
        self.this_pass, self.pass_marked = 0, False

    async def shed(self, scope, send) -> None:
        start = time.perf_counter()
        try:
            # fresh messages: a middleware on the way out may add headers in place (OpenTelemetry's propagator)
            await send({"type": "http.response.start", "status": 503, "headers": list(self.headers)})
            await send({"type": "http.response.body", "body": self.body, "more_body": False})
        finally:
            count_shed(self.template(scope), time.perf_counter() - start)

    def template(self, scope) -> str:
        """The route template of a request (the metrics' route label), "other" if none of ours matches."""
        template = self.fixed.get((scope["method"], scope["path"]))
        if template is not None:
            return template
        for route in _routes(self.routes):
            path = getattr(route, "path", None)
            if path is not None and route.matches(scope)[0] is Match.FULL:
                return path
        return "other"


def _routes(router):
    """The routes of a router, those of included routers in their place (FastAPI 0.16x keeps an included router
    whole, as one route holding ``original_router``; BentoML includes the service's routes that way)."""
    for route in getattr(router, "routes", ()):
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _routes(included)
        else:
            yield route


__all__ = ["EXEMPT_PATHS", "RETRY_AFTER_S", "ShedLoad"]
