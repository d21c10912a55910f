"""HTTP/1.1 keep-alive load generator for bench/serve.py (run as its own process, so it does not share a GIL or
an event loop with the server it measures).

Raw asyncio protocols on uvloop (plain asyncio if uvloop is missing), pre-encoded requests, no HTTP library:
one process drives a few thousand requests per second on one core, well above what one server process answers.

    python bench/loadgen.py --url http://127.0.0.1:3000/predict --bodies bodies.json --mode closed --conns 64
    python bench/loadgen.py ... --mode open --rate 400 --duration 12

- ``closed``: ``--conns`` connections, each sends its next request as soon as the previous one answered
  (saturation throughput);
- ``open``: requests are *scheduled* at ``--rate`` per second whatever happened to earlier ones; a request goes
  out on an idle connection (a new one is opened when all are busy, up to ``--max-conns``) and its latency is
  measured from its scheduled send time, so a stalled server shows up in the tail instead of slowing the
  generator down (no coordinated omission).

Both run ``--warmup`` seconds unmeasured, then ``--duration`` seconds measured, then stop (every loop bounded in
time). Bodies are sent in file order (request k gets body k): a file with at least as many bodies as requests
never repeats one (``wrapped`` counts the requests that did). With ``--timeout`` S > 0 a request not answered
within S seconds counts as a time-out and its connection is dropped (closed loop: replaced by a new one, so the
concurrency stays ``--conns``); without it a closed-loop connection stops at its first non-200 answer. The result
is one JSON line on stdout: {"requests", "errors", "seconds", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms",
"late", "connections", "sent", "wrapped", "timeouts", "timeouts_sent_s" (min, median, p99 of their send
times, s into the measured window), "status": {code: {"n", "p50_ms", "p99_ms"}}} (latencies
over every measured answer, then per HTTP status; code 0: connection lost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:  # pragma: no cover - the project's venv has it (uvicorn[standard])
    uvloop = None


class Conn(asyncio.Protocol):
    """One keep-alive connection; ``send`` one request, ``on_done(ok)`` once its whole response has arrived."""

    def __init__(self, on_lost):
        self.transport = None
        self.buf = bytearray()
        self.need = -1          # body bytes still expected (-1: reading headers)
        self.on_done = None
        self.on_lost = on_lost
        self.status = 0
        self.retry_after = 0.0
        self.timer = None
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.ready.set_result(True)

    def send(self, request: bytes, on_done, timeout: float = 0.0) -> None:
        self.on_done = on_done
        if timeout > 0:
            self.timer = asyncio.get_running_loop().call_later(timeout, self.timed_out)
        self.transport.write(request)

    def timed_out(self) -> None:
        """No whole answer within the time-out: report it (status -1) and drop the connection."""
        self.timer = None
        done, self.on_done = self.on_done, None
        self.transport.abort()
        if done is not None:
            done(-1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).lower()
                self.status = int(head[9:12])
                j = head.find(b"retry-after:")
                self.retry_after = float(head[j + 12:head.find(b"\r\n", j) if head.find(b"\r\n", j) > 0 else None]) if j >= 0 else 0.0
                i = head.find(b"content-length:")
                if i < 0:
                    raise RuntimeError("response without content-length")
                eol = head.find(b"\r\n", i)
                self.need = int(head[i + 15:eol if eol > 0 else None])
                del self.buf[:end + 4]
            if len(self.buf) < self.need:
                return
            del self.buf[:self.need]
            self.need = -1
            done, self.on_done = self.on_done, None
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if done is not None:
                done(self.status)

    def connection_lost(self, exc):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        done, self.on_done = self.on_done, None
        if done is not None:
            done(0)
        self.on_lost(self)


def encode(host: str, port: int, path: str, bodies: list[bytes]) -> list[bytes]:
    return [(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
             f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in bodies]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


async def run(args) -> dict:
    url = urlsplit(args.url)
    host, port = url.hostname, url.port or 80
    with open(args.bodies, "rb") as f:  # noqa: ASYNC230 - read once, before any connection is opened
        bodies = [json.dumps(b, separators=(",", ":")).encode() for b in json.load(f)]
    requests = encode(host, port, url.path, bodies)
    loop = asyncio.get_running_loop()
    idle: list[Conn] = []
    lost: set[Conn] = set()
    latencies: list[float] = []
    by_status: dict[int, list[float]] = {}
    timed_out_at: list[float] = []   # send times of the timed-out requests, s after the measured window began
    state = {"errors": 0, "done": 0, "n": 0, "open": 0, "late": 0, "timeouts": 0}

    def record(status: int, latency: float) -> None:
        """One measured answer (status -1: time-out, not an answer; 0: connection lost)."""
        if status == -1:
            state["timeouts"] += 1
            timed_out_at.append(clock() - latency - measure_from)
            state["errors"] += 1
            return
        state["done"] += 1
        latencies.append(latency)
        by_status.setdefault(status, []).append(latency)
        if status != 200:
            state["errors"] += 1

    async def connect() -> Conn:
        _, conn = await loop.create_connection(lambda: Conn(lost.add), host, port)
        state["open"] += 1
        return conn

    # latencies on perf_counter: uvloop's loop.time() has millisecond resolution
    clock = time.perf_counter
    start = clock()
    measure_from = start + args.warmup
    stop_at = measure_from + args.duration

    if args.mode == "closed":
        conns = [await connect() for _ in range(args.conns)]
        if args.settle > 0:   # let the server accept every connection before the load starts (see --settle)
            await asyncio.sleep(args.settle)
            measure_from = clock() + args.warmup
            stop_at = measure_from + args.duration
        finished = loop.create_future()
        live = [len(conns)]

        def kick(conn: Conn):
            sent = clock()
            request = requests[state["n"] % len(requests)]
            state["n"] += 1

            def done(status: int):
                now = clock()
                if measure_from <= now < stop_at or (status == -1 and measure_from <= sent < stop_at):
                    record(status, now - sent)   # answers completed (time-outs: sent) inside the measured window
                usable = conn not in lost and not conn.transport.is_closing()
                if now < stop_at and usable and status == 503 and args.honor_retry_after and conn.retry_after > 0:
                    loop.call_later(conn.retry_after * (1 + args.jitter * random.random()), lambda: kick(conn) if clock() < stop_at and conn not in lost else stopped())
                elif now < stop_at and usable and (status == 200 or (args.timeout > 0 and status > 0)):
                    kick(conn)
                elif now < stop_at and args.timeout > 0:   # dropped (time-out, or closed by the server): replace it
                    loop.create_task(replace())
                else:
                    stopped()

            conn.send(request, done, args.timeout)

        def stopped():
            live[0] -= 1
            if live[0] == 0 and not finished.done():
                finished.set_result(None)

        async def replace():
            try:
                conn = await asyncio.wait_for(loop.create_connection(lambda: Conn(lost.add), host, port),
                                              timeout=max(0.1, stop_at - clock()))
            except (OSError, TimeoutError):
                state["errors"] += 1
                stopped()
                return
            state["open"] += 1
            if clock() < stop_at:
                kick(conn[1])
            else:
                stopped()

        for c in conns:
            kick(c)
        try:
            await asyncio.wait_for(finished, timeout=args.warmup + args.duration + 30)
        except TimeoutError:
            pass
        measured = args.duration
    else:
        idle.extend([await connect() for _ in range(min(args.conns, args.max_conns))])
        interval = 1.0 / args.rate
        total = int((args.warmup + args.duration) * args.rate)
        outstanding = [0]
        all_sent = loop.create_future()
        base = loop.time() + 0.05                  # the schedule, on the loop's clock (for call_at)
        base_pc = clock() + 0.05                   # the same instant on perf_counter (for latencies)
        measure_from = base_pc + args.warmup
        stop_at = measure_from + args.duration

        def fire(i: int):
            scheduled = base_pc + i * interval
            conn = None
            while idle and conn is None:   # skip connections the server closed (keep-alive timeout)
                conn = idle.pop()
                if conn in lost or conn.transport.is_closing():
                    state["open"] -= 1
                    conn = None
            if conn is not None:
                pass
            elif state["open"] < args.max_conns:
                state["open"] += 1   # counted now: the connection is being opened

                async def fresh():
                    try:
                        _, c = await loop.create_connection(lambda: Conn(lost.add), host, port)
                    except OSError:
                        state["errors"] += 1
                        return
                    go(c, i, scheduled)
                loop.create_task(fresh())
                return
            else:   # every connection busy and the cap reached: the request counts as an error (too late)
                state["late"] += 1
                if scheduled >= measure_from:
                    state["errors"] += 1
                return
            go(conn, i, scheduled)

        def go(conn: Conn, i: int, scheduled: float):
            outstanding[0] += 1
            request = requests[i % len(requests)]

            def done(status: int):
                now = clock()
                outstanding[0] -= 1
                if scheduled >= measure_from:
                    record(status, now - scheduled)
                if conn not in lost and not conn.transport.is_closing():
                    idle.append(conn)
                if outstanding[0] == 0 and i == total - 1 and not all_sent.done():
                    all_sent.set_result(None)

            conn.send(request, done, args.timeout)

        for i in range(total):   # scheduled sends; loop.call_at keeps the schedule whatever the answers do
            loop.call_at(base + i * interval, fire, i)
        # wait for the schedule, then (bounded) for the answers still in flight
        await asyncio.sleep(max(0.0, stop_at - clock()))
        deadline = loop.time() + 10
        while outstanding[0] > 0 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        state["errors"] += outstanding[0]   # never answered within 10 s
        state["n"] = total
        measured = args.duration

    latencies.sort()
    n = state["done"]
    return {"mode": args.mode, "requests": n, "errors": state["errors"], "seconds": measured,
            "rps": n / measured, "p50_ms": percentile(latencies, 0.50) * 1e3,
            "p90_ms": percentile(latencies, 0.90) * 1e3, "p99_ms": percentile(latencies, 0.99) * 1e3,
            "max_ms": (latencies[-1] * 1e3) if latencies else float("nan"), "late": state["late"],
            "connections": state["open"], "sent": state["n"], "wrapped": max(0, state["n"] - len(requests)),
            "timeouts": state["timeouts"],
            "timeouts_sent_s": [round(percentile(sorted(timed_out_at), q), 2) for q in (0.0, 0.5, 0.99)]
            if timed_out_at else [],
            "status": {str(code): {"n": len(v), "p50_ms": percentile(sorted(v), 0.50) * 1e3,
                                   "p99_ms": percentile(sorted(v), 0.99) * 1e3} for code, v in sorted(by_status.items())}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--bodies", required=True, help="JSON file: a list of request bodies, sent in order (round-robin "
                   "once exhausted)")
    p.add_argument("--mode", choices=("closed", "open"), default="closed")
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--max-conns", type=int, default=512)
    p.add_argument("--rate", type=float, default=400.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--settle", type=float, default=0.0, help="closed loop: seconds between opening the connections "
                   "and the first requests (0); without it, under a saturating --conns, a server may accept the "
                   "last connections only seconds later (their first requests then wait)")
    p.add_argument("--timeout", type=float, default=0.0, help="client time-out per request, s (0: none)")
    p.add_argument("--honor-retry-after", action="store_true",
                   help="after a 503 with Retry-After, wait that long (times 1 + jitter * U(0,1)) before sending again")
    p.add_argument("--jitter", type=float, default=0.0, help="see --honor-retry-after")
    args = p.parse_args(argv)
    if uvloop is not None:
        uvloop.install()
    result = asyncio.run(run(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
