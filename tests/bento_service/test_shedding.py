"""Load shedding (bento_service.shedding.ShedLoad, TIME2BET_MAX_IN_FLIGHT): past the limit a request is answered 503
``overloaded`` (JSON, Retry-After) at once; the probes and /metrics are never shed; shed requests are counted.

In-process against the middleware, then against a real `bentoml serve` with a limit of 2 (one running), saturated
from here with raw keep-alive connections on 127.0.0.1 (bounded in number and time). No timing is asserted: the
machine is shared.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY

from bento_service.shedding import EXEMPT_PATHS, RETRY_AFTER_S, ShedLoad
from time2bet.settings import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RUNNING,
    Settings,
    parse_max_in_flight,
    parse_max_running,
)

# --- in-process ----------------------------------------------------------------------------------------------


def _scope(path: str, method: str = "POST", query: bytes = b"") -> dict:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": [], "query_string": query}


class Held:
    """An app whose requests stay in flight until ``release``; ``calls`` counts the requests it was handed."""

    def __init__(self):
        self.release = asyncio.Event()
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        if scope["path"] not in EXEMPT_PATHS:
            await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _request(app, path: str, method: str = "POST", query: bytes = b"") -> list[dict]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(_scope(path, method, query), receive, send)
    return sent


def _shed_count(route: str) -> float:
    return REGISTRY.get_sample_value("time2bet_requests_shed_total", {"route": route}) or 0.0


def _requests_count(route: str) -> float:
    return REGISTRY.get_sample_value("time2bet_requests_total",
                                     {"route": route, "status": "5xx", "variant": "none"}) or 0.0


def test_past_the_limit_a_request_is_answered_503_overloaded_at_once():
    async def run():
        inner = Held()
        app = ShedLoad(inner, max_in_flight=2, fixed={("POST", "/predict"): "/predict"})
        held = [asyncio.create_task(_request(app, "/predict")) for _ in range(2)]
        await asyncio.sleep(0)   # both now in flight
        assert app.in_flight == 2
        before = (_shed_count("/predict"), _requests_count("/predict"))
        shed = await asyncio.wait_for(_request(app, "/predict"), timeout=5)
        after = (_shed_count("/predict"), _requests_count("/predict"))
        probes = [await asyncio.wait_for(_request(app, path, "GET"), timeout=5) for path in sorted(EXEMPT_PATHS)]
        inner.release.set()
        done = await asyncio.gather(*held)
        again = await _request(app, "/predict")
        return inner, app, shed, before, after, probes, done, again

    inner, app, shed, before, after, probes, done, again = asyncio.run(run())
    start, body = shed
    assert start["status"] == 503
    headers = dict(start["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"retry-after"] == str(RETRY_AFTER_S).encode()
    assert int(headers[b"content-length"]) == len(body["body"])
    answer = json.loads(body["body"])
    assert answer["error"] == "overloaded" and "capacity" in answer["message"]
    assert answer["retry_after_s"] == RETRY_AFTER_S
    assert after == (before[0] + 1, before[1] + 1)   # the shed counter and the route's own request count
    assert [p[0]["status"] for p in probes] == [200] * len(EXEMPT_PATHS)   # never shed, even at the limit
    assert [d[0]["status"] for d in done] == [200, 200] and again[0]["status"] == 200
    assert app.in_flight == 0
    assert inner.calls == 2 + len(EXEMPT_PATHS) + 1   # the shed request never reached the app


class Quick:
    """An app that answers at once, without yielding to the event loop (as POST /predict does)."""

    async def __call__(self, scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def test_requests_taken_on_in_one_pass_of_the_loop_count_against_the_limit():
    """Five requests read in the same pass of the loop, none of which yields: each is in flight only while it runs,
    but the last ones waited behind the first; past the limit (3) they are shed. The next pass counts anew."""
    async def run():
        app = ShedLoad(Quick(), max_in_flight=3)
        same_pass = [asyncio.create_task(_request(app, "/predict")) for _ in range(5)]
        first = [sent[0]["status"] for sent in await asyncio.gather(*same_pass)]
        await asyncio.sleep(0)
        later = [sent[0]["status"] for sent in await asyncio.gather(
            *[asyncio.create_task(_request(app, "/predict")) for _ in range(2)])]
        return first, later, app.in_flight

    first, later, in_flight = asyncio.run(run())
    assert first == [200, 200, 200, 503, 503]
    assert later == [200, 200] and in_flight == 0


def test_a_request_that_fails_leaves_the_count():
    async def run():
        app = ShedLoad(Held(), max_in_flight=1)
        with pytest.raises(RuntimeError, match="boom"):
            await _request(app, "/boom")
        return app.in_flight

    assert asyncio.run(run()) == 0


def test_no_limit_passes_everything():
    async def run():
        inner = Held()
        app = ShedLoad(inner, max_in_flight=0)
        tasks = [asyncio.create_task(_request(app, "/predict")) for _ in range(50)]
        await asyncio.sleep(0)
        inner.release.set()
        return [sent[0]["status"] for sent in await asyncio.gather(*tasks)]

    assert asyncio.run(run()) == [200] * 50


def test_a_shed_request_is_labelled_by_its_route_template():
    routes, included = FastAPI(), APIRouter()

    @included.get("/jobs/{job_id}")   # BentoML includes the service's routes like this (make_fastapi_class_views)
    def job(job_id: str):
        return {}

    @routes.get("/teams")
    def teams():
        return {}

    routes.include_router(included)

    app = ShedLoad(Held(), max_in_flight=1, routes=routes.router, fixed={("POST", "/predict"): "/predict"})
    assert app.template(_scope("/predict")) == "/predict"
    assert app.template(_scope("/jobs/0123abcd", "GET")) == "/jobs/{job_id}"
    assert app.template(_scope("/teams", "GET")) == "/teams"
    assert app.template(_scope("/teams", "DELETE")) == "other"   # no route answers it
    assert app.template(_scope("/nowhere", "GET")) == "other"


class Ordered:
    """An app that records the order its requests start in, each held until ``release``."""

    def __init__(self):
        self.release = asyncio.Event()
        self.started: list[str] = []
        self.running = self.most_running = 0

    async def __call__(self, scope, receive, send):
        self.started.append(scope["query_string"].decode())
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.running -= 1


def test_max_running_makes_admitted_requests_wait_in_order_and_counts_them_in_flight():
    """With max_running, at most that many admitted requests run; the others wait, in arrival order, and count
    against the in-flight limit, so the limit bounds the queue (without it a request that never yields to the loop
    is in flight only while it runs: see bento_service/shedding.py)."""
    async def run():
        inner = Ordered()
        app = ShedLoad(inner, max_in_flight=4, max_running=2, fixed={("POST", "/predict"): "/predict"})

        def request(n: int):
            return _request(app, "/predict", query=str(n).encode())

        tasks = []
        for n in range(4):
            tasks.append(asyncio.create_task(request(n)))
            await asyncio.sleep(0)   # in this order
        await asyncio.sleep(0)
        admitted = (app.in_flight, list(inner.started))
        shed = await asyncio.wait_for(request(4), timeout=5)   # four in flight: two running, two waiting
        inner.release.set()
        done = await asyncio.gather(*tasks)
        return inner, app, admitted, shed, done

    inner, app, admitted, shed, done = asyncio.run(run())
    assert admitted == (4, ["0", "1"])
    assert shed[0]["status"] == 503
    assert [d[0]["status"] for d in done] == [200] * 4
    assert inner.started == ["0", "1", "2", "3"] and inner.most_running == 2
    assert app.in_flight == 0


def test_the_limit_is_one_setting(tmp_path):
    assert Settings.from_env({"TIME2BET_HOME": str(tmp_path)}).max_in_flight == DEFAULT_MAX_IN_FLIGHT > 0
    assert Settings.from_env({"TIME2BET_HOME": str(tmp_path), "TIME2BET_MAX_IN_FLIGHT": "0"}).max_in_flight == 0
    assert parse_max_in_flight(" 8 ") == 8 and parse_max_in_flight("") == DEFAULT_MAX_IN_FLIGHT
    with pytest.raises(ValueError, match="TIME2BET_MAX_IN_FLIGHT"):
        parse_max_in_flight("-1")
    assert Settings.from_env({"TIME2BET_HOME": str(tmp_path)}).max_running == DEFAULT_MAX_RUNNING == 0
    assert Settings.from_env({"TIME2BET_HOME": str(tmp_path), "TIME2BET_MAX_RUNNING": "8"}).max_running == 8
    with pytest.raises(ValueError, match="TIME2BET_MAX_RUNNING"):
        parse_max_running("-2")


def test_the_openapi_schema_documents_the_503():
    from bento_service.service import app

    schema = app.openapi()
    for path, method in (("/predict", "post"), ("/predict/batch", "post"), ("/teams", "get")):
        answer = schema["paths"][path][method]["responses"]["503"]
        assert "overloaded" in answer["description"] and "Retry-After" in answer["headers"]
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


# --- a real `bentoml serve` with a limit of 2 ---------------------------------------------------------------------

LIMIT = 2
BATCH_CONNS = 24        # keep-alive connections each sending POST /predict/batch back to back
TEAMS_CONNS = 4         # and some sending GET /teams (shed ones are labelled by their route template)
BATCH_ROWS = 300
PROBE_ROUNDS = 3        # /livez, /readyz and /metrics, each this many times once shedding has started
LOAD_BOUND_S = 60       # the whole overload (the load stops as soon as the probes are done)
ANSWER_BOUND_S = 30     # any one answer (functional bound, not a latency check)


@pytest.fixture(scope="module")
def small_server(platform_env, start_bento_server):
    # one of the two running at a time: the waiting one counts in flight (max_running), through the real server
    server = start_bento_server({**platform_env, "TIME2BET_MAX_IN_FLIGHT": str(LIMIT), "TIME2BET_MAX_RUNNING": "1"})
    yield server
    server.stop()


def _batch(fixtures: list[dict], rows: int) -> bytes:
    matches = []
    for i in range(rows):   # the fixtures over and over, each round a day later
        f = fixtures[i % len(fixtures)]
        day = dt.date.fromisoformat(f["match_date"]) + dt.timedelta(days=i // len(fixtures))
        matches.append({"home_team": f["home_team"], "away_team": f["away_team"], "division": f["division"],
                        "kickoff_date": day.isoformat()})
    return json.dumps({"matches": matches}).encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    headers = {k.lower(): v for k, v in headers.items()}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), headers, body


class Overload:
    """Keep-alive connections sending requests back to back until ``stop`` (or the bound); every answer kept."""

    def __init__(self, port: int):
        self.port = port
        self.stop = asyncio.Event()
        self.shed_seen = asyncio.Event()
        self.answers: list[tuple[str, int, dict, bytes]] = []   # (route, status, headers, body)

    async def client(self, route: str, request: bytes, deadline: float) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                writer.write(request)
                status, headers, body = await asyncio.wait_for(_answer(reader), ANSWER_BOUND_S)
                self.answers.append((route, status, headers, body))
                if status == 503:
                    self.shed_seen.set()
        finally:
            writer.close()


def test_under_overload_it_sheds_with_json_503_and_the_probes_and_metrics_answer(small_server):
    url = small_server.url
    fixtures = httpx.get(f"{url}/matches", timeout=30).json()["matches"]
    assert fixtures, "the sample platform has no upcoming fixtures"
    body = _batch(fixtures, BATCH_ROWS)
    batch_request = (f"POST /predict/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    teams_request = b"GET /teams HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

    async def run():
        load = Overload(small_server.port)
        deadline = time.monotonic() + LOAD_BOUND_S
        clients = [asyncio.create_task(load.client("/predict/batch", batch_request, deadline))
                   for _ in range(BATCH_CONNS)]
        clients += [asyncio.create_task(load.client("/teams", teams_request, deadline)) for _ in range(TEAMS_CONNS)]
        probes = []
        try:
            await asyncio.wait_for(load.shed_seen.wait(), LOAD_BOUND_S)
            async with httpx.AsyncClient(base_url=url, timeout=ANSWER_BOUND_S) as probe:
                for _ in range(PROBE_ROUNDS):
                    for path in ("/livez", "/readyz", "/metrics"):
                        probes.append((path, (await probe.get(path)).status_code, len(load.answers)))
        finally:
            load.stop.set()
            await asyncio.gather(*clients)
        return load.answers, probes

    answers, probes = asyncio.run(run())
    by_status: dict[tuple[str, int], int] = {}
    for route, status, _, _ in answers:
        by_status[(route, status)] = by_status.get((route, status), 0) + 1
    assert by_status.get(("/predict/batch", 503), 0) > 0, by_status
    assert by_status.get(("/predict/batch", 200), 0) > 0, by_status   # within the limit, requests are served
    assert {status for (_, status) in by_status} <= {200, 503}, by_status
    for _, status, headers, body in answers:
        if status == 503:
            assert headers["content-type"] == "application/json" and headers["retry-after"].isdigit()
            answer = json.loads(body)
            assert answer["error"] == "overloaded" and answer["message"]
    # the probes and the scrape answered while the load went on (answers kept arriving between them)
    assert [(p, s) for p, s, _ in probes] == [(p, 200) for p in ("/livez", "/readyz", "/metrics")] * PROBE_ROUNDS
    assert len(answers) > probes[-1][2] > probes[0][2]

    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    for route in ("/predict/batch", "/teams"):
        shed = by_status.get((route, 503), 0)
        assert _sample(metrics, "time2bet_requests_shed_total", route=route) == shed, route
        assert _sample(metrics, "time2bet_requests_total", route=route, status="5xx", variant="none") == shed
    assert _sample(metrics, "time2bet_requests_shed_total", route="/livez") == 0


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus exposition ``text`` (0 when absent); labels in any order."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return 0.0
