"""Serving benchmark: the BentoML service against the physical floor of its design, on 127.0.0.1.

    python bench/serve.py                       # builds a small sample platform first (~1-2 min), then measures
    python bench/serve.py --home /path/to/TIME2BET_HOME   # an existing platform (warehouse + registry champion)
    python bench/serve.py --profile             # in-process profile of one POST /predict (bench/profile_request.py)

It starts ``bentoml serve bento_service.service:Time2BetService`` (the real service, as ``time2bet serve`` and the
tests start it) and a bare Starlette/uvicorn app (bench/baseline_app.py) serving the same champion with the same
snapshot and scoring code, then drives both with bench/loadgen.py (raw-socket HTTP/1.1 keep-alive client on
uvloop, in its own process, so the generator is never the bottleneck of one server process):

1. saturation: 64 connections, closed loop, ``--duration`` s after ``--warmup`` s: serve_rps, baseline_rps;
2. latency: open loop at ``--rate`` (400) requests/s for ``--duration`` s after warm-up; each latency counts
   from the request's scheduled send time, so a stall cannot hide behind a waiting generator: p50_ms, p99_ms;
3. batch: POST /predict/batch with ``--batch-rows`` (10,000) matches, ``--batch-requests`` times after one
   warm-up request, sequentially: batch_rows_per_s = rows / wall time (client-side, including the transfer).

The last line is ``serve_rps=<r> baseline_rps=<r0> ratio=<r/r0> p50_ms=<a> p99_ms=<b> batch_rows_per_s=<n>``.
Every phase is bounded in time; both servers run in their own process groups and are always killed at the end.
Redis (TIME2BET_REDIS_URL, default redis://127.0.0.1:6379/0) should be up, as for the service itself; the
benchmark's jobs prefix is unique and unused. The machine should be otherwise idle: on a shared 2-core machine
numbers vary by tens of percent between runs, so repeat it (``--runs``) and read the range.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from time2bet.background import Background, free_port  # noqa: E402
from time2bet.cli.demo import service_command  # noqa: E402

READY_TIMEOUT_S = 180


def loadgen(url: str, bodies: Path, mode: str, *, conns: int, rate: float, warmup: float, duration: float) -> dict:
    argv = [sys.executable, str(REPO / "bench" / "loadgen.py"), "--url", url, "--bodies", str(bodies),
            "--mode", mode, "--conns", str(conns), "--rate", str(rate), "--warmup", str(warmup),
            "--duration", str(duration)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=warmup + duration + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fixtures_of(server_url: str) -> list[dict]:
    """Request bodies for the upcoming fixtures the platform holds (GET /matches of the service)."""
    matches = httpx.get(f"{server_url}/matches", timeout=30).json()["matches"]
    if not matches:
        raise RuntimeError("the platform has no upcoming fixtures to ask about")
    return [{"home_team": m["home_team"], "away_team": m["away_team"], "division": m["division"],
             "kickoff_date": m["match_date"]} for m in matches]


def batch_body(fixtures: list[dict], rows: int) -> bytes:
    """``rows`` matches: the fixtures over and over, each round a day later (distinct, valid dates)."""
    matches = []
    for i in range(rows):
        f = fixtures[i % len(fixtures)]
        day = dt.date.fromisoformat(f["kickoff_date"]) + dt.timedelta(days=i // len(fixtures))
        matches.append({**f, "kickoff_date": day.isoformat()})
    return json.dumps({"matches": matches}, separators=(",", ":")).encode()


def measure_batch(url: str, body: bytes, rows: int, requests: int) -> dict:
    """Sequential POST /predict/batch on one keep-alive connection of the standard library's HTTP client: httpx
    spent ~8 ms of client time per 4 MB response here, which would have been counted against the service."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"content-type": "application/json"}

    def post() -> bytes:
        conn.request("POST", "/predict/batch", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"batch request failed: {response.status} {data[:500]!r}")
        return data

    try:
        if len(json.loads(post())["predictions"]) != rows:
            raise RuntimeError("batch request: wrong number of predictions")
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            post()
            times.append(time.perf_counter() - start)
    finally:
        conn.close()
    return {"rows_per_s": rows * requests / sum(times), "best_ms": min(times) * 1e3,
            "median_ms": sorted(times)[len(times) // 2] * 1e3}


def fmt(result: dict) -> str:
    return (f"rps={result['rps']:.0f} p50_ms={result['p50_ms']:.2f} p90_ms={result['p90_ms']:.2f} "
            f"p99_ms={result['p99_ms']:.2f} max_ms={result['max_ms']:.1f} errors={result['errors']} "
            f"connections={result['connections']}")


def run(args) -> int:
    from time2bet.cli.sample_platform import build_platform, env_for_home

    work = Path(tempfile.mkdtemp(prefix="time2bet-bench-serve-"))
    if args.home:
        platform_env = env_for_home(Path(args.home))
    else:
        print(f"building a sample platform in {work} ...", flush=True)
        platform_env = build_platform(work)
    service_root = Path(args.service_root).resolve() if args.service_root else REPO
    env = {**os.environ, **platform_env, "BENTOML_HOME": str(work / "bentoml_home"), "BENTOML_DO_NOT_TRACK": "True",
           "PYTHONPATH": str(service_root),
           "TIME2BET_JOBS_PREFIX": f"time2bet:bench:{uuid.uuid4().hex}:jobs:"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    service_url, baseline_url = (f"http://127.0.0.1:{port}" for port in (free_port(), free_port()))
    service = Background("bentoml serve", service_command("127.0.0.1", int(service_url.rsplit(":", 1)[1])), env,
                         work / "service.log", cwd=service_root)
    baseline = Background("baseline", [sys.executable, str(REPO / "bench" / "baseline_app.py"), "--port",
                                       baseline_url.rsplit(":", 1)[1]], {**env, "PYTHONPATH": str(REPO)},
                          work / "baseline.log", cwd=REPO)
    urls = {service.name: service_url, baseline.name: baseline_url}
    servers = [service, baseline]

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    try:
        for s in servers:
            s.start()
        for s in servers:
            s.wait_ready(f"{urls[s.name]}/readyz", READY_TIMEOUT_S)
        print(f"service {service_url} (from {service_root}), baseline {baseline_url}; logs in {work}", flush=True)
        fixtures = fixtures_of(service_url)
        bodies = work / "bodies.json"
        bodies.write_text(json.dumps(fixtures))
        for s in servers:   # every fixture once: both servers cache their feature rows and warm up
            with httpx.Client(base_url=urls[s.name], timeout=30) as c:
                for f in fixtures:
                    r = c.post("/predict", json=f)
                    if r.status_code != 200:
                        raise RuntimeError(f"{s.name}: POST /predict {r.status_code}: {r.text[:500]}")
        results = []
        for i in range(args.runs):
            tag = f"run {i + 1}/{args.runs}"
            base = loadgen(f"{baseline_url}/predict", bodies, "closed", conns=args.conns, rate=0,
                           warmup=args.warmup, duration=args.duration)
            print(f"[{tag}] baseline saturation ({args.conns} connections): {fmt(base)}", flush=True)
            serve = loadgen(f"{service_url}/predict", bodies, "closed", conns=args.conns, rate=0,
                            warmup=args.warmup, duration=args.duration)
            print(f"[{tag}] service  saturation ({args.conns} connections): {fmt(serve)}", flush=True)
            lat = loadgen(f"{service_url}/predict", bodies, "open", conns=32, rate=args.rate,
                          warmup=args.warmup, duration=args.duration)
            print(f"[{tag}] service  open loop at {args.rate:.0f} req/s: {fmt(lat)}", flush=True)
            if args.baseline_latency:
                blat = loadgen(f"{baseline_url}/predict", bodies, "open", conns=32, rate=args.rate,
                               warmup=args.warmup, duration=args.duration)
                print(f"[{tag}] baseline open loop at {args.rate:.0f} req/s: {fmt(blat)}", flush=True)
            batch = measure_batch(service_url, batch_body(fixtures, args.batch_rows), args.batch_rows,
                                  args.batch_requests)
            print(f"[{tag}] service  batch of {args.batch_rows} rows: {batch['rows_per_s']:.0f} rows/s "
                  f"(best {batch['best_ms']:.1f} ms, median {batch['median_ms']:.1f} ms per request)", flush=True)
            if lat["errors"] or serve["errors"] or base["errors"]:
                print(f"[{tag}] WARNING: errors during the run (see above)", flush=True)
            results.append((serve, base, lat, batch))
            print(f"[{tag}] serve_rps={serve['rps']:.0f} baseline_rps={base['rps']:.0f} "
                  f"ratio={serve['rps'] / base['rps']:.2f} p50_ms={lat['p50_ms']:.2f} p99_ms={lat['p99_ms']:.2f} "
                  f"batch_rows_per_s={batch['rows_per_s']:.0f}", flush=True)
        # the final line: the median run by service throughput
        serve, base, lat, batch = sorted(results, key=lambda r: r[0]["rps"])[len(results) // 2]
        print(f"serve_rps={serve['rps']:.0f} baseline_rps={base['rps']:.0f} ratio={serve['rps'] / base['rps']:.2f} "
              f"p50_ms={lat['p50_ms']:.2f} p99_ms={lat['p99_ms']:.2f} batch_rows_per_s={batch['rows_per_s']:.0f}",
              flush=True)
        return 0
    finally:
        for s in servers:
            s.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", help="TIME2BET_HOME of an existing platform (default: build a sample platform)")
    p.add_argument("--service-root", help="serve bento_service from this checkout (default: this repo), e.g. an "
                   "unpacked `git archive` of an older commit, for before/after comparisons")
    p.add_argument("--conns", type=int, default=64, help="saturation: concurrent connections (64)")
    p.add_argument("--rate", type=float, default=400.0, help="latency: offered load, requests/s (400)")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--duration", type=float, default=12.0)
    p.add_argument("--batch-rows", type=int, default=10_000)
    p.add_argument("--batch-requests", type=int, default=5)
    p.add_argument("--runs", type=int, default=3, help="repeat the measurements; the last line is the median run")
    p.add_argument("--baseline-latency", action="store_true", help="also measure the baseline's open-loop latency")
    p.add_argument("--profile", action="store_true", help="profile one request in-process instead (no servers)")
    args, rest = p.parse_known_args(argv)
    if args.profile:
        sys.path.insert(0, str(REPO / "bench"))
        import profile_request  # noqa: PLC0415
        return profile_request.main((["--home", args.home] if args.home else []) + rest)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
