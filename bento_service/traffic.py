"""BentoML's traffic-timeout middleware, with its timer cancelled when the request ends (``install()``).

BentoML 1.4.40's ``TimeoutMiddleware`` (``bentoml._internal.server.http.traffic``) schedules a timer per request
and never cancels it, so every request's timer, future and closures stay alive for the whole timeout (60 s
here): ~1M objects at 3,000 requests/s. Each full garbage collection walks them all; under load those pauses
grew to 300 ms (measured: gc callbacks in the worker, bench/serve.py's saturation p99 of 100-300 ms against
~20 ms for the bare app). The service config cannot switch the middleware off (``traffic.timeout`` must be > 0),
and it is a real safeguard, so this is the same middleware with the timer cancelled, and with the request's
own end (say an error before any response) ending the wait instead of the timeout. BentoML builds its
middleware list when the app is created, from this module attribute, so ``install()`` must run before that
(service.py calls it at import).
"""

from __future__ import annotations

import asyncio

from bentoml._internal.server.http import traffic
from starlette.responses import JSONResponse

_ORIGINAL = traffic.TimeoutMiddleware


class CancellingTimeoutMiddleware(_ORIGINAL):
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def _send(message) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        fut = asyncio.ensure_future(self.app(scope, receive, _send))
        fut.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
        try:
            await waiter
        except TimeoutError:
            if fut.cancel():
                response = JSONResponse({"error": f"Not able to process the request in {self.timeout} seconds"},
                                        status_code=504)
                await response(scope, receive, send)
        else:
            await fut
        finally:
            timer.cancel()


def install() -> None:
    """Make BentoML build its apps with :class:`CancellingTimeoutMiddleware` (idempotent)."""
    traffic.TimeoutMiddleware = CancellingTimeoutMiddleware
