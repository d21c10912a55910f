"""Serving benchmark: the BentoML service against the physical floor of its design, on 127.0.0.1.

    python bench/serve.py                       # builds a small sample platform first (~1-2 min), then measures
    python bench/serve.py --home /path/to/TIME2BET_HOME   # an existing platform (warehouse + registry champion)
    python bench/serve.py --workload real --home DIR      # cold traffic: random pairs, no body twice
    python bench/serve.py --profile             # in-process profile of one POST /predict (bench/profile_request.py)

It starts ``bentoml serve bento_service.service:Time2BetService`` (the real service, as ``time2bet serve`` and the
tests start it) and a bare Starlette/uvicorn app (bench/baseline_app.py) serving the same champion with the same
snapshot and scoring code, then drives both with bench/loadgen.py (raw-socket HTTP/1.1 keep-alive client on
uvloop, in its own process, so the generator is never the bottleneck of one server process).

Workloads (``--workload``):

- ``fixtures`` (default): the platform's upcoming fixtures (GET /matches, ~15 pairs on the sample platform) over
  and over, after one warm-up request each: every request hits feature rows the servers have cached (warm);
- ``real``: single requests for random ordered pairs of the teams that played each division's latest season in
  the warehouse (``analytics.stg_matches``, every division; names as GET /teams?division= lists them), kickoff
  dates as-of + 1..90 days (as-of: the latest played match). Body k asks about pair k mod P (P pairs, shuffled)
  on a date that moves one day per round through the pairs, so no body repeats before P * 90; every phase (the
  servers' warm-up, each load-generator run, each batch) takes its own slice, so no measured body was seen
  before (the load generator sends a file's bodies in order and reports any repeat). The servers cache feature
  rows per *pair*, so a request is cold while its pair is new to that server process: each phase line reports
  ``new_pairs=<cold>/<sent>`` (the latency phase runs first so that its pairs are new to both servers).

Phases of every run:

1. latency: open loop at ``--rate`` (400) requests/s for ``--duration`` s after warm-up; each latency counts
   from the request's scheduled send time, so a stall cannot hide behind a waiting generator: p50_ms, p99_ms
   (the baseline too with ``--baseline-latency``, and always on the real workload);
2. saturation: ``--conns`` (64) connections, closed loop, ``--duration`` s after ``--warmup`` s, the same bodies
   for both servers: serve_rps, baseline_rps;
3. batch: POST /predict/batch with ``--batch-rows`` (10,000) matches, ``--batch-requests`` times after one
   warm-up request, sequentially: batch_rows_per_s = rows / wall time (client-side, including the transfer);
   on the real workload every batch is a new slice of distinct matches;
4. overload: 512 connections, closed loop, against the service for 5 s after 1 s, with a 2 s client time-out (a
   timed-out connection is replaced), the load starting 1.5 s after the connections opened:
   overload_p99_ms (p99 of the 200 answers), overload_shed_p99_ms (p99 of the 503 answers, 0 if none),
   overload_timeouts (requests unanswered after 2 s); a connection answered 503 waits out its Retry-After (1 s,
   times 1-2 at random) before it sends again, as a client with an HTTP retry policy does; then the same with the load from the first connection on
   (512 clients arriving at once): overload_burst_timeouts. Without the pause a saturated uvicorn accepts the
   last connections seconds late (a bare uvicorn app too), so their first requests time out: the burst figure
   measures that, the other one the 512 established connections. 512 connections need as many file
   descriptors in the load generator (``ulimit -n``).

With ``--workers 1,2`` the measurements are repeated for each worker count of the service (TIME2BET_SERVICE_WORKERS;
the baseline stays one process) on the same platform, and each count's last line is prefixed ``workers=<n>``.

With ``--ledger-ratio`` a third server runs: the same service with its prediction ledger off (TIME2BET_LEDGER=0),
and the last line adds ``ledger_ratio=<service rps / ledger-off rps> ledger_batch_ratio=<the same for batch
rows/s>``: the ledger's price, measured in the same run. Throughput: LEDGER_ROUNDS rounds of a short saturation run
on each of the two, in ABBA order, each round on bodies new to both (this VM's speed drifts by 10-20% within
minutes: one run of each minutes apart moved the ratio by as much as the ledger costs); ``ledger_ratio`` is the
sum of the service's requests/s over the rounds divided by the ledger-off one's. Batches the same way: each round
also sends LEDGER_BATCHES batches of its own (after a warm-up one) to each server in that order, one after another
(so each flush overlaps the next request, as in real use); one batch phase of each, minutes apart, gave ratios from
0.74 to 1.17 on the same code. Even so, a day when the VM's speed swings gave 0.75 to 1.08 on the same code:
``ledger_batch_cpu_ratio`` is the steadier figure, the CPU seconds (all threads, user + system, every process of the
server) the ledger-off server spent on its batch phases divided by the service's, the last flush included.

With ``--features feast`` the platform's state is materialized into a Feast repository of the run's own (online
store ``--feast-online``, Redis by default, under a project name of the run's own whose keys are deleted at the
end), ``FEAST_LOOKUPS`` lookups of random pairs (two teams, one pair: what one request reads) are timed in this
process, with a Redis PING as the network floor, and a third server, the service with TIME2BET_FEATURES=feast, gets
the latency and saturation bodies of the snapshot service right after it; its lines are tagged ``feast``
and the last line adds ``feast_lookup_p50_ms feast_lookup_p99_ms redis_ping_p99_ms feast_serve_rps feast_p99_ms``.

The last line is ``serve_rps=<r> baseline_rps=<r0> ratio=<r/r0> p50_ms=<a> p99_ms=<b> batch_rows_per_s=<n>
overload_p99_ms=<c> overload_shed_p99_ms=<d> overload_timeouts=<t> overload_burst_timeouts=<u>`` (the median
run by serve_rps).
Every phase is bounded in time; both servers run in their own process groups and are always killed at the end.
Redis (TIME2BET_REDIS_URL, default redis://127.0.0.1:6379/0) should be up, as for the service itself; the
benchmark's jobs prefix is unique and unused. The machine should be otherwise idle: on a shared 2-core machine
numbers vary by tens of percent between runs, so repeat it (``--runs``) and read the range.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx

from time2bet.background import Background, free_port
from time2bet.cli.demo import service_command

READY_TIMEOUT_S = 180


OVERLOAD_CONNS = 512                  # overload: closed-loop connections (each one a file descriptor here)
OVERLOAD_TIMEOUT_S = 2.0              # overload: client time-out per request
OVERLOAD_WARMUP_S, OVERLOAD_DURATION_S = 1.0, 5.0
OVERLOAD_SETTLE_S = 1.5               # overload: the connections open this long before the load starts
LEDGER_ROUNDS = 4                     # --ledger-ratio: short saturation runs on each server, ABBA order
LEDGER_RUN_S = 5.0                    # each one's measured seconds, after a 1 s warm-up
LEDGER_BATCHES = 3                    # and then that many batches on each (after one warm-up batch)
LEDGER_SETTLE_S = 0.5                 # > the ledger's flush bound (200 ms) and its write
REAL_CLOSED_RPS_CAP = 8_000           # real workload: bodies per second of a closed-loop phase (none repeats below it)
REAL_WARMUP_BODIES = 200              # real workload: the servers' warm-up requests (sequential)
REAL_SEED = 20210301
FEAST_LOOKUPS = 2000                  # --features feast: timed online lookups (after 100 not timed)


def loadgen(url: str, bodies: Path, mode: str, *, conns: int, rate: float, warmup: float, duration: float,
            timeout: float = 0.0, settle: float = 0.0) -> dict:
    argv = [sys.executable, str(REPO / "bench" / "loadgen.py"), "--url", url, "--bodies", str(bodies),
            "--mode", mode, "--conns", str(conns), "--rate", str(rate), "--warmup", str(warmup),
            "--duration", str(duration), "--timeout", str(timeout), "--settle", str(settle), "--max-conns", str(max(512, conns))]
    if timeout > 0:   # the overload phases: a client told 503 + Retry-After waits it out (jittered), as urllib3's
        argv += ["--honor-retry-after", "--jitter", "1"]   # Retry and other HTTP retry policies do
    out = subprocess.run(argv, capture_output=True, text=True, timeout=settle + warmup + duration + 60)
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


def real_teams(warehouse_url: str) -> tuple[dict[str, list[str]], dt.date]:
    """{division: names of the teams that played its latest season} and the as-of date (the latest played match),
    from ``analytics.stg_matches`` of the warehouse (read before the servers start: DuckDB has one writer)."""
    from time2bet.warehouse.client import Warehouse

    wh = Warehouse.from_url(warehouse_url)
    seasons = wh.read_sql("SELECT division, season, max(match_date) AS last FROM analytics.stg_matches "
                          "GROUP BY division, season")
    latest = seasons.sort_values("last").groupby("division").tail(1)   # season codes do not sort (9900 < 0001)
    as_of = max(dt.date.fromisoformat(str(d)[:10]) for d in seasons["last"])
    teams = wh.read_sql("SELECT DISTINCT division, season, home_team AS team FROM analytics.stg_matches "
                        "UNION SELECT DISTINCT division, season, away_team FROM analytics.stg_matches")
    teams = teams.merge(latest[["division", "season"]], on=["division", "season"])
    return {d: sorted(set(g["team"].dropna())) for d, g in teams.groupby("division")}, as_of


class RealBodies:
    """Single-match bodies for random pairs of each division's latest-season teams (every division, every ordered
    pair) at kickoff dates as_of + 1..90 days, as a sequence without repeats: body k asks about pair k mod P (P
    pairs, shuffled) at a date shifted by one day per round through the pairs, so the first P bodies are P
    distinct pairs and no body repeats before P * 90. ``take(n)`` hands out the next n: phases never share a
    body. The service caches feature rows per pair (bento_service.snapshot), so a body is cold for a server
    process only while its pair is new to it: ``cold(server, bodies)`` counts those (and marks them seen)."""

    def __init__(self, teams: dict[str, list[str]], as_of: dt.date, seed: int = REAL_SEED, horizon_days: int = 90):
        import random

        rng = random.Random(seed)
        self.pairs = [(d, h, a) for d, names in sorted(teams.items()) for h in names for a in names if h != a]
        rng.shuffle(self.pairs)
        self.horizon = horizon_days
        self.shift = [rng.randrange(horizon_days) for _ in self.pairs]
        self.as_of = as_of
        self.next = 0
        self.seen: dict[str, set] = {}

    def __len__(self) -> int:
        return len(self.pairs) * self.horizon

    def take(self, n: int) -> list[dict]:
        if self.next + n > len(self):
            raise RuntimeError(f"the real workload ran out of distinct bodies ({len(self)})")
        out = []
        for k in range(self.next, self.next + n):
            i, r = k % len(self.pairs), k // len(self.pairs)
            d, h, a = self.pairs[i]
            day = self.as_of + dt.timedelta(days=1 + (self.shift[i] + r) % self.horizon)
            out.append({"home_team": h, "away_team": a, "division": d, "kickoff_date": day.isoformat()})
        self.next += n
        return out

    def cold(self, server: str, bodies: list[dict]) -> int:
        seen = self.seen.setdefault(server, set())
        n = 0
        for b in bodies:
            key = (b["division"], b["home_team"], b["away_team"])
            if key not in seen:
                seen.add(key)
                n += 1
        return n


def batch_body(fixtures: list[dict], rows: int) -> bytes:
    """``rows`` matches: the fixtures over and over, each round a day later (distinct, valid dates)."""
    matches = []
    for i in range(rows):
        f = fixtures[i % len(fixtures)]
        day = dt.date.fromisoformat(f["kickoff_date"]) + dt.timedelta(days=i // len(fixtures))
        matches.append({**f, "kickoff_date": day.isoformat()})
    return json.dumps({"matches": matches}, separators=(",", ":")).encode()


def measure_batch(url: str, bodies: list[bytes], rows: int) -> dict:
    """Sequential POST /predict/batch on one keep-alive connection of the standard library's HTTP client: httpx
    spent ~8 ms of client time per 4 MB response here, which would have been counted against the service.
    bodies[0] is the warm-up request, the others are measured."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    headers = {"content-type": "application/json"}

    def post(body: bytes) -> bytes:
        conn.request("POST", "/predict/batch", body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"batch request failed: {response.status} {data[:500]!r}")
        return data

    try:
        if len(json.loads(post(bodies[0]))["predictions"]) != rows:
            raise RuntimeError("batch request: wrong number of predictions")
        times = []
        for body in bodies[1:]:
            start = time.perf_counter()
            post(body)
            times.append(time.perf_counter() - start)
    finally:
        conn.close()
    return {"rows_per_s": rows * len(times) / sum(times), "best_ms": min(times) * 1e3,
            "median_ms": sorted(times)[len(times) // 2] * 1e3}


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a server: its process and every process under it (BentoML's workers)."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        for process in (root, *root.children(recursive=True)):
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
    except psutil.NoSuchProcess:
        pass
    return total


def fmt(result: dict, cold: int | None = None) -> str:
    text = (f"rps={result['rps']:.0f} p50_ms={result['p50_ms']:.2f} p90_ms={result['p90_ms']:.2f} "
            f"p99_ms={result['p99_ms']:.2f} max_ms={result['max_ms']:.1f} errors={result['errors']} "
            f"connections={result['connections']}")
    if result.get("timeouts"):
        text += f" timeouts={result['timeouts']}"
    if len(result.get("status", {})) > 1 or set(result.get("status", {})) - {"200"}:
        text += " status=" + ",".join(f"{c}:{v['n']}" for c, v in result["status"].items())
    if cold is not None:   # the real workload (the fixtures workload repeats its bodies by design)
        text += f" new_pairs={cold}/{result['sent']}"
        if result.get("wrapped"):
            text += f" REPEATED_BODIES={result['wrapped']}"
    return text


def overload_fields(over: dict) -> str:
    status = over["status"]
    ok, shed = status.get("200"), status.get("503")
    return (f"overload_p99_ms={ok['p99_ms'] if ok else float('nan'):.1f} "
            f"overload_shed_p99_ms={shed['p99_ms'] if shed else 0:.1f} overload_timeouts={over['timeouts']} "
            f"overload_burst_timeouts={over['burst_timeouts']}")


def line(serve: dict, base: dict, lat: dict, batch: dict, over: dict, off: tuple[dict, ...] | None = None,
         feast: dict | None = None) -> str:
    text = (f"serve_rps={serve['rps']:.0f} baseline_rps={base['rps']:.0f} ratio={serve['rps'] / base['rps']:.2f} "
            f"p50_ms={lat['p50_ms']:.2f} p99_ms={lat['p99_ms']:.2f} batch_rows_per_s={batch['rows_per_s']:.0f} "
            f"{overload_fields(over)}")
    if off is not None:
        serve_on, serve_off, batch_on, batch_off = off
        text += (f" ledger_ratio={serve_on['rps'] / serve_off['rps']:.2f} "
                 f"ledger_batch_ratio={batch_on['rows_per_s'] / batch_off['rows_per_s']:.2f} "
                 f"ledger_batch_cpu_ratio={batch_off['cpu_s'] / batch_on['cpu_s']:.2f}")
    if feast is not None:
        text += " " + " ".join(f"{k}={v:.{0 if k.endswith('rps') else 3}f}" for k, v in feast.items())
    return text


def feast_repository(platform_env: dict[str, str], work: Path, online: str) -> tuple[dict[str, str], object, list]:
    """The platform's state in a Feast repository of this run (a project of its own): its env, its store and
    the ids of the teams it holds."""
    from time2bet.features import feature_store
    from time2bet.settings import Settings
    from time2bet.warehouse.client import Warehouse

    env = {"TIME2BET_FEATURES": "feast", "TIME2BET_FEAST_DIR": str(work / "feast"),
           "TIME2BET_FEAST_ONLINE_STORE": online, "TIME2BET_FEAST_PROJECT": f"t2b_bench_{uuid.uuid4().hex[:12]}"}
    settings = Settings.from_env({**os.environ, **platform_env, **env})
    store = feature_store.open_store(settings)
    feature_store.apply(store, settings)
    warehouse = Warehouse.from_url(settings.warehouse_url)
    frames = feature_store.state_frames(warehouse)
    feature_store.write_offline(settings, warehouse, frames)
    feature_store.materialize(store)
    return env, store, sorted(frames[feature_store.FORM_VIEW]["team_id"])


def feast_lookups(store, teams: list[str], redis_url: str) -> dict:
    """Online lookups of random pairs, as one request makes them (two teams, one pair): p50/p99 in ms; and a Redis
    PING's p99, the round trip no lookup can beat."""
    import numpy as np
    import redis

    from time2bet.features import feature_store

    rng = np.random.default_rng(REAL_SEED)
    times = []
    for i in range(100 + FEAST_LOOKUPS):
        home, away = rng.choice(len(teams), size=2, replace=False)
        started = time.perf_counter()
        feature_store.online_columns(store, [teams[home], teams[away]], [feature_store.pair_id(teams[home], teams[away])])
        if i >= 100:
            times.append(time.perf_counter() - started)
    client, pings = redis.Redis.from_url(redis_url), []
    for _ in range(FEAST_LOOKUPS):
        started = time.perf_counter()
        client.ping()
        pings.append(time.perf_counter() - started)
    client.close()
    return {"feast_lookup_p50_ms": float(np.percentile(times, 50) * 1e3),
            "feast_lookup_p99_ms": float(np.percentile(times, 99) * 1e3),
            "redis_ping_p99_ms": float(np.percentile(pings, 99) * 1e3)}


def restrict_to_service(service_url: str, teams: dict[str, list[str]], as_of: dt.date):
    """Keep the names GET /teams?division= of the running service lists (the names POST /predict accepts)."""
    kept = {}
    with httpx.Client(base_url=service_url, timeout=30) as c:
        for division, names in teams.items():
            r = c.get("/teams", params={"division": division})
            if r.status_code != 200:
                continue
            accepted = set(r.json()["teams"])
            names = [n for n in names if n in accepted]
            if len(names) >= 2:
                kept[division] = names
    if not kept:
        raise RuntimeError("no division with two teams the service accepts")
    return kept, as_of


def platform_of(args) -> dict[str, str]:
    """The platform measured: --home's, else a sample platform built now."""
    from time2bet.cli.sample_platform import build_platform, env_for_home

    if args.home:
        return env_for_home(Path(args.home))
    work = Path(tempfile.mkdtemp(prefix="time2bet-bench-platform-"))
    print(f"building a sample platform in {work} ...", flush=True)
    return build_platform(work)


def every_worker_ready(url: str, in_a_row: int = 20) -> None:
    """/readyz 200 on ``in_a_row`` fresh connections in a row: a server is ready as soon as its first worker is, and a
    worker still loading would answer the load 503."""
    deadline, ok = time.monotonic() + READY_TIMEOUT_S, 0
    while ok < in_a_row:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: not every worker ready after {READY_TIMEOUT_S}s")
        ok = ok + 1 if httpx.get(f"{url}/readyz", timeout=10).status_code == 200 else 0
        time.sleep(0.05)


def run(args, platform_env: dict[str, str] | None = None, workers: int | None = None) -> int:
    """One measurement of the service (``workers`` processes: TIME2BET_SERVICE_WORKERS, else the settings' default);
    its last line is prefixed ``workers=<n>`` when ``workers`` is given."""
    work = Path(tempfile.mkdtemp(prefix="time2bet-bench-serve-"))
    platform_env = platform_env or platform_of(args)
    service_root = Path(args.service_root).resolve() if args.service_root else REPO
    env = {**os.environ, **platform_env, "BENTOML_HOME": str(work / "bentoml_home"), "BENTOML_DO_NOT_TRACK": "True",
           "PYTHONPATH": str(service_root),
           "TIME2BET_JOBS_PREFIX": f"time2bet:bench:{uuid.uuid4().hex}:jobs:"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if workers is not None:
        env["TIME2BET_SERVICE_WORKERS"] = str(workers)
    if args.workload == "real":   # before the servers start: DuckDB has one writer at a time
        teams, as_of = real_teams(platform_env["TIME2BET_WAREHOUSE_URL"])
    service_url, baseline_url = (f"http://127.0.0.1:{port}" for port in (free_port(), free_port()))
    service = Background("bentoml serve", service_command("127.0.0.1", int(service_url.rsplit(":", 1)[1])), env,
                         work / "service.log", cwd=service_root)
    baseline = Background("baseline", [sys.executable, str(REPO / "bench" / "baseline_app.py"), "--port",
                                       baseline_url.rsplit(":", 1)[1]], {**env, "PYTHONPATH": str(REPO)},
                          work / "baseline.log", cwd=REPO)
    urls = {service.name: service_url, baseline.name: baseline_url}
    servers = [service, baseline]
    if args.ledger_ratio:
        off_url = f"http://127.0.0.1:{free_port()}"
        off = Background("bentoml serve (ledger off)", service_command("127.0.0.1", int(off_url.rsplit(":", 1)[1])),
                         {**env, "TIME2BET_LEDGER": "0", "TIME2BET_JOBS_PREFIX": env["TIME2BET_JOBS_PREFIX"] + "off:"},
                         work / "service-ledger-off.log", cwd=service_root)
        urls[off.name] = off_url
        servers.append(off)
    feast_store = None
    if args.features == "feast":   # before the servers start: DuckDB has one writer at a time
        print(f"materializing the platform into Feast ({args.feast_online} online store) ...", flush=True)
        feast_env, feast_store, feast_teams = feast_repository(platform_env, work, args.feast_online)
        feast_url = f"http://127.0.0.1:{free_port()}"
        on_feast = Background("bentoml serve (feast)", service_command("127.0.0.1", int(feast_url.rsplit(":", 1)[1])),
                              {**env, **feast_env, "TIME2BET_JOBS_PREFIX": env["TIME2BET_JOBS_PREFIX"] + "feast:"},
                              work / "service-feast.log", cwd=service_root)
        urls[on_feast.name] = feast_url
        servers.append(on_feast)

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    try:
        for s in servers:
            s.start()
        for s in servers:
            s.wait_ready(f"{urls[s.name]}/readyz", READY_TIMEOUT_S)
        if workers and workers > 1:
            every_worker_ready(service_url)
        print(f"service {service_url} (from {service_root}), baseline {baseline_url}; logs in {work}", flush=True)
        if feast_store is not None:
            from time2bet.settings import DEFAULT_REDIS_URL

            lookups = feast_lookups(feast_store, feast_teams, env.get("TIME2BET_REDIS_URL") or DEFAULT_REDIS_URL)
            print(f"feast ({args.feast_online}) online lookups of {FEAST_LOOKUPS} random pairs (2 teams + 1 pair each): "
                  + " ".join(f"{k}={v:.3f}" for k, v in lookups.items()), flush=True)
        if args.workload == "real":
            teams, as_of = restrict_to_service(service_url, teams, as_of)
            real = RealBodies(teams, as_of, horizon_days=args.horizon_days)
            print(f"real workload: {len(real.pairs)} ordered pairs of {sum(map(len, teams.values()))} teams in "
                  f"{len(teams)} divisions, kickoff {as_of + dt.timedelta(days=1)}..{as_of + dt.timedelta(days=args.horizon_days)}; "
                  f"{len(real)} distinct bodies", flush=True)
            warm = real.take(REAL_WARMUP_BODIES)
        else:
            fixtures = fixtures_of(service_url)
            warm = fixtures
        for s in servers:   # both servers answer every warm-up body once (fixtures: they cache the feature rows)
            if args.workload == "real":
                real.cold(s.name, warm)
            with httpx.Client(base_url=urls[s.name], timeout=30) as c:
                for f in warm:
                    r = c.post("/predict", json=f)
                    if r.status_code != 200:
                        raise RuntimeError(f"{s.name}: POST /predict {r.status_code}: {r.text[:500]} for {f}")
        n_bodies = 0

        def phase(n: int) -> tuple[Path, list[dict] | None]:
            """A bodies file for one load-generator phase: the fixtures, or n real bodies used by no other phase."""
            nonlocal n_bodies
            if args.workload != "real":
                path = work / "bodies.json"
                if not path.exists():
                    path.write_text(json.dumps(fixtures))
                return path, None
            bodies = real.take(n)
            n_bodies += 1
            path = work / f"bodies-{n_bodies}.json"
            path.write_text(json.dumps(bodies, separators=(",", ":")))
            return path, bodies

        def cold(server: str, bodies: list[dict] | None, result: dict) -> int | None:
            return None if bodies is None else real.cold(server, bodies[:result["sent"]])

        closed_n = int(REAL_CLOSED_RPS_CAP * (args.warmup + args.duration))
        results = []
        for i in range(args.runs):
            tag = f"run {i + 1}/{args.runs}"
            # latency first: on the real workload its pairs are then still new to both servers (cold)
            path, bodies = phase(int(args.rate * (args.warmup + args.duration)) + 1)
            lat = loadgen(f"{service_url}/predict", path, "open", conns=32, rate=args.rate,
                          warmup=args.warmup, duration=args.duration)
            print(f"[{tag}] service  open loop at {args.rate:.0f} req/s: {fmt(lat, cold(service.name, bodies, lat))}",
                  flush=True)
            if feast_store is not None:   # the same bodies, features from Feast
                feast_lat = loadgen(f"{feast_url}/predict", path, "open", conns=32, rate=args.rate,
                                    warmup=args.warmup, duration=args.duration)
                print(f"[{tag}] feast    open loop at {args.rate:.0f} req/s: "
                      f"{fmt(feast_lat, cold(on_feast.name, bodies, feast_lat))}", flush=True)
            if args.baseline_latency or args.workload == "real":   # real: the baseline sees the same pairs too
                blat = loadgen(f"{baseline_url}/predict", path, "open", conns=32, rate=args.rate,
                               warmup=args.warmup, duration=args.duration)
                print(f"[{tag}] baseline open loop at {args.rate:.0f} req/s: "
                      f"{fmt(blat, cold(baseline.name, bodies, blat))}", flush=True)
            path, bodies = phase(closed_n)   # the same bodies for both servers: each process has its own cache
            base = loadgen(f"{baseline_url}/predict", path, "closed", conns=args.conns, rate=0,
                           warmup=args.warmup, duration=args.duration)
            print(f"[{tag}] baseline saturation ({args.conns} connections): "
                  f"{fmt(base, cold(baseline.name, bodies, base))}", flush=True)
            serve = loadgen(f"{service_url}/predict", path, "closed", conns=args.conns, rate=0,
                            warmup=args.warmup, duration=args.duration)
            print(f"[{tag}] service  saturation ({args.conns} connections): "
                  f"{fmt(serve, cold(service.name, bodies, serve))}", flush=True)
            feast_figures = None
            if feast_store is not None:
                feast_serve = loadgen(f"{feast_url}/predict", path, "closed", conns=args.conns, rate=0,
                                      warmup=args.warmup, duration=args.duration)
                print(f"[{tag}] feast    saturation ({args.conns} connections): "
                      f"{fmt(feast_serve, cold(on_feast.name, bodies, feast_serve))}", flush=True)
                feast_figures = {**lookups, "feast_serve_rps": feast_serve["rps"], "feast_p99_ms": feast_lat["p99_ms"]}
            if args.workload == "real":   # 1 + batch_requests batches of distinct matches, none seen before
                batches = [json.dumps({"matches": real.take(args.batch_rows)}, separators=(",", ":")).encode()
                           for _ in range(1 + args.batch_requests)]
            else:
                batches = [batch_body(fixtures, args.batch_rows)] * (1 + args.batch_requests)
            batch = measure_batch(service_url, batches, args.batch_rows)
            off_figures = None
            if args.ledger_ratio:   # the ledger's price in this run: the same requests, the ledger off
                rounds = {service_url: [], off_url: []}
                batch_rounds = {service_url: [], off_url: []}
                batch_cpu = {service_url: 0.0, off_url: 0.0}   # the servers' CPU seconds in their batch phases
                server_of = {service_url: service.proc.pid, off_url: off.proc.pid}
                for k in range(LEDGER_ROUNDS):
                    path_k, _ = phase(int(REAL_CLOSED_RPS_CAP * (1.0 + LEDGER_RUN_S)))
                    if args.workload == "real":
                        batches_k = [json.dumps({"matches": real.take(args.batch_rows)},
                                                separators=(",", ":")).encode() for _ in range(1 + LEDGER_BATCHES)]
                    else:
                        batches_k = batches[:1 + LEDGER_BATCHES]
                    for url in (service_url, off_url) if k % 2 == 0 else (off_url, service_url):
                        rounds[url].append(loadgen(f"{url}/predict", path_k, "closed", conns=args.conns, rate=0,
                                                   warmup=1.0, duration=LEDGER_RUN_S)["rps"])
                        time.sleep(LEDGER_SETTLE_S)   # the saturation run's last ledger flush, out of the batch's CPU
                        before = tree_cpu_s(server_of[url])
                        batch_rounds[url].append(measure_batch(url, batches_k, args.batch_rows)["rows_per_s"])
                        time.sleep(LEDGER_SETTLE_S)   # the last batch's flush, in it
                        batch_cpu[url] += tree_cpu_s(server_of[url]) - before
                serve_on = {"rps": statistics.fmean(rounds[service_url])}
                serve_off = {"rps": statistics.fmean(rounds[off_url])}
                batch_on = {"rows_per_s": statistics.fmean(batch_rounds[service_url])}
                batch_off = {"rows_per_s": statistics.fmean(batch_rounds[off_url])}
                print(f"[{tag}] ledger on/off, {LEDGER_ROUNDS} rounds ABBA: saturation on "
                      f"{' '.join(f'{r:.0f}' for r in rounds[service_url])}, off "
                      f"{' '.join(f'{r:.0f}' for r in rounds[off_url])} requests/s; batch on "
                      f"{' '.join(f'{r:.0f}' for r in batch_rounds[service_url])}, off "
                      f"{' '.join(f'{r:.0f}' for r in batch_rounds[off_url])} rows/s; batch CPU on "
                      f"{batch_cpu[service_url]:.2f} s, off {batch_cpu[off_url]:.2f} s", flush=True)
                batch_on["cpu_s"], batch_off["cpu_s"] = batch_cpu[service_url], batch_cpu[off_url]
                off_figures = (serve_on, serve_off, batch_on, batch_off)
            del batches
            print(f"[{tag}] service  batch of {args.batch_rows} rows: {batch['rows_per_s']:.0f} rows/s "
                  f"(best {batch['best_ms']:.1f} ms, median {batch['median_ms']:.1f} ms per request)", flush=True)
            path, bodies = phase(int(REAL_CLOSED_RPS_CAP * (OVERLOAD_WARMUP_S + OVERLOAD_DURATION_S)))
            over = loadgen(f"{service_url}/predict", path, "closed", conns=OVERLOAD_CONNS, rate=0,
                           warmup=OVERLOAD_WARMUP_S, duration=OVERLOAD_DURATION_S, timeout=OVERLOAD_TIMEOUT_S,
                           settle=OVERLOAD_SETTLE_S)
            print(f"[{tag}] service  overload ({OVERLOAD_CONNS} connections, {OVERLOAD_TIMEOUT_S:.0f} s time-out): "
                  f"{fmt(over, cold(service.name, bodies, over))}", flush=True)
            path, bodies = phase(int(REAL_CLOSED_RPS_CAP * (OVERLOAD_WARMUP_S + OVERLOAD_DURATION_S)))
            burst = loadgen(f"{service_url}/predict", path, "closed", conns=OVERLOAD_CONNS, rate=0,
                            warmup=OVERLOAD_WARMUP_S, duration=OVERLOAD_DURATION_S, timeout=OVERLOAD_TIMEOUT_S)
            print(f"[{tag}] service  overload burst (the same, load from the first connection on): "
                  f"{fmt(burst, cold(service.name, bodies, burst))} timeouts_sent_s={burst['timeouts_sent_s']}",
                  flush=True)
            over["burst_timeouts"] = burst["timeouts"]
            if lat["errors"] or serve["errors"] or base["errors"]:
                print(f"[{tag}] WARNING: errors during the run (see above)", flush=True)
            if args.workload == "real" and any(r.get("wrapped") for r in (lat, serve, base, over)):
                print(f"[{tag}] WARNING: a phase repeated bodies (REPEATED_BODIES above)", flush=True)
            results.append((serve, base, lat, batch, over, off_figures, feast_figures))
            print(f"[{tag}] {line(serve, base, lat, batch, over, off_figures, feast_figures)}", flush=True)
        # the final line: the median run by service throughput
        print(("" if workers is None else f"workers={workers} ")
              + line(*sorted(results, key=lambda r: r[0]["rps"])[len(results) // 2]), flush=True)
        return 0
    finally:
        for s in servers:
            s.stop()
        if feast_store is not None:
            feast_store.teardown()   # this run's online rows (Redis keys ending with its project name)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", help="TIME2BET_HOME of an existing platform (default: build a sample platform)")
    p.add_argument("--workload", choices=("fixtures", "real"), default="fixtures",
                   help="fixtures: the platform's upcoming fixtures over and over (warm); real: random pairs of each "
                   "division's latest-season teams at dates in the 90 days after the as-of date, no body twice")
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
    p.add_argument("--horizon-days", type=int, default=90,
                   help="real workload: kickoff dates as-of + 1..N days (90); more for a platform of few divisions, "
                        "whose pairs x 90 days would not give every phase bodies of its own")
    p.add_argument("--ledger-ratio", action="store_true",
                   help="also measure the service with its prediction ledger off (ledger_ratio, ledger_batch_ratio)")
    p.add_argument("--features", choices=("snapshot", "feast"), default="snapshot",
                   help="feast: also a service reading features from Feast (TIME2BET_FEATURES=feast), beside the "
                        "snapshot one, and the online lookup's latency (feast_lookup_p99_ms)")
    p.add_argument("--feast-online", choices=("redis", "sqlite"), default="redis", help="Feast's online store (redis)")
    p.add_argument("--workers", help="comma-separated worker counts of the service, measured one after the other on "
                   "the same platform, e.g. 1,2: one final line per count, prefixed workers=<n>")
    p.add_argument("--profile", action="store_true", help="profile one request in-process instead (no servers)")
    args, rest = p.parse_known_args(argv)
    if args.profile:
        sys.path.insert(0, str(REPO / "bench"))
        import profile_request
        return profile_request.main((["--home", args.home] if args.home else []) + rest)
    if args.workers:
        counts = [int(n) for n in args.workers.split(",")]
        platform_env = platform_of(args)
        return max(run(args, platform_env, n) for n in counts)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
