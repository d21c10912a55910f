"""bento_service.traffic: BentoML's traffic timeout with its per-request timer cancelled (driven in-process)."""

from __future__ import annotations

import asyncio

import pytest

from bento_service.traffic import CancellingTimeoutMiddleware


async def _call(app) -> tuple[list[dict], list[asyncio.TimerHandle]]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await app(scope, receive, send)
    live = [h for h in asyncio.get_running_loop()._scheduled if not h.cancelled()]
    return sent, live


async def _ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_no_timer_outlives_its_request():
    async def run():
        app = CancellingTimeoutMiddleware(_ok, timeout=60)
        for _ in range(200):
            sent, live = await _call(app)
            assert sent[0]["status"] == 200
        return live

    assert asyncio.run(run()) == []   # BentoML's own middleware leaves 200 timers of 60 s here


def test_a_slow_request_still_times_out():
    async def slow(scope, receive, send):
        await asyncio.sleep(5)

    sent, _ = asyncio.run(_call(CancellingTimeoutMiddleware(slow, timeout=0.05)))
    assert sent[0]["status"] == 504


def test_an_error_before_the_response_is_raised_at_once_not_after_the_timeout():
    async def broken(scope, receive, send):
        raise RuntimeError("boom")

    async def run():
        return await asyncio.wait_for(_call(CancellingTimeoutMiddleware(broken, timeout=60)), timeout=5)

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(run())


def test_the_service_installs_it():
    from bentoml._internal.server.http import traffic

    import bento_service.service  # noqa: F401 - installs at import

    assert traffic.TimeoutMiddleware is CancellingTimeoutMiddleware
