"""Where the time of one request goes: the service's whole ASGI app (BentoML's middlewares, FastAPI, our routes)
driven in-process, without sockets, under cProfile.

    python bench/profile_request.py --home /path/to/TIME2BET_HOME [--route predict|batch] [--requests 2000]
    python bench/serve.py --profile --home ...          # the same

It loads the service like ``bentoml serve`` does (``Time2BetService.to_asgi()``, lifespan startup, waits for
/readyz), sends ``--requests`` POST /predict (or ``--batch-requests`` POST /predict/batch of ``--batch-rows``)
one after the other through the ASGI interface, and prints the wall time per request, the share of the time by
package (BentoML, OpenTelemetry, FastAPI, pydantic, sklearn, xgboost, ...: cumulative time of the entry points
of each, so shares overlap) and the top functions by own time. Without ``--home`` it builds a sample platform.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GROUPS = {   # path fragment -> label (the first match of a frame's file wins)
    "/_bentoml_impl/": "bentoml", "/_bentoml_sdk/": "bentoml", "/bentoml/": "bentoml",
    "/opentelemetry/": "opentelemetry", "/fastapi/": "fastapi", "/starlette/": "starlette",
    "/pydantic/": "pydantic", "/pydantic_core/": "pydantic", "/sklearn/": "sklearn", "/xgboost/": "xgboost",
    "/pandas/": "pandas", "/numpy/": "numpy", "/prometheus_client/": "prometheus_client",
    "/logging/": "logging", "/anyio/": "anyio (thread pool)", "/concurrent/": "thread pool",
    "/bento_service/": "bento_service (ours)", "/time2bet/": "time2bet (ours)", "/orjson": "orjson",
}


def group_of(filename: str) -> str | None:
    for fragment, label in GROUPS.items():
        if fragment in filename:
            return label
    return None


class Client:
    """Minimal ASGI client: one HTTP request through the app, the whole response collected."""

    def __init__(self, app):
        self.app = app

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
                 "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
                 "root_path": "", "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                                              (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 3000), "state": {}}
        sent = False

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)   # the app only asks again to detect a disconnect
            return {"type": "http.disconnect"}

        status, chunks = 0, []

        async def send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def send_all(client: Client, bodies: list[bytes], n: int, concurrency: int) -> None:
    """n POST /predict, ``concurrency`` in flight at a time (1: one after the other; 64: as under saturation,
    where the micro-batcher coalesces the model calls)."""
    for start in range(0, n, concurrency):
        results = await asyncio.gather(*[client.request("POST", "/predict", bodies[i % len(bodies)])
                                         for i in range(start, min(n, start + concurrency))])
        bad = [r for r in results if r[0] != 200]
        assert not bad, bad[0][1][:300]


async def lifespan(app, events: asyncio.Queue, done: asyncio.Event):
    async def receive():
        return await events.get()

    async def send(message):
        if message["type"].endswith(".complete") or message["type"].endswith(".failed"):
            done.set()

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)


def report(profile: cProfile.Profile, wall_s: float, n: int, label: str, top: int) -> None:
    stats = pstats.Stats(profile)
    total = stats.total_tt or 1e-9
    own = defaultdict(float)
    for (filename, _, _), (_, _, tt, _, _) in stats.stats.items():
        own[group_of(filename) or ("python stdlib / asyncio" if "/lib/python3" in filename else
                                   "C builtins (dict, bytes, numpy, locks, ...)" if filename == "~" else "other")] += tt
    print(f"\n== {label}: {n} requests, {wall_s / n * 1e3:.3f} ms wall per request "
          f"({total / n * 1e3:.3f} ms profiled CPU per request, profiler overhead included)")
    print("own time by package (where the CPU goes):")
    for name, tt in sorted(own.items(), key=lambda kv: -kv[1]):
        print(f"  {tt / total * 100:5.1f}%  {tt / n * 1e6:9.1f} us/request  {name}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    print("top functions by own time:")
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def ledger_cost(fixtures: list[dict], n: int) -> None:
    """What the prediction ledger costs per single-row request: the request path's hand-over, and the flush
    thread's work (records built, serialized, hash-chained, written, fsynced), both run here on this thread with
    the same snapshot and model as the service (the flush thread is invisible to cProfile in the service)."""
    import baseline_app

    from bento_service import scoring
    from bento_service.ledger import ServiceLedger
    from time2bet.ledger import LedgerWriter

    if not baseline_app.STATE:
        baseline_app.load()
    st = baseline_app.STATE
    answers = [scoring.score(st["models"], st["snapshot"], [baseline_app.MatchRequest(**fixtures[i % len(fixtures)])],
                             0.0) for i in range(n)]
    with tempfile.TemporaryDirectory() as folder:
        ledger = ServiceLedger(LedgerWriter(folder, "profile", autostart=False, max_buffered=n + 1))
        start = time.perf_counter()
        for scored in answers:
            ledger.record(scored, "service:/predict")
        handed = time.perf_counter() - start
        start = time.perf_counter()
        ledger.writer.flush()
        flushed = time.perf_counter() - start
        ledger.close()
    print(f"ledger per single-row request: {handed / n * 1e6:.1f} us on the request path, "
          f"{flushed / n * 1e6:.1f} us in the flush thread (one flush of {n} records, fsync included)")


async def profile(args) -> None:
    from bento_service.service import Time2BetService

    app = Time2BetService.to_asgi()
    events, started = asyncio.Queue(), asyncio.Event()
    await events.put({"type": "lifespan.startup"})
    life = asyncio.create_task(lifespan(app, events, started))
    await asyncio.wait_for(started.wait(), timeout=120)
    client = Client(app)
    deadline = time.monotonic() + 180
    while (await client.request("GET", "/readyz"))[0] != 200:
        if time.monotonic() > deadline:
            raise RuntimeError("the service did not get ready in 180 s")
        await asyncio.sleep(0.2)
    status, body = await client.request("GET", "/matches")
    matches = json.loads(body)["matches"]
    fixtures = [{"home_team": m["home_team"], "away_team": m["away_team"], "division": m["division"],
                 "kickoff_date": m["match_date"]} for m in matches]
    bodies = [json.dumps(f).encode() for f in fixtures]
    for b in bodies:   # warm: every fixture once (feature rows cached, model warmed)
        status, out = await client.request("POST", "/predict", b)
        assert status == 200, out[:500]

    if args.route in ("predict", "both") and args.compare:
        # unprofiled first: the service against the bare baseline app (bench/baseline_app.py), same process,
        # same requests, one after the other (no batching): the difference is the framework's cost per request
        sys.path.insert(0, str(REPO / "bench"))
        import baseline_app

        baseline_app.load()
        bare = Client(baseline_app.app)
        for label, c in (("service", client), ("bare baseline", bare), ("service", client), ("bare baseline", bare)):
            n = min(args.requests, 1000)
            start = time.perf_counter()
            await send_all(c, bodies, n, args.concurrency)
            print(f"unprofiled POST /predict, {label:>13}: {(time.perf_counter() - start) / n * 1e3:.3f} ms per request"
                  f" ({args.concurrency} at a time)")
        model = baseline_app.STATE["models"].champion
        x = baseline_app.STATE["snapshot"].feature_matrix(
            baseline_app.STATE["snapshot"].resolve_many([baseline_app.MatchRequest(**fixtures[0])]))
        start = time.perf_counter()
        for _ in range(200):
            model.predict_matrix(x)
        print(f"of which the model call for one row (predict_proba): "
              f"{(time.perf_counter() - start) / 200 * 1e3:.3f} ms")
    if args.route in ("predict", "both") and args.compare:
        ledger_cost(fixtures, min(args.requests, 2000))
    if args.route in ("predict", "both"):
        prof = cProfile.Profile()
        start = time.perf_counter()
        prof.enable()
        await send_all(client, bodies, args.requests, args.concurrency)
        prof.disable()
        report(prof, time.perf_counter() - start, args.requests,
               f"POST /predict, {args.concurrency} at a time", args.top)
        if args.callers:
            for name in args.callers:
                pstats.Stats(prof).sort_stats("tottime").print_callers(name)
    if args.route in ("batch", "both"):
        sys.path.insert(0, str(REPO / "bench"))
        from serve import batch_body

        body = batch_body(fixtures, args.batch_rows)
        status, out = await client.request("POST", "/predict/batch", body)
        assert status == 200, out[:500]
    if args.route in ("batch", "both") and args.compare:
        import baseline_app

        if not baseline_app.STATE:
            baseline_app.load()
        bare = Client(baseline_app.app)
        for label, c in (("service", client), ("bare baseline", bare), ("service", client), ("bare baseline", bare)):
            start = time.perf_counter()
            for _ in range(args.batch_requests):
                status, out = await c.request("POST", "/predict/batch", body)
            assert status == 200, out[:300]
            per = (time.perf_counter() - start) / args.batch_requests
            print(f"unprofiled POST /predict/batch of {args.batch_rows}, {label:>13}: {per * 1e3:.1f} ms per request "
                  f"({args.batch_rows / per:.0f} rows/s)")
        # the parts, in this thread (the service runs them on a worker thread, which cProfile does not see)
        from bento_service import scoring
        from bento_service.schemas import BatchRequest, MatchColumns

        st = baseline_app.STATE
        parts = {}
        start = time.perf_counter()
        BatchRequest.model_validate_json(body)
        parts["(pydantic validation, not used)"] = time.perf_counter() - start
        start = time.perf_counter()
        matches = MatchColumns.from_batch_json(body)
        parts["parse and validate (columns)"] = time.perf_counter() - start
        start = time.perf_counter()
        fixtures_ = st["snapshot"].resolve_many(matches)
        parts["resolve names and dates"] = time.perf_counter() - start
        start = time.perf_counter()
        x = st["snapshot"].feature_matrix(fixtures_)
        parts["feature rows"] = time.perf_counter() - start
        start = time.perf_counter()
        st["models"].champion.predict_matrix(x)
        parts["model (predict_proba)"] = time.perf_counter() - start
        scored = scoring.score(st["models"], st["snapshot"], matches, 0.0)
        start = time.perf_counter()
        scored.predictions_json()
        parts["response JSON"] = time.perf_counter() - start
        for name, t in parts.items():
            print(f"  {name:>28}: {t * 1e3:7.1f} ms")
    if args.route in ("batch", "both"):
        prof = cProfile.Profile()
        start = time.perf_counter()
        prof.enable()
        for _ in range(args.batch_requests):
            await client.request("POST", "/predict/batch", body)
        prof.disable()
        report(prof, time.perf_counter() - start, args.batch_requests,
               f"POST /predict/batch of {args.batch_rows} rows", args.top)
    await events.put({"type": "lifespan.shutdown"})
    try:
        await asyncio.wait_for(life, timeout=20)
    except (TimeoutError, asyncio.CancelledError):
        pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", help="TIME2BET_HOME of an existing platform (default: build a sample platform)")
    p.add_argument("--route", choices=("predict", "batch", "both"), default="both")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=1, help="POST /predict in flight at a time (1)")
    p.add_argument("--batch-rows", type=int, default=10_000)
    p.add_argument("--batch-requests", type=int, default=5)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--callers", nargs="*", help="also print who calls functions matching these names")
    p.add_argument("--no-compare", dest="compare", action="store_false",
                   help="profile only (no unprofiled comparison with bench/baseline_app.py, e.g. for an old checkout)")
    args = p.parse_args(argv)
    from time2bet.cli.sample_platform import build_platform, env_for_home

    work = Path(tempfile.mkdtemp(prefix="time2bet-profile-"))
    env = env_for_home(Path(args.home)) if args.home else build_platform(work)
    os.environ.update(env)
    os.environ.setdefault("BENTOML_HOME", str(work / "bentoml_home"))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
    os.environ["TIME2BET_JOBS_PREFIX"] = f"time2bet:profile:{os.getpid()}:jobs:"
    prom = work / "prometheus"
    prom.mkdir(exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom)   # before prometheus_client is imported (STACK_NOTES)
    try:
        import uvloop
        uvloop.install()   # as under bentoml serve
    except ImportError:
        pass
    asyncio.run(profile(args))
    os._exit(0)   # the service's daemon threads (model watcher, jobs worker) are not ours to join


if __name__ == "__main__":
    sys.exit(main())
